/**
 * Checks the SOPS environment against the catalog for one stack (`just secrets-check`), the
 * same check the program makes first, without Pulumi; and the SOPS file's keys against the
 * catalog: a key it does not know is a problem (most likely a typo), a key kept for a tool
 * outside this program is named as such. Prints key names only.
 *
 * Usage (under `sops exec-env`, as core.sh runs it): check-secrets.ts <stack> <sops file>
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { sopsEntriesFor, type StackKind } from "../components/secrets/catalog";
import { checkSecrets, type Problem } from "../components/secrets/env";
import { reportFileKeys, sopsFileKeys } from "./lib/sopsFile";

const kinds: Record<string, StackKind> = { hetzner: "hetzner", "hetzner-data": "hetzner-data", cluster: "cluster" };

/** The stack's kind from its config file (core:kind), as index.ts picks the program; else the name is the kind. */
function kindOf(stack: string): StackKind | undefined {
  const file = join("stacks", `Pulumi.${stack}.yaml`);
  const kind = existsSync(file) ? (parse(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null)?.config?.["core:kind"] : stack;
  return typeof kind === "string" ? kinds[kind] : undefined;
}

/** The file's keys are read from the encrypted file itself: sops leaves keys in clear. */
function fileKeyProblems(file: string): Problem[] {
  let keys: string[];
  try {
    keys = sopsFileKeys(readFileSync(file, "utf8")).map((k) => k.key);
  } catch (e) {
    return [{ key: file, problem: `cannot list its keys: ${(e as Error).message}` }];
  }
  const report = reportFileKeys(keys);
  for (const key of report.elsewhere) console.log(`  - ${key}: used elsewhere, not checked here`);
  return report.unknown.map((u) => ({
    key: u.key,
    problem: `not in the secret catalog (components/secrets/catalog.ts)${u.suggestion ? `; did you mean ${u.suggestion}?` : ""}`,
  }));
}

function main(name: string | undefined, file: string | undefined): number {
  const stack = name === undefined ? undefined : kindOf(name);
  if (!stack || file === undefined) {
    console.error(`usage: check-secrets.ts <stack of kind ${Object.keys(kinds).join("|")}> <sops file>`);
    return 2;
  }
  const { values, problems: envProblems } = checkSecrets(stack, process.env);
  const problems = [...envProblems, ...fileKeyProblems(file)];
  for (const p of problems) console.error(`  - ${p.key}: ${p.problem}`);
  const skipped = sopsEntriesFor(stack).filter((e) => e.optional && values[e.key] === undefined);
  for (const e of skipped) console.log(`  - ${e.key}: absent: ${e.optional?.without}`);
  console.log(`${name}: ${Object.keys(values).length} secrets valid, ${problems.length} problems`);
  return problems.length === 0 ? 0 : 1;
}

process.exitCode = main(process.argv[2], process.argv[3]);
