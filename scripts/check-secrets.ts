/**
 * Checks the SOPS environment against the catalog for one stack (`just secrets-check`), the
 * same check the program makes first, without Pulumi. Prints key names only.
 */
import { sopsEntriesFor, type StackKind } from "../components/catalog";
import { checkSecrets } from "../components/env";

const stacks: Record<string, StackKind> = { hetzner: "hetzner", "hetzner-data": "hetzner-data", cluster: "cluster" };

function main(name: string | undefined): number {
  const stack = name === undefined ? undefined : stacks[name];
  if (!stack) {
    console.error(`usage: check-secrets.ts <${Object.keys(stacks).join("|")}>`);
    return 2;
  }
  const { values, problems } = checkSecrets(stack, process.env);
  for (const p of problems) console.error(`  - ${p.key}: ${p.problem}`);
  const skipped = sopsEntriesFor(stack).filter((e) => e.optional && values[e.key] === undefined);
  for (const e of skipped) console.log(`  - ${e.key}: absent, ${e.optional?.skips} will be skipped`);
  console.log(`${stack}: ${Object.keys(values).length} secrets valid, ${problems.length} problems`);
  return problems.length === 0 ? 0 : 1;
}

process.exitCode = main(process.argv[2]);
