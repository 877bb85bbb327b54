/**
 * Prints the SOPS file a stack reads (scripts/lib/secretsFiles.ts), from stacks/Pulumi.<stack>.yaml
 * in the working directory; exit 1 with the reason when the stack's mapping is refused.
 * Usage: secrets-file.ts <stack>
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { secretsFileFor } from "./lib/secretsFiles";

function main(stack: string | undefined): number {
  if (stack === undefined) {
    console.error("usage: secrets-file.ts <stack>");
    return 2;
  }
  const config = ((parse(readFileSync(join("stacks", `Pulumi.${stack}.yaml`), "utf8")) ?? {}) as { config?: Record<string, unknown> }).config ?? {};
  const mapped = secretsFileFor(stack, config);
  if ("problem" in mapped) {
    console.error(mapped.problem);
    return 1;
  }
  console.log(mapped.file);
  return 0;
}

process.exitCode = main(process.argv[2]);
