/**
 * The app table of the runtime tier (stack config `core:apps`): one row per app that reads
 * secrets from OpenBao. Every name OpenBao and the cluster use for an app — its KV paths,
 * policy, Kubernetes auth role, SecretProviderClass and synced Secret — is derived here from
 * its row, so they cannot drift apart. Pure: no Pulumi, no I/O.
 */

/** A: the CSI driver mounts each key as a file. B: it also syncs them into a k8s Secret (`secretObjects`). */
export type SecretPattern = "A" | "B";
export const patterns: readonly SecretPattern[] = ["A", "B"];

/** Character sets for generated initial values. */
export type Alphabet = "alphanumeric" | "hex" | "symbols";
export const alphabets: readonly Alphabet[] = ["alphanumeric", "hex", "symbols"];
/** The special characters of `symbols`: none that a shell, an env file or YAML would read as syntax. */
export const symbolCharacters = "!%*+-.:=?@^_~";

export interface AppKey {
  /** The key: file name in the mount (pattern A), key of the synced Secret (pattern B). */
  readonly name: string;
  /** Characters of the generated initial value. */
  readonly length: number;
  readonly alphabet: Alphabet;
}

export interface AppRow {
  readonly app: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Below the KV v2 mount: each key lives at `secret/<kvPath>/<key>`, field `value`. */
  readonly kvPath: string;
  readonly keys: readonly AppKey[];
  readonly pattern: SecretPattern;
  /** Pattern B only: the k8s Secret the CSI driver syncs the keys into. */
  readonly secretName?: string;
}

/** KV v2 mount of the runtime tier (DESIGN: "KV v2 at `secret/`"). */
export const kvMount = "secret";
/** Path of the Kubernetes auth method. */
export const kubernetesAuthPath = "kubernetes";
/** The one field each KV secret holds. */
export const valueField = "value";

const dnsLabel = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const dnsSubdomain = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
/** A key valid as a k8s Secret key (kubernetes pkg/apis/core/validation: IsConfigMapKey) and as a file name. */
const secretKey = /^[-._a-zA-Z0-9]{1,253}$/;
const kvSegment = /^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;

export const defaultKeyLength = 32;

export interface ParsedRow {
  readonly row?: AppRow;
  /** What is wrong, each as `field: problem`, never quoting a value that could be secret. */
  readonly problems: readonly string[];
}

function parseKey(value: unknown, i: number, problems: string[]): AppKey | undefined {
  const where = `keys[${i}]`;
  const v = (typeof value === "string" ? { name: value } : (value ?? {})) as Record<string, unknown>;
  const name = v.name;
  const length = v.length ?? defaultKeyLength;
  const alphabet = v.alphabet ?? "alphanumeric";
  const before = problems.length;
  if (typeof name !== "string" || !secretKey.test(name) || name === "." || name === "..")
    problems.push(`${where}.name: expected a key name of letters, digits, '-', '_' or '.'`);
  if (typeof length !== "number" || !Number.isInteger(length) || length < 16 || length > 128)
    problems.push(`${where}.length: expected a whole number from 16 to 128`);
  if (!alphabets.includes(alphabet as Alphabet)) problems.push(`${where}.alphabet: expected one of ${alphabets.join(", ")}`);
  else if (alphabet === "hex" && typeof length === "number" && length % 2 !== 0) problems.push(`${where}.length: hex values need an even length`);
  return problems.length === before ? { name: name as string, length: length as number, alphabet: alphabet as Alphabet } : undefined;
}

