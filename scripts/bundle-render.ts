/**
 * `just bundle-render <stack> DIR` (under `sops exec-env`, from scripts/core.sh): writes into
 * DIR what the stack would ship to /etc/bifrost — the bundle's files and `.env`/`.secrets.env` —
 * with every secret replaced by `<redacted:NAME:fingerprint>`. No Pulumi run, no value written.
 * Refuses, naming each problem, a stack that is not a hetzner stack, secrets or settings the
 * program would refuse, and a DIR that is not empty or lies inside the bundle itself.
 */
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parse } from "yaml";
import { redactedSecrets, renderedEnvFiles, settingsFromStackConfig } from "./lib/bundleRender";
import { checkSecrets, type Problem } from "../components/secrets/env";
import { bundleDir } from "../components/stack/paths";

function fail(problems: readonly Problem[]): number {
  console.error(`bundle-render: ${problems.length} problem${problems.length === 1 ? "" : "s"}, nothing was written:`);
  for (const p of problems) console.error(`  - ${p.key}: ${p.problem}`);
  return 1;
}

function main(stack: string | undefined, dir: string | undefined): number {
  if (stack === undefined || dir === undefined) {
    console.error("usage: bundle-render.ts <stack> <dir>");
    return 2;
  }
  // The working directory's stack config, as Pulumi reads it (core.sh runs from the project root).
  const stackFile = join("stacks", `Pulumi.${stack}.yaml`);
  const config = ((parse(readFileSync(stackFile, "utf8")) ?? {}) as { config?: Record<string, unknown> }).config ?? {};
  if (config["core:kind"] !== "hetzner") return fail([{ key: "core:kind", problem: `stacks/Pulumi.${stack}.yaml is a ${String(config["core:kind"])} stack; only a hetzner stack ships a bundle` }]);

  const target = resolve(dir);
  const problems: Problem[] = [];
  if (!relative(bundleDir, target).startsWith("..")) problems.push({ key: dir, problem: "lies inside cloud/bifrost/, the bundle itself; choose a directory outside it" });
  else if (existsSync(target) && readdirSync(target).length > 0) problems.push({ key: dir, problem: "is not empty; choose a new or empty directory" });
  const secrets = checkSecrets("hetzner", process.env);
  const settings = settingsFromStackConfig(config, process.env);
  problems.push(...secrets.problems, ...settings.problems);
  if (problems.length > 0 || !settings.settings) return fail(problems);

  cpSync(bundleDir, target, { recursive: true });
  const files = renderedEnvFiles(settings.settings, redactedSecrets(secrets.values));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(target, name), text, { mode: 0o600 });
  console.log(`${stack}: the bundle and ${Object.keys(files).join(", ")} written to ${dir}, every secret redacted`);
  return 0;
}

process.exitCode = main(process.argv[2], process.argv[3]);
