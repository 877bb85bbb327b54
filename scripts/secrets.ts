/**
 * The TypeScript half of `just secrets …` (scripts/secrets.sh wires it to sops):
 *   plan <new|rotate> KEY FILE   may KEY be made or rotated? Prints what happens (stderr) and
 *                                "go" or "confirm" (stdout); exit 1 with the reason when not.
 *   generate KEY                 a fresh value as a JSON string on stdout, for
 *                                `sops set --value-stdin`; refuses to write to a terminal.
 *   has KEY FILE                 exit 0 when KEY has a value in FILE, 1 when not (nothing printed).
 *   recipients list FILE         the age recipients `.sops.yaml` gives FILE, one a line.
 *   recipients add|remove FILE AGE_PUBKEY
 *                                rewrites `.sops.yaml` with the new recipient set.
 * Runs from the project root. Never prints a value.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { entry } from "../components/secrets/catalog";
import { generateValue, plan, type Action } from "./lib/secretsLifecycle";
import { addRecipient, recipientsFor, removeRecipient, sopsConfigFile, sopsFileKeys } from "./lib/sopsFile";

class Refusal extends Error {}

function readKeys(file: string) {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new Refusal(`${file} cannot be read`);
  }
  try {
    return sopsFileKeys(text);
  } catch (e) {
    throw new Refusal(`${file} cannot be used: ${(e as Error).message}`);
  }
}

function planCommand(action: string, key: string, file: string): void {
  if (action !== "new" && action !== "rotate") throw new Refusal(`unknown action ${action}`);
  const result = plan(action as Action, key, readKeys(file), file);
  if (!result.ok) throw new Refusal(result.refusal);
  for (const line of result.effects) console.error(`  ${line}`);
  process.stdout.write(result.confirm ? "confirm\n" : "go\n");
}

/** 0 when KEY has a value in FILE (read from the encrypted file's key names), else 1; prints nothing. */
function hasCommand(key: string, file: string): number {
  return readKeys(file).some((k) => k.key === key && k.hasValue) ? 0 : 1;
}

function generateCommand(key: string): void {
  // The value goes into a pipe to sops, never onto a screen.
  if (process.stdout.isTTY) throw new Refusal("generate writes a secret: pipe it into sops set --value-stdin, not to a terminal");
  process.stdout.write(JSON.stringify(generateValue(entry(key))));
}

function recipientsCommand(verb: string, file: string, recipient: string | undefined): void {
  const config = readFileSync(sopsConfigFile, "utf8");
  if (verb === "list") {
    for (const r of recipientsFor(config, file)) console.log(r);
    return;
  }
  if ((verb !== "add" && verb !== "remove") || recipient === undefined) throw new Refusal("usage: recipients <list|add AGE_PUBKEY|remove AGE_PUBKEY>");
  const change = verb === "add" ? addRecipient(config, file, recipient) : removeRecipient(config, file, recipient);
  if (!change.ok) throw new Refusal(change.refusal);
  writeFileSync(sopsConfigFile, change.config);
  console.error(`  ${file} recipients: ${change.recipients.join(", ")}`);
}

function main(args: string[]): number {
  const [command, ...rest] = args;
  try {
    if (command === "has" && rest.length === 2) return hasCommand(rest[0], rest[1]);
    if (command === "plan" && rest.length === 3) planCommand(rest[0], rest[1], rest[2]);
    else if (command === "generate" && rest.length === 1) generateCommand(rest[0]);
    else if (command === "recipients" && rest.length >= 2) recipientsCommand(rest[0], rest[1], rest[2]);
    else throw new Refusal("usage: secrets.ts plan <new|rotate> KEY FILE | generate KEY | has KEY FILE | recipients <list|add|remove> FILE [AGE_PUBKEY]");
    return 0;
  } catch (e) {
    // Messages here name keys, files and recipients only; a stack trace adds nothing for an operator.
    console.error(e instanceof Refusal ? e.message : `${sopsConfigFile} or the catalog: ${(e as Error).message}`);
    return e instanceof Refusal ? 1 : 2;
  }
}

process.exitCode = main(process.argv.slice(2));