/** Checks one row of `core:apps`. */
export function parseAppRow(value: unknown): ParsedRow {
  const problems: string[] = [];
  if (!value || typeof value !== "object" || Array.isArray(value)) return { problems: ["expected an object with app, namespace, serviceAccount, kvPath, keys, pattern"] };
  const v = value as Record<string, unknown>;
  const known = ["app", "namespace", "serviceAccount", "kvPath", "keys", "pattern", "secretName"];
  for (const k of Object.keys(v).filter((k) => !known.includes(k))) problems.push(`${k}: unknown field (expected ${known.join(", ")})`);
  const str = (field: string, pattern: RegExp, expected: string): string | undefined => {
    const s = v[field];
    if (typeof s === "string" && pattern.test(s)) return s;
    problems.push(`${field}: ${s === undefined ? "missing" : `expected ${expected}`}`);
    return undefined;
  };
  const app = str("app", dnsLabel, "one DNS label (a-z, 0-9, -)");
  const namespace = str("namespace", dnsLabel, "a namespace name (one DNS label)");
  const serviceAccount = str("serviceAccount", dnsSubdomain, "a service account name (DNS subdomain)");
  const kvPath = str("kvPath", /^[a-z0-9][a-z0-9_/-]*$/, "a path below secret/ such as grafana or team/app");
  if (kvPath !== undefined && !kvPath.split("/").every((s) => kvSegment.test(s)))
    problems.push("kvPath: expected segments of a-z, 0-9, '-' or '_', separated by single '/'");
  const pattern = v.pattern;
  if (!patterns.includes(pattern as SecretPattern)) problems.push(`pattern: ${pattern === undefined ? "missing" : "expected A (files) or B (files and a synced k8s Secret)"}`);
  const secretName = v.secretName;
  if (pattern === "B" && !(typeof secretName === "string" && dnsSubdomain.test(secretName)))
    problems.push(`secretName: ${secretName === undefined ? "missing, pattern B syncs a k8s Secret and needs its name" : "expected a Secret name (DNS subdomain)"}`);
  if (pattern === "A" && secretName !== undefined) problems.push("secretName: only pattern B syncs a k8s Secret; pattern A creates none");
  const rawKeys = v.keys;
  const keys: AppKey[] = [];
  if (!Array.isArray(rawKeys) || rawKeys.length === 0) problems.push(`keys: ${rawKeys === undefined ? "missing" : "expected a non-empty list"}`);
  else {
    rawKeys.forEach((k, i) => {
      const key = parseKey(k, i, problems);
      if (key) keys.push(key);
    });
    const names = keys.map((k) => k.name);
    for (const dup of new Set(names.filter((n, i) => names.indexOf(n) !== i))) problems.push(`keys: ${dup} is listed twice`);
  }
  if (problems.length > 0) return { problems };
  const row: AppRow = {
    app: app!,
    namespace: namespace!,
    serviceAccount: serviceAccount!,
    kvPath: kvPath!,
    keys,
    pattern: pattern as SecretPattern,
    ...(pattern === "B" ? { secretName: secretName as string } : {}),
  };
  return { row, problems: [] };
}

/** Problems across rows: names that must be unique, paths that must not nest. */
export function tableProblems(rows: readonly AppRow[]): string[] {
  const problems: string[] = [];
  const duplicates = (label: string, values: string[]) => {
    for (const d of new Set(values.filter((x, i) => values.indexOf(x) !== i))) problems.push(`${label} ${d} appears in more than one row`);
  };
  duplicates("app", rows.map((r) => r.app));
  duplicates("kvPath", rows.map((r) => r.kvPath));
  duplicates("secretName", rows.filter((r) => r.secretName).map((r) => `${r.namespace}/${r.secretName}`));
  for (const a of rows)
    for (const b of rows)
      if (a !== b && b.kvPath.startsWith(`${a.kvPath}/`)) problems.push(`kvPath ${b.kvPath} (app ${b.app}) lies inside ${a.kvPath} (app ${a.app})`);
  return problems;
}

/** KV name of one key, as `bao kv get secret/<name>` takes it. */
export const kvName = (row: AppRow, key: AppKey | string) => `${row.kvPath}/${typeof key === "string" ? key : key.name}`;
/** The API path of a key's data, which policies and the CSI provider's `secretPath` use. */
export const dataPath = (row: AppRow, key: AppKey | string) => `${kvMount}/data/${kvName(row, key)}`;
export const policyName = (row: AppRow) => `app-${row.app}`;
export const roleName = (row: AppRow) => row.app;
/** The SecretProviderClass's name in the app's namespace. */
export const providerClassName = (row: AppRow) => `${row.app}-openbao`;

/**
 * The app's policy: read on the data path of each of its keys, nothing else — no list, no
 * metadata, no glob that could reach a neighbour's path.
 */
export function policyDocument(row: AppRow): string {
  const blocks = row.keys.map((k) => `path "${dataPath(row, k)}" {\n  capabilities = ["read"]\n}\n`);
  return [`# ${row.app}: read-only, its own keys (generated by homelab core from core:apps)\n`, ...blocks].join("\n");
}
