/**
 * Prints the SOPS file a stack reads (scripts/lib/secretsFiles.ts), from stacks/Pulumi.<stack>.yaml
 * in the working directory; exit 1 with the reason when the stack's mapping is refused, exit 3
 * with one line on stdout naming the file and position when it is not valid YAML.
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
  const file = join("stacks", `Pulumi.${stack}.yaml`);
  let document: unknown;
  try {
    document = parse(readFileSync(file, "utf8"));
  } catch (e) {
    // The parser's own message quotes the file's text: only its position and code are shown.
    const at = (e as { linePos?: { line: number; col: number }[] }).linePos?.[0];
    console.log(`${file}: not valid YAML${at ? ` at line ${at.line}, column ${at.col}` : ""} (${String((e as { code?: string }).code ?? (e as Error).name)})`);
    return 3;
  }
  const config = ((document ?? {}) as { config?: Record<string, unknown> }).config ?? {};
  const mapped = secretsFileFor(stack, config);
  if ("problem" in mapped) {
    console.error(mapped.problem);
    return 1;
  }
  console.log(mapped.file);
  return 0;
}

process.exitCode = main(process.argv[2]);
