/**
 * What the tooling learns from a SOPS file without decrypting it, and the recipients of
 * `.sops.yaml` it edits. Pure: text in, text or data out.
 *
 * SOPS encrypts values only. Keys stay in clear, its metadata sits under the top-level key
 * `sops` (getsops/sops v3.13.2 stores/stores.go, SopsMetadataKey), and an empty value is
 * stored as "" without encryption (aes/cipher.go, Cipher.Encrypt: `if isEmpty(plaintext)
 * return "", nil`). So which keys a file holds, and which of them are empty, is readable
 * from the encrypted file itself.
 */
import { isMap, isScalar, isSeq, parse, parseDocument, Scalar, type YAMLMap } from "yaml";
import { ageRecipientProblem } from "./ageRecipient";
import { catalog, sopsKeys, usedElsewhere } from "../../components/secrets/catalog";

export const sopsConfigFile = ".sops.yaml";

export interface FileKey {
  readonly key: string;
  /** False for a key whose value is empty (stored as "" in clear). */
  readonly hasValue: boolean;
}

/** Top-level keys of an encrypted SOPS YAML file, in file order, without its `sops` metadata. */
export function sopsFileKeys(text: string): FileKey[] {
  const doc: unknown = parse(text);
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new Error("its top level is not a YAML map");
  if (!("sops" in doc)) throw new Error("it is not encrypted by sops (no sops metadata)");
  return Object.entries(doc as Record<string, unknown>)
    .filter(([k]) => k !== "sops")
    .map(([key, value]) => ({ key, hasValue: value !== "" && value !== null }));
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** The catalog key a mistyped one most likely meant: same letters in another case, or at most 3 edits away. */
export function closestCatalogKey(key: string): string | undefined {
  const candidates = sopsKeys()
    .map((k) => ({ k, d: k.toLowerCase() === key.toLowerCase() ? 0 : distance(k, key) }))
    .filter((c) => c.d <= 3)
    .sort((a, b) => a.d - b.d);
  return candidates[0]?.k;
}

export interface FileKeyReport {
  /** Keys the catalog does not know: a typo, or a secret someone added without cataloguing it. */
  readonly unknown: readonly { readonly key: string; readonly suggestion?: string }[];
  /** Catalog keys kept for tools outside this program (never read here). */
  readonly elsewhere: readonly string[];
}

export function reportFileKeys(keys: readonly string[]): FileKeyReport {
  const known = new Set(sopsKeys());
  const elsewhere = new Set(catalog.filter(usedElsewhere).map((e) => e.key));
  return {
    unknown: keys.filter((k) => !known.has(k)).map((key) => ({ key, suggestion: closestCatalogKey(key) })),
    elsewhere: keys.filter((k) => elsewhere.has(k)),
  };
}

/**
 * The creation rule sops applies to `file` (a path relative to `.sops.yaml`'s directory):
 * the first whose path_regex matches it, or the first without one (config/config.go,
 * parseCreationRuleForFile).
 */
function ruleFor(doc: ReturnType<typeof parseDocument>, file: string): YAMLMap {
  const rules = doc.get("creation_rules");
  if (!isSeq(rules)) throw new Error(`${sopsConfigFile} has no creation_rules list`);
  for (const rule of rules.items) {
    if (!isMap(rule)) continue;
    const regex = rule.get("path_regex");
    if (regex === undefined || regex === "" || new RegExp(String(regex)).test(file)) return rule;
  }
  throw new Error(`no creation rule of ${sopsConfigFile} matches ${file}`);
}

/**
 * The age recipients of that rule. sops reads the `age` field as one comma-separated string
 * or, since 3.11.0, a YAML list (config/config.go parseKeyField; CHANGELOG.md 3.11.0).
 */
function ageField(rule: YAMLMap): { readonly list: boolean; readonly recipients: string[] } {
  if (rule.has("key_groups")) throw new Error(`the rule uses key_groups; edit ${sopsConfigFile} by hand`);
  const node = rule.get("age", true);
  if (node === undefined) return { list: false, recipients: [] };
  if (isSeq(node)) return { list: true, recipients: node.items.map((i) => String(isScalar(i) ? i.value : i).trim()).filter((r) => r !== "") };
  if (isScalar(node) && typeof node.value === "string")
    return { list: false, recipients: node.value.split(",").map((r) => r.trim()).filter((r) => r !== "") };
  throw new Error(`the rule's age field is neither a string nor a list`);
}

export function recipientsFor(configText: string, file: string): string[] {
  return ageField(ruleFor(parseDocument(configText), file)).recipients;
}

/** `.sops.yaml` with the rule for `file` carrying exactly `recipients`, comments and layout kept. */
function withRecipients(configText: string, file: string, recipients: readonly string[]): string {
  const doc = parseDocument(configText);
  const rule = ruleFor(doc, file);
  const { list } = ageField(rule);
  if (list) {
    rule.set("age", doc.createNode([...recipients]));
  } else {
    // A folded scalar, as the file had it: the printer folds at the spaces, and sops splits
    // on commas and trims the spaces around each recipient.
    const scalar = new Scalar(recipients.join(", "));
    scalar.type = Scalar.BLOCK_FOLDED;
    rule.set("age", scalar);
  }
  return doc.toString();
}

export type RecipientChange = { readonly ok: true; readonly config: string; readonly recipients: readonly string[] } | { readonly ok: false; readonly refusal: string };

export function addRecipient(configText: string, file: string, recipient: string): RecipientChange {
  const problem = ageRecipientProblem(recipient);
  if (problem) return { ok: false, refusal: `${recipient} is not an age public key: ${problem}` };
  const current = recipientsFor(configText, file);
  if (current.includes(recipient)) return { ok: false, refusal: `${recipient} is already a recipient of ${file}` };
  const recipients = [...current, recipient];
  return { ok: true, config: withRecipients(configText, file, recipients), recipients };
}

export function removeRecipient(configText: string, file: string, recipient: string): RecipientChange {
  const current = recipientsFor(configText, file);
  if (!current.includes(recipient)) return { ok: false, refusal: `${recipient} is not a recipient of ${file}; recipients: ${current.join(", ")}` };
  if (current.length === 1) return { ok: false, refusal: `${recipient} is the last recipient of ${file}; add another one first, or nobody could decrypt it` };
  const recipients = current.filter((r) => r !== recipient);
  return { ok: true, config: withRecipients(configText, file, recipients), recipients };
}

/** The recipient .sops.yaml ships with: nobody holds its key. */
export const placeholderRecipient = /^age1replacewithyouragepublickey/;

/**
 * `just init`: the rule for `file` gets `recipient` in place of the shipped placeholder;
 * recipients that are real stay. Unchanged (undefined) when `recipient` is already there.
 */
export function claimRecipient(configText: string, file: string, recipient: string): RecipientChange | undefined {
  const problem = ageRecipientProblem(recipient);
  if (problem) return { ok: false, refusal: `${recipient} is not an age public key: ${problem}` };
  const current = recipientsFor(configText, file);
  if (current.includes(recipient) && !current.some((r) => placeholderRecipient.test(r))) return undefined;
  const recipients = [...current.filter((r) => !placeholderRecipient.test(r) && r !== recipient), recipient];
  return { ok: true, config: withRecipients(configText, file, recipients), recipients };
}
