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
 *   recipients claim FILE AGE_PUBKEY
 *                                puts AGE_PUBKEY in place of the shipped placeholder (`just init`).
 *   kind STACK                   the stack's core:kind, from stacks/Pulumi.STACK.yaml.
 *   init-plan KIND FILE|- 0|1    "generate KEY" / "ask KEY" lines: what `just init` still has to
 *                                put into FILE (- : no file yet); 1 when `up` reads the passphrase from it.
 *   init-document KEY…           a YAML mapping for `sops encrypt`: a fresh value for each KEY the
 *                                catalog makes, the environment's for a KEY issued elsewhere;
 *                                refuses to write to a terminal.
 *   check KEY                    the value on stdin against KEY's format rule: exit 0, or 1 with the rule.
 *   json                         stdin as one JSON string, for `sops set --value-stdin`.
 * Runs from the project root. Never prints a value.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { entry, stackKinds, type StackKind } from "../components/secrets/catalog";
import { initPlan } from "./lib/init";
import { generateValue, plan, type Action } from "./lib/secretsLifecycle";
import { addRecipient, claimRecipient, recipientsFor, removeRecipient, sopsConfigFile, sopsFileKeys } from "./lib/sopsFile";

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

/**
 * A secret goes into a pipe to sops, never onto a screen. When sops fails it closes the pipe
 * first; its own message says why, so the broken pipe ends this side quietly (exit 1) instead
 * of with Node's stack trace.
 */
function writeSecretToPipe(text: string): void {
  if (process.stdout.isTTY) throw new Refusal("this writes a secret: pipe it into sops, not to a terminal");
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    process.exitCode = 1;
  });
  process.stdout.write(text);
}

function generateCommand(key: string): void {
  writeSecretToPipe(JSON.stringify(generateValue(entry(key))));
}


function kindCommand(stack: string): void {
  const kind = ((parse(readFileSync(join("stacks", `Pulumi.${stack}.yaml`), "utf8")) ?? {}) as { config?: Record<string, unknown> }).config?.["core:kind"];
  if (!stackKinds.includes(kind as StackKind)) throw new Refusal(`core:kind: stacks/Pulumi.${stack}.yaml is a ${String(kind)} stack; expected one of ${stackKinds.join(", ")}`);
  console.log(kind);
}

function initPlanCommand(kind: string, file: string, passphraseFromSops: string): void {
  if (!stackKinds.includes(kind as StackKind)) throw new Refusal(`unknown stack kind ${kind}`);
  const result = initPlan(kind as StackKind, file === "-" ? [] : readKeys(file), passphraseFromSops === "1");
  for (const e of result.generate) console.log(`generate ${e.key}`);
  for (const e of result.ask) console.log(`ask ${e.key}`);
}

/** A key with a generator gets a fresh value; one issued elsewhere is taken from the environment (init.sh asked for it). */
function initDocumentCommand(keys: readonly string[]): void {
  const value = (k: string) => {
    const e = entry(k);
    if (e.generator) return generateValue(e);
    const given = process.env[k];
    if (!given || (e.format && !e.format.test(given))) throw new Refusal(`${k}: no valid value in the environment`);
    return given;
  };
  writeSecretToPipe(stringify(Object.fromEntries(keys.map((k) => [k, value(k)]))));
}

/** Exit 0 when stdin's value (one trailing newline dropped) passes KEY's rule; else 1, naming the rule, never the value. */
function checkCommand(key: string): number {
  const value = readFileSync(0, "utf8").replace(/\r?\n$/, "");
  const e = entry(key);
  if (value === "") {
    console.error(`${key}: empty`);
    return 1;
  }
  if (e.format && !e.format.test(value)) {
    console.error(`${key}: wrong format: expected ${e.format.rule}`);
    return 1;
  }
  return 0;
}

function jsonCommand(): void {
  writeSecretToPipe(JSON.stringify(readFileSync(0, "utf8").replace(/\r?\n$/, "")));
}

function recipientsCommand(verb: string, file: string, recipient: string | undefined): void {
  const config = readFileSync(sopsConfigFile, "utf8");
  if (verb === "list") {
    for (const r of recipientsFor(config, file)) console.log(r);
    return;
  }
  if (verb === "claim" && recipient !== undefined) {
    const claimed = claimRecipient(config, file, recipient);
    if (claimed === undefined) return console.error(`  ${file} recipients: unchanged`);
    if (!claimed.ok) throw new Refusal(claimed.refusal);
    writeFileSync(sopsConfigFile, claimed.config);
    return console.error(`  ${file} recipients: ${claimed.recipients.join(", ")}`);
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
    else if (command === "kind" && rest.length === 1) kindCommand(rest[0]);
    else if (command === "init-plan" && rest.length === 3) initPlanCommand(rest[0], rest[1], rest[2]);
    else if (command === "init-document") initDocumentCommand(rest);
    else if (command === "check" && rest.length === 1) return checkCommand(rest[0]);
    else if (command === "json" && rest.length === 0) jsonCommand();
    else throw new Refusal("usage: secrets.ts plan <new|rotate> KEY FILE | generate KEY | has KEY FILE | recipients <list|add|remove|claim> FILE [AGE_PUBKEY] | kind STACK | init-plan KIND FILE|- 0|1 | init-document KEY… | check KEY | json");
    return 0;
  } catch (e) {
    // Messages here name keys, files and recipients only; a stack trace adds nothing for an operator.
    console.error(e instanceof Refusal ? e.message : `${sopsConfigFile} or the catalog: ${(e as Error).message}`);
    return e instanceof Refusal ? 1 : 2;
  }
}

process.exitCode = main(process.argv.slice(2));
