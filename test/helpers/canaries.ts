/**
 * Canary secret values: unique per key and run tag, valid for the key's format, obviously
 * fake. Each one carries an alphanumeric marker that survives any quoting or escaping, so
 * a scan finds it in a rendered env file or in JSON as well as raw.
 */
import { entriesFor, type StackKind } from "../../components/catalog";

const pad = (s: string, length: number, fill = "Z") => (s + fill.repeat(length)).slice(0, length);
const marker = (key: string, tag: string) => `CANARY${key.replace(/_/g, "").toLowerCase()}${tag}`;

/** Value per catalog key, around its marker; some carry `$`, `#`, `\` and spaces on purpose. */
const builders: Record<string, (m: string, tag: string) => string> = {
  HCLOUD_TOKEN: (m) => pad(m, 64),
  CLOUDFLARE_API_TOKEN: (m) => pad(`${m}_-`, 48),
  AUTHENTIK_TOKEN: (m) => pad(m, 48),
  AUTHENTIK_BOOTSTRAP_PASSWORD: (m) => `${m} $PWD #pw \\ &`,
  AUTHENTIK_SECRET_KEY: (m) => pad(`${m} $HOME #not-a-comment \\ back\\slash`, 64, "x"),
  AUTHENTIK_POSTGRESQL_PASSWORD: (m) => `${m} $1 #hash \\`,
  // 43 base64 characters and one `=` decode to exactly 32 bytes; the trailing A keeps it canonical.
  NB_DATA_STORE_KEY: (m) => `${pad(m, 42, "A")}A=`,
  NB_RELAY_SECRET: (m) => `${pad(m, 42, "A")}A=`,
  NB_PROXY_TOKEN: (m) => `nbx_${pad(m, 36)}`,
  // A setup key is hex only: its marker is the last group.
  NB_BIFROST_SETUP_KEY: (_m, tag) => `CA4A41E5-0000-4000-8000-${pad(Buffer.from(tag).toString("hex").toUpperCase(), 12, "C")}`,
  OPENBAO_UNSEAL_KEY: (m) => `${pad(m, 42, "A")}A=`,
  OPENBAO_TOKEN: (m) => `hvs.${pad(m, 28)}`,
};

export interface Canary {
  readonly value: string;
  /** What a scan looks for: present in the value, unchanged by quoting. */
  readonly marker: string;
}

export function canary(key: string, tag = "a"): Canary {
  const build = builders[key];
  if (!build) throw new Error(`no canary builder for ${key}`);
  const value = build(marker(key, tag), tag);
  const found = value.match(/[A-Za-z0-9]{12,}/g)?.sort((a, b) => b.length - a.length)[0];
  if (!found) throw new Error(`canary for ${key} has no marker`);
  return { value, marker: found };
}

export function canaryEnv(stack: StackKind, tag = "a"): Record<string, string> {
  return Object.fromEntries(entriesFor(stack).map((e) => [e.key, canary(e.key, tag).value]));
}

export function canaryMarkers(stack: StackKind, tag = "a"): Record<string, string> {
  return Object.fromEntries(entriesFor(stack).map((e) => [e.key, canary(e.key, tag).marker]));
}

/** Keys whose marker appears in `text`. */
export function leakedKeys(text: string, markers: Record<string, string>): string[] {
  return Object.keys(markers).filter((k) => text.includes(markers[k]));
}
