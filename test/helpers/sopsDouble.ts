/**
 * Files for the sops double (test/sops-double/sops): an encrypted-looking SOPS file, an age key
 * file, and a project directory the scripts can run in without touching the real one.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { encodeAgeRecipient } from "../../scripts/lib/ageRecipient";
import { projectRoot } from "../../components/stack/paths";

export const sopsDoubleDir = join(projectRoot, "test", "sops-double");

/** A fresh, valid age X25519 recipient. */
export const newRecipient = (): string => encodeAgeRecipient(randomBytes(32));

/** An age key file as age-keygen writes it (FiloSottile/age cmd/age-keygen/keygen.go): the double reads its public key comment. */
export function ageKeyFile(path: string, recipient: string): void {
  writeFileSync(path, `# created: 2026-01-01T00:00:00Z\n# public key: ${recipient}\nAGE-SECRET-KEY-1DOUBLEDOUBLEDOUBLEDOUBLEDOUBLEDOUBLEDOUBLEDOUBLEDOUBLEDOUBLE\n`);
  chmodSync(path, 0o600);
}

/** The double's "encryption" (see test/sops-double/sops): base64 in sops's ENC[…] envelope, "" stays "". */
const enc = (v: string) => (v === "" ? "" : `ENC[AES256_GCM,data:${Buffer.from(v).toString("base64")},iv:ZG91YmxlaXY=,tag:ZG91YmxldGFn,type:str]`);

export function writeSopsFile(path: string, values: Record<string, string>, recipients: readonly string[]): void {
  const data = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, enc(v)]));
  const sops = { age: recipients.map((recipient) => ({ recipient, enc: "-----BEGIN AGE ENCRYPTED FILE-----\nZG91Ymxl\n-----END AGE ENCRYPTED FILE-----\n" })), lastmodified: "2026-01-01T00:00:00Z", mac: "ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]", unencrypted_suffix: "_unencrypted", version: "3.13.2" };
  writeFileSync(path, stringify({ ...data, sops }, { indent: 4 }));
}

/** What the double holds: values decoded, and the recipients. */
export function readSopsFile(path: string): { values: Record<string, string>; recipients: string[] } {
  const { sops, ...data } = parse(readFileSync(path, "utf8")) as Record<string, unknown> & { sops: { age: { recipient: string }[] } };
  const values = Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, v === "" ? "" : Buffer.from(/data:([^,]*),/.exec(String(v))![1], "base64").toString()]),
  );
  return { values, recipients: sops.age.map((a) => a.recipient) };
}

/**
 * A project directory in `root`: scripts, components and dependencies linked from the real
 * project (read only), with its own secrets/, stacks/ and .sops.yaml that a test may change.
 */
export function scratchProject(root: string): string {
  const project = join(root, "project");
  mkdirSync(join(project, "secrets"), { recursive: true });
  mkdirSync(join(project, "stacks"), { recursive: true });
  for (const link of ["scripts", "components", "node_modules", "tsconfig.json", "package.json", "Pulumi.yaml"]) symlinkSync(join(projectRoot, link), join(project, link));
  return project;
}
