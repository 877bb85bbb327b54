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
import { sopsEntriesFor, stackKinds, type StackKind } from "../components/secrets/catalog";
import { checkSecrets, type Problem } from "../components/secrets/env";
import { reportFileKeys, sopsFileKeys } from "./lib/sopsFile";

const kinds: Record<string, StackKind> = Object.fromEntries(stackKinds.map((k) => [k, k]));

/** The stack's kind as its config file says (core:kind), as index.ts picks the program; else the name is the kind. */
function declaredKind(stack: string): unknown {
  const file = join("stacks", `Pulumi.${stack}.yaml`);
  return existsSync(file) ? (parse(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null)?.config?.["core:kind"] : stack;
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

/**
 * scripts/core.sh says (CORE_PASSPHRASE_FROM_SOPS=1) when `up` would take the local backend's
 * passphrase from the SOPS file: then it is required here as well, not optional.
 */
function passphraseProblems(values: Readonly<Record<string, string>>): Problem[] {
  if (process.env.CORE_PASSPHRASE_FROM_SOPS !== "1" || values[passphraseKey] !== undefined || process.env[passphraseKey] !== undefined) return [];
  return [{ key: passphraseKey, problem: `required: no Pulumi backend is configured, so \`up\` uses the local one in .pulumi-state/ and reads it from this file; run \`just secrets new ${passphraseKey}\` (README: State backend)` }];
}

const passphraseKey = "PULUMI_CONFIG_PASSPHRASE";

function main(name: string | undefined, file: string | undefined): number {
  if (name === undefined || file === undefined) {
    console.error(`usage: check-secrets.ts <stack of kind ${Object.keys(kinds).join("|")}> <sops file>`);
    return 2;
  }
  const kind = declaredKind(name);
  const stack = typeof kind === "string" ? kinds[kind] : undefined;
  if (!stack) {
    // The wording of bundle-render's refusal (scripts/bundle-render.ts).
    console.error(`  - core:kind: stacks/Pulumi.${name}.yaml is a ${String(kind)} stack; secrets are checked for ${Object.keys(kinds).join(", ")} stacks`);
    return 2;
  }
  const { values, problems: envProblems } = checkSecrets(stack, process.env);
  const problems = [...envProblems, ...passphraseProblems(values), ...fileKeyProblems(file)];
  for (const p of problems) console.error(`  - ${p.key}: ${p.problem}`);
  const skipped = sopsEntriesFor(stack).filter((e) => e.optional && values[e.key] === undefined);
  for (const e of skipped) console.log(`  - ${e.key}: absent: ${e.optional?.without}`);
  console.log(`${name}: ${Object.keys(values).length} secrets valid, ${problems.length} problems`);
  return problems.length === 0 ? 0 : 1;
}

process.exitCode = main(process.argv[2], process.argv[3]);
