/**
 * What re-runs the bootstrap: a hash of the shipped files and, per secret that reaches the
 * VPS, a keyed fingerprint. A preview then names the secrets that changed without showing
 * them, and an unkeyed hash (guessable for short or known values) never lands in state.
 */
import { createHash, createHmac, hkdfSync } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { entriesOnVps } from "./catalog";

/**
 * The fingerprint key is derived from NB_DATA_STORE_KEY: high-entropy and never rotated
 * (NetBird's database is encrypted with it), so fingerprints of other secrets stay
 * comparable across every rotation they go through.
 */
export const fingerprintKeySource = "NB_DATA_STORE_KEY";

export interface SecretFingerprint {
  readonly secret: string;
  readonly fingerprint: string;
}

function fingerprintKey(values: Readonly<Record<string, string>>): Buffer {
  const source = values[fingerprintKeySource];
  if (source === undefined) throw new Error(`${fingerprintKeySource} is needed to key the secret fingerprints`);
  return Buffer.from(hkdfSync("sha256", Buffer.from(source, "base64"), "homelab-core", "bootstrap trigger fingerprints v1", 32));
}

/** One entry per secret the program ships to the VPS, in catalog order; absent optional ones are left out. */
export function secretFingerprints(values: Readonly<Record<string, string>>): SecretFingerprint[] {
  const key = fingerprintKey(values);
  return entriesOnVps()
    .filter((e) => values[e.key] !== undefined)
    .map((e) => ({
      secret: e.key,
      fingerprint: createHmac("sha256", key).update(`${e.key}\0${values[e.key]}`).digest("hex").slice(0, 16),
    }));
}

/** SHA-256 over every file below `dir`: relative path and content, in sorted order. */
export function hashDirectory(dir: string): string {
  const hash = createHash("sha256");
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((ent) =>
      ent.isDirectory() ? walk(join(d, ent.name)) : [join(d, ent.name)],
    );
  for (const file of walk(dir).sort()) {
    hash.update(relative(dir, file).split(sep).join("/")).update("\0");
    hash.update(readFileSync(file)).update("\0");
  }
  return hash.digest("hex");
}
