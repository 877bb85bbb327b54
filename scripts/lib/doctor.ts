/**
 * What the README's examples leave behind and no other check catches: example values still in
 * a stack's config, and the placeholder age recipient in .sops.yaml. Each passes every format
 * check (example.net is a valid domain), yet `up` with them fails late, at Cloudflare or
 * Hetzner, or locks the operator out. Each finding names the field and why, never the value.
 */
import { isIP } from "node:net";
import { placeholderRecipient, recipientsFor } from "./sopsFile";

export interface Finding {
  readonly field: string;
  readonly problem: string;
}

/** RFC 2606 and RFC 6761: names reserved for documentation and tests. */
const exampleName = /(^|[.@/])(example\.(com|net|org)|[a-z0-9-]+\.(example|test|invalid))(\.?$|[/:])/i;

/** RFC 5737 (IPv4) and RFC 3849 (IPv6): address ranges reserved for documentation. */
function inDocumentationRange(cidr: string): boolean {
  const address = cidr.split("/")[0];
  if (isIP(address) === 4) return /^(192\.0\.2|198\.51\.100|203\.0\.113)\./.test(address);
  if (isIP(address) === 6) return /^2001:0?db8:/i.test(address);
  return false;
}

/** The placeholder public key the shipped stack config carries (an Ed25519 key of "Example…"). */
const exampleSshKey = /AAAAI(Example)+/;

/** Example values in a stack's `config:` mapping, by field (`core:domain`, `core:operatorSshSources[0]`, …). */
export function exampleValues(config: Readonly<Record<string, unknown>>): Finding[] {
  const findings: Finding[] = [];
  const visit = (field: string, value: unknown): void => {
    if (Array.isArray(value)) return value.forEach((v, i) => visit(`${field}[${i}]`, v));
    if (value !== null && typeof value === "object") return Object.entries(value).forEach(([k, v]) => visit(`${field}.${k}`, v));
    if (typeof value !== "string") return;
    if (exampleSshKey.test(value)) findings.push({ field, problem: "still the README's example SSH key: put your own public key here" });
    else if (inDocumentationRange(value)) findings.push({ field, problem: "an address reserved for documentation (RFC 5737 / RFC 3849): put your own" });
    else if (exampleName.test(value.trim())) findings.push({ field, problem: "an example name (RFC 2606 reserves it for documentation): put your own" });
  };
  for (const [key, value] of Object.entries(config)) visit(key, value);
  return findings;
}


/** A placeholder recipient in the .sops.yaml rule for `file`, the stack's SOPS file. */
export function placeholderRecipients(sopsConfigText: string, file: string): Finding[] {
  return recipientsFor(sopsConfigText, file).some((r) => placeholderRecipient.test(r))
    ? [{ field: `.sops.yaml: the rule for ${file}`, problem: "the placeholder recipient: run `just init`, or put your age public key (age-keygen -y KEYFILE)" }]
    : [];
}
