/**
 * The key tree of NetBird's combined-server config file, derived from the Go structs that
 * read it (combined/cmd/config.go, netbirdio/netbird), and a check of a parsed config.yaml
 * against it.
 *
 * LoadConfig there reads the file with a plain gopkg.in/yaml.v3 Unmarshal into
 * CombinedConfig: a key with no struct field is dropped without a word. So the conformance
 * test checks every key, at every depth, against the structs of the pinned version.
 *
 * Regenerate the fixture from a checkout of the pinned tag (no Go toolchain needed):
 *   git -C <netbird> show v0.77.1:combined/cmd/config.go > /tmp/config.go
 *   npx ts-node --transpile-only test/conformance/netbirdConfigKeys.ts /tmp/config.go v0.77.1 <commit> \
 *     > test/conformance/fixtures/netbird-combined-config-keys.json
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

/** What a YAML value must be for a Go field of the config structs. */
export type KeyNode =
  | { kind: "string" | "int" | "uint" | "bool" }
  | { kind: "struct"; go: string; fields: Record<string, KeyNode> }
  | { kind: "list"; item: KeyNode }
  | { kind: "map"; value: KeyNode };

export interface KeyTreeFixture {
  source: { repo: string; path: string; tag: string; commit: string; blob: string; root: string };
  derivedBy: string;
  rules: string[];
  tree: KeyNode;
}

interface GoField {
  name: string;
  type: string;
  tag?: string;
}

/** `type X struct { … }` blocks of one Go file: field name, type and yaml tag. */
export function parseGoStructs(source: string): Map<string, GoField[]> {
  const structs = new Map<string, GoField[]>();
  const block = /^type\s+(\w+)\s+struct\s*\{\n([\s\S]*?)^\}/gm;
  for (const m of source.matchAll(block)) {
    const fields: GoField[] = [];
    for (const raw of m[2].split("\n")) {
      const line = raw.replace(/\/\/.*$/, "").trim();
      if (!line) continue;
      const f = /^(\w+)\s+([^\s`]+)\s*(?:`([^`]*)`)?$/.exec(line);
      if (!f) throw new Error(`${m[1]}: cannot read field line ${JSON.stringify(raw)}`);
      const yamlTag = f[3] ? /yaml:"([^"]*)"/.exec(f[3])?.[1] : undefined;
      fields.push({ name: f[1], type: f[2], tag: yamlTag });
    }
    structs.set(m[1], fields);
  }
  return structs;
}

/** yaml.v3's key for a field: the tag's name, else the field name lowercased; "-" skips it. */
function yamlKey(field: GoField): string | undefined {
  const name = field.tag?.split(",")[0];
  if (name === "-") return undefined;
  if (field.tag?.split(",").includes("inline")) throw new Error(`${field.name}: inline fields are not handled`);
  return name || field.name.toLowerCase();
}

export function keyTree(structs: Map<string, GoField[]>, type: string, seen: string[] = []): KeyNode {
  const t = type.replace(/^\*/, "");
  if (t.startsWith("[]")) return { kind: "list", item: keyTree(structs, t.slice(2), seen) };
  const map = /^map\[string\](.+)$/.exec(t);
  if (map) return { kind: "map", value: keyTree(structs, map[1], seen) };
  if (t === "string" || t === "bool") return { kind: t };
  if (/^int(8|16|32|64)?$/.test(t)) return { kind: "int" };
  if (/^uint(8|16|32|64)?$/.test(t)) return { kind: "uint" };
  const fields = structs.get(t);
  if (!fields) throw new Error(`type ${t} is neither a scalar nor a struct of this file`);
  if (seen.includes(t)) throw new Error(`recursive struct ${t}`);
  const node: KeyNode = { kind: "struct", go: t, fields: {} };
  for (const f of fields) {
    const key = yamlKey(f);
    if (key !== undefined) node.fields[key] = keyTree(structs, f.type, [...seen, t]);
  }
  return node;
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Every key of `value` that the structs do not have, and every value yaml.v3 could not
 * decode into its field, as "path: problem". `null` (an empty YAML value) is accepted
 * anywhere, as yaml.v3 leaves the field at its zero value.
 */
export function checkAgainst(node: KeyNode, value: unknown, path = ""): string[] {
  if (value === null) return [];
  const at = path || "(root)";
  switch (node.kind) {
    case "struct": {
      if (!isMapping(value)) return [`${at}: expected a mapping for ${node.go}`];
      return Object.entries(value).flatMap(([k, v]) => {
        const child = node.fields[k];
        const p = path ? `${path}.${k}` : k;
        return child ? checkAgainst(child, v, p) : [`${p}: unknown key (${node.go} has no field with yaml name "${k}")`];
      });
    }
    case "map":
      if (!isMapping(value)) return [`${at}: expected a mapping`];
      return Object.entries(value).flatMap(([k, v]) => checkAgainst(node.value, v, `${path}.${k}`));
    case "list":
      if (!Array.isArray(value)) return [`${at}: expected a sequence`];
      return value.flatMap((v, i) => checkAgainst(node.item, v, `${path}[${i}]`));
    case "bool":
      return typeof value === "boolean" ? [] : [`${at}: expected a boolean`];
    case "int":
      return Number.isInteger(value) ? [] : [`${at}: expected an integer`];
    case "uint":
      return Number.isInteger(value) && (value as number) >= 0 ? [] : [`${at}: expected a non-negative integer`];
    case "string":
      // yaml.v3 decodes any scalar into a string field (its text); only collections fail.
      return typeof value === "object" ? [`${at}: expected a scalar`] : [];
  }
}

if (require.main === module) {
  const [goFile, tag, commit] = process.argv.slice(2);
  if (!goFile || !tag || !/^[0-9a-f]{40}$/.test(commit ?? "")) {
    console.error("usage: netbirdConfigKeys.ts <combined/cmd/config.go> <tag> <40-hex commit>");
    process.exit(2);
  }
  const go = readFileSync(goFile);
  // The file's git blob id, so `git -C <netbird> rev-parse <tag>:combined/cmd/config.go` can confirm it.
  const blob = createHash("sha1").update(`blob ${go.length}\0`).update(go).digest("hex");
  const fixture: KeyTreeFixture = {
    source: { repo: "netbirdio/netbird", path: "combined/cmd/config.go", tag, commit, blob, root: "CombinedConfig" },
    derivedBy: "test/conformance/netbirdConfigKeys.ts (parseGoStructs + keyTree) from the file at that commit",
    rules: [
      "key = the yaml tag's name, else the Go field name lowercased (gopkg.in/yaml.v3); yaml:\"-\" fields are not in the file",
      "*T decodes like T; []T is a sequence of T; map[string]T is a mapping with any keys",
      "string fields take any scalar; int/uint/bool fields need an integer/non-negative integer/boolean",
    ],
    tree: keyTree(parseGoStructs(go.toString("utf8")), "CombinedConfig"),
  };
  process.stdout.write(`${JSON.stringify(fixture, null, 2)}\n`);
}
