/**
 * `just doctor [STACK]`: example values left in stacks/Pulumi.<STACK>.yaml and the placeholder
 * recipient in the .sops.yaml rule for the stack's SOPS file, every one named at once (scripts/lib/doctor.ts). Needs no sops and
 * no key: it reads only files in clear.
 */
import { existsSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import { exampleValues, placeholderRecipients, type Finding } from "./lib/doctor";
import { secretsFileFor } from "./lib/secretsFiles";

function readYaml(file: string): { value?: unknown; problem?: Finding } {
  try {
    return { value: parse(readFileSync(file, "utf8")) };
  } catch (e) {
    const line = (e as { linePos?: { line: number }[] }).linePos?.[0]?.line;
    return { problem: { field: file, problem: `not valid YAML${line ? ` (line ${line})` : ""}` } };
  }
}

function main(stack: string): number {
  const stackFile = `stacks/Pulumi.${stack}.yaml`;
  if (!existsSync(stackFile)) {
    console.error(`doctor: no stack config ${stackFile}`);
    return 2;
  }
  const findings: Finding[] = [];
  const config = readYaml(stackFile);
  if (config.problem) findings.push(config.problem);
  else findings.push(...exampleValues((config.value as { config?: Record<string, unknown> } | null)?.config ?? {}).map((f) => ({ ...f, field: `${stackFile}: ${f.field}` })));
  const stackConfig = (config.value as { config?: Record<string, unknown> } | null)?.config ?? {};
  const mapped = secretsFileFor(stack, stackConfig);
  if ("problem" in mapped) findings.push({ field: stackFile, problem: mapped.problem });
  else if (!existsSync(".sops.yaml")) findings.push({ field: ".sops.yaml", problem: "missing" });
  else {
    try {
      findings.push(...placeholderRecipients(readFileSync(".sops.yaml", "utf8"), mapped.file));
    } catch (e) {
      findings.push({ field: ".sops.yaml", problem: (e as Error).message });
    }
  }
  for (const f of findings) console.error(`  - ${f.field}: ${f.problem}`);
  console.log(`doctor ${stack}: ${findings.length === 0 ? "no example value or placeholder left" : `${findings.length} to fix before \`up\``}`);
  return findings.length === 0 ? 0 : 1;
}

process.exitCode = main(process.argv[2] ?? "hetzner");
