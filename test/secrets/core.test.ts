/**
 * The env check and the fingerprints, called directly: each rule of checkSecrets on its own,
 * the one error that lists every problem, and the fingerprints' key, message and separators.
 * Values are canaries made of repeated letters.
 */
import { createHash, createHmac, hkdfSync } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterEach, describe, expect, it } from "vitest";
import { blastRadius, catalog, composeServices, entriesFor, entriesIn, entriesOnVps, entry, forStateBackendOnly, generatedEntriesFor, sopsEntriesFor, sopsKeys, usedElsewhere } from "../../components/secrets/catalog";
import { checkSecrets, ConfigError, wrapSecrets } from "../../components/secrets/env";
import { fingerprintKeySource, hashDirectory, secretFingerprints, sopsFingerprint } from "../../components/secrets/fingerprint";
import { canaryEnv } from "../helpers/canaries";

const good: Record<string, string | undefined> = { ...canaryEnv("hetzner-data"), ...canaryEnv("cluster"), ...canaryEnv("hetzner") };

describe("checkSecrets", () => {
  it("takes a complete, valid environment for every stack and returns exactly its SOPS values", () => {
    for (const stack of ["hetzner", "hetzner-data", "cluster"] as const) {
      const r = checkSecrets(stack, good);
      expect(r.problems).toEqual([]);
      expect(Object.keys(r.values).sort()).toEqual(sopsEntriesFor(stack).filter((e) => good[e.key] !== undefined).map((e) => e.key).sort());
      for (const [k, v] of Object.entries(r.values)) expect(v).toBe(good[k]);
    }
  });

  it("reports a missing required key, and nothing for a missing or empty optional one", () => {
    const env = { ...good, HCLOUD_TOKEN: undefined, AUTHENTIK_GITHUB_SECRET: "", PULUMI_CONFIG_PASSPHRASE: undefined };
    const r = checkSecrets("hetzner", env);
    expect(r.problems).toEqual([{ key: "HCLOUD_TOKEN", problem: "missing from secrets/bootstrap.sops.yaml" }]);
    expect(r.values).not.toHaveProperty("AUTHENTIK_GITHUB_SECRET");
    expect(r.values).not.toHaveProperty("HCLOUD_TOKEN");
  });

  it("says how to make a missing or empty key the tooling can generate, and only those", () => {
    const r = checkSecrets("hetzner", { ...good, NB_RELAY_SECRET: undefined, AUTHENTIK_TOKEN: "", CLOUDFLARE_API_TOKEN: "" });
    expect(r.problems).toEqual([
      { key: "CLOUDFLARE_API_TOKEN", problem: "empty" },
      { key: "AUTHENTIK_TOKEN", problem: "empty; run `just secrets new AUTHENTIK_TOKEN`" },
      { key: "NB_RELAY_SECRET", problem: "missing from secrets/bootstrap.sops.yaml; run `just secrets new NB_RELAY_SECRET`" },
    ]);
  });

  it("names each defect on its own: empty, a newline (either kind), a NUL byte, then the format only when those pass", () => {
    const problemOf = (value: string) => checkSecrets("hetzner", { ...good, AUTHENTIK_TOKEN: value }).problems;
    expect(problemOf("")).toEqual([{ key: "AUTHENTIK_TOKEN", problem: "empty; run `just secrets new AUTHENTIK_TOKEN`" }]);
    expect(problemOf(`${good.AUTHENTIK_TOKEN}\n`)).toEqual([{ key: "AUTHENTIK_TOKEN", problem: "contains a newline" }]);
    expect(problemOf(`${good.AUTHENTIK_TOKEN}\r`)).toEqual([{ key: "AUTHENTIK_TOKEN", problem: "contains a newline" }]);
    expect(problemOf(`${good.AUTHENTIK_TOKEN}\0`)).toEqual([{ key: "AUTHENTIK_TOKEN", problem: "contains a NUL byte" }]);
    expect(problemOf(`\n${good.AUTHENTIK_TOKEN}\0`)).toEqual([{ key: "AUTHENTIK_TOKEN", problem: "contains a newline; contains a NUL byte" }]);
    expect(problemOf("short")).toEqual([{ key: "AUTHENTIK_TOKEN", problem: `wrong format: expected ${entry("AUTHENTIK_TOKEN").format!.rule}` }]);
  });

  it("checks an optional key that is present like any other", () => {
    const r = checkSecrets("hetzner", { ...good, AUTHENTIK_GITHUB_SECRET: "short" });
    expect(r.problems).toEqual([{ key: "AUTHENTIK_GITHUB_SECRET", problem: `wrong format: expected ${entry("AUTHENTIK_GITHUB_SECRET").format!.rule}` }]);
  });

  it("reports every problem at once, in catalog order, and keeps no value of a refused key", () => {
    const env = { ...good, HCLOUD_TOKEN: "", CLOUDFLARE_API_TOKEN: "x", NB_OWNER_PASSWORD: undefined };
    const r = checkSecrets("hetzner", env);
    expect(r.problems.map((p) => p.key)).toEqual(["HCLOUD_TOKEN", "CLOUDFLARE_API_TOKEN", "NB_OWNER_PASSWORD"]);
    for (const k of ["HCLOUD_TOKEN", "CLOUDFLARE_API_TOKEN", "NB_OWNER_PASSWORD"]) expect(r.values).not.toHaveProperty(k);
    expect(JSON.stringify(r.problems)).not.toContain("\"x\"");
  });

  it("never reads a generated or minted entry from the environment", () => {
    const notRead = catalog.filter((e) => e.source !== "sops").map((e) => e.key);
    const r = checkSecrets("hetzner", { ...good, ...Object.fromEntries(notRead.map((k) => [k, "not-read"])) });
    for (const k of notRead) expect(r.values).not.toHaveProperty(k);
  });
});

describe("ConfigError", () => {
  it("says where, how many, that nothing changed, and lists each problem on its own line", () => {
    const one = new ConfigError("secrets", [{ key: "A", problem: "empty" }]);
    expect(one.message).toBe("secrets: 1 problem, nothing was created or changed:\n  - A: empty");
    expect(one.name).toBe("ConfigError");
    const two = new ConfigError("stack config", [
      { key: "A", problem: "empty" },
      { key: "B", problem: "missing" },
    ]);
    expect(two.message).toBe("stack config: 2 problems, nothing was created or changed:\n  - A: empty\n  - B: missing");
    expect(two).toBeInstanceOf(pulumi.RunError);
  });
});

describe("wrapSecrets", () => {
  it("wraps every value as a Pulumi secret, under its own key", async () => {
    const wrapped = wrapSecrets({ A: "aaaa", B: "bbbb" });
    expect(Object.keys(wrapped)).toEqual(["A", "B"]);
    for (const [k, v] of Object.entries(wrapped)) {
      expect(await (v as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(true);
      expect(await new Promise((resolve) => v.apply(resolve))).toBe(k === "A" ? "aaaa" : "bbbb");
    }
  });
});

describe("fingerprints", () => {
  const values = checkSecrets("hetzner", good).values;
  const hmac = (keySource: string, secret: string, value: string) =>
    createHmac("sha256", Buffer.from(hkdfSync("sha256", Buffer.from(keySource, "base64"), "homelab-core", "bootstrap trigger fingerprints v1", 32)))
      .update(`${secret}\0${value}`)
      .digest("hex")
      .slice(0, 16);

  it("are an HMAC-SHA-256 of name NUL value, keyed from NB_DATA_STORE_KEY through HKDF, 16 hex digits", () => {
    expect(fingerprintKeySource).toBe("NB_DATA_STORE_KEY");
    expect(sopsFingerprint(values, "AUTHENTIK_TOKEN")).toBe(hmac(values.NB_DATA_STORE_KEY!, "AUTHENTIK_TOKEN", values.AUTHENTIK_TOKEN!));
    expect(sopsFingerprint(values, "AUTHENTIK_TOKEN")).toMatch(/^[0-9a-f]{16}$/);
  });

  it("change with the value, the name and the key, and not with other secrets", () => {
    const base = sopsFingerprint(values, "AUTHENTIK_TOKEN");
    expect(sopsFingerprint({ ...values, AUTHENTIK_TOKEN: `${values.AUTHENTIK_TOKEN}k` }, "AUTHENTIK_TOKEN")).not.toBe(base);
    expect(sopsFingerprint({ ...values, CLOUDFLARE_API_TOKEN: values.AUTHENTIK_TOKEN! }, "CLOUDFLARE_API_TOKEN")).not.toBe(base);
    expect(sopsFingerprint({ ...values, NB_DATA_STORE_KEY: Buffer.alloc(32, 7).toString("base64") }, "AUTHENTIK_TOKEN")).not.toBe(base);
    expect(sopsFingerprint({ ...values, HCLOUD_TOKEN: "k".repeat(64) }, "AUTHENTIK_TOKEN")).toBe(base);
  });

  it("refuse to work without the key source or the value", () => {
    const { NB_DATA_STORE_KEY: _gone, ...withoutKey } = values;
    expect(() => sopsFingerprint(withoutKey, "AUTHENTIK_TOKEN")).toThrow("NB_DATA_STORE_KEY is needed to key the secret fingerprints");
    expect(() => sopsFingerprint(values, "NOT_THERE")).toThrow("NOT_THERE has no value to fingerprint");
  });

  it("list every secret on the VPS in catalog order, skip an absent optional one, and need every generated one", async () => {
    const generatedKeys = entriesOnVps().filter((e) => e.source === "generated").map((e) => e.key);
    const generated = Object.fromEntries(generatedKeys.map((k) => [k, pulumi.secret(`generated-${k}`)]));
    const { AUTHENTIK_GITHUB_SECRET: _optional, CLOUDFLARE_DNS_TOKEN: _dns, ...withoutOptional } = values;
    const list = secretFingerprints(withoutOptional, generated);
    expect(list.map((f) => f.secret)).toEqual(entriesOnVps().map((e) => e.key).filter((k) => k !== "AUTHENTIK_GITHUB_SECRET" && k !== "CLOUDFLARE_DNS_TOKEN"));
    // With the DNS token, the zone token stays off the VPS, and out of the bootstrap's triggers.
    const withDns = secretFingerprints({ ...withoutOptional, CLOUDFLARE_DNS_TOKEN: "d".repeat(40) }, generated).map((f) => f.secret);
    expect(withDns).toContain("CLOUDFLARE_DNS_TOKEN");
    expect(withDns).not.toContain("CLOUDFLARE_API_TOKEN");
    const first = list.find((f) => f.secret === "AUTHENTIK_TOKEN")!;
    expect(first.fingerprint).toBe(hmac(values.NB_DATA_STORE_KEY!, "AUTHENTIK_TOKEN", values.AUTHENTIK_TOKEN!));
    const made = list.find((f) => f.secret === generatedKeys[0])! as unknown as { fingerprint: pulumi.Output<string> };
    expect(await new Promise((resolve) => made.fingerprint.apply(resolve))).toBe(hmac(values.NB_DATA_STORE_KEY!, generatedKeys[0]!, `generated-${generatedKeys[0]}`));
    expect(await (made.fingerprint as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(false);
    expect(() => secretFingerprints(values, {})).toThrow(`${generatedKeys[0]} is generated by the stack but was not handed to the fingerprints`);
  });
});

describe("hashDirectory", () => {
  let dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    dirs = [];
  });
  const tree = (files: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), "hash-"));
    dirs.push(dir);
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(join(dir, name, ".."), { recursive: true });
      writeFileSync(join(dir, name), content);
    }
    return dir;
  };

  it("is SHA-256 over path NUL content NUL of every file, sorted by full path, with / separators", () => {
    // "a.txt" sorts before "a/b.txt" ('.' < '/'), though a directory listing gives "a" first.
    const expected = createHash("sha256").update("a.txt\0zero\0").update("a/b.txt\0one\0").update("c.txt\0two\0").digest("hex");
    expect(hashDirectory(tree({ "c.txt": "two", "a/b.txt": "one", "a.txt": "zero" }))).toBe(expected);
  });

  it("tells apart trees whose names and contents only shift across the separators", () => {
    expect(hashDirectory(tree({ a: "bc" }))).not.toBe(hashDirectory(tree({ ab: "c" })));
    expect(hashDirectory(tree({ a: "b", c: "d" }))).not.toBe(hashDirectory(tree({ a: "bc", c: "" })));
    expect(hashDirectory(tree({ a: "x" }))).not.toBe(hashDirectory(tree({ b: "x" })));
    expect(hashDirectory(tree({ a: "x" }))).toBe(hashDirectory(tree({ a: "x" })));
  });
});

describe("catalog helpers", () => {
  it("finds an entry by key and names a key it does not know", () => {
    expect(entry("HCLOUD_TOKEN").key).toBe("HCLOUD_TOKEN");
    expect(() => entry("NOT_A_KEY")).toThrow("NOT_A_KEY is not in the secret catalog");
  });

  it("sorts entries by where they come from and go to", () => {
    const keys = (list: readonly { key: string }[]) => list.map((e) => e.key);
    expect(sopsKeys()).toEqual(keys(catalog.filter((e) => e.source === "sops")));
    expect(keys(catalog.filter(forStateBackendOnly))).toEqual(["PULUMI_CONFIG_PASSPHRASE"]);
    expect(forStateBackendOnly({ ...entry("PULUMI_CONFIG_PASSPHRASE"), where: ["state backend", "program"] })).toBe(false);
    expect(forStateBackendOnly({ ...entry("PULUMI_CONFIG_PASSPHRASE"), where: ["program"] })).toBe(false);
    expect(keys(catalog.filter(usedElsewhere))).toEqual(["PROXMOX_PASSWORD"]);
    expect(keys(generatedEntriesFor("hetzner"))).toEqual(["NB_AUTHENTIK_CLIENT_SECRET", "NB_SESSION_COOKIE_KEY", "BIFROST_SSH_HOST_KEY"]);
    expect(generatedEntriesFor("cluster")).toEqual([]);
    expect(keys(entriesFor("hetzner-data"))).toEqual(["HCLOUD_TOKEN", "PULUMI_CONFIG_PASSPHRASE"]);
    expect(keys(sopsEntriesFor("hetzner"))).not.toContain("NB_AUTHENTIK_CLIENT_SECRET");
    expect(keys(entriesFor("hetzner"))).toContain("NB_AUTHENTIK_CLIENT_SECRET");
  });

  it("lists what each VPS file carries, and the two together in catalog order", () => {
    const keys = (list: readonly { key: string }[]) => list.map((e) => e.key);
    expect(keys(entriesIn(".env"))).toEqual(["AUTHENTIK_SECRET_KEY", "AUTHENTIK_POSTGRESQL_PASSWORD"]);
    expect(keys(entriesIn(".secrets.env"))).toEqual(keys(catalog).filter((k) => entry(k).where.includes(".secrets.env")));
    expect(keys(entriesIn(".secrets.env"))).not.toContain("AUTHENTIK_SECRET_KEY");
    expect(keys(entriesOnVps())).toEqual(keys(catalog).filter((k) => keys(entriesIn(".env")).includes(k) || keys(entriesIn(".secrets.env")).includes(k)));
    expect(keys(entriesOnVps())).toContain("AUTHENTIK_SECRET_KEY");
    expect(keys(entriesOnVps())).toContain("NB_RELAY_SECRET");
    expect(keys(entriesOnVps())).not.toContain("HCLOUD_TOKEN");
  });

  it("gives each secret's consumers as its blast radius, in compose order", () => {
    expect(blastRadius("HCLOUD_TOKEN")).toEqual([]);
    expect(blastRadius("CLOUDFLARE_API_TOKEN")).toEqual(["traefik"]);
    for (const e of catalog) expect(blastRadius(e.key)).toEqual(composeServices.filter((s) => e.consumers.includes(s)));
  });
});

describe("a password rule of several parts says which part a value breaks, never the value", () => {
  it.each([
    ["md5" + "0123456789abcdef0123456789abcdef", 'breaks "not shaped like an MD5 verifier (md5 + 32 hex)"'],
    ["SCRAM-SHA-256$4096:c2FsdA==$a:b", 'breaks "not shaped like a SCRAM verifier (SCRAM-SHA-256$…)"'],
    ["has'a quote and is long", `breaks "no quote (' or \")"`],
    ["short'", `breaks "at least 16 characters" and "no quote (' or \")"`],
  ])("AUTHENTIK_POSTGRESQL_PASSWORD %#", (value, part) => {
    const r = checkSecrets("hetzner", { ...good, AUTHENTIK_POSTGRESQL_PASSWORD: value });
    const problem = r.problems.find((p) => p.key === "AUTHENTIK_POSTGRESQL_PASSWORD")!.problem;
    expect(problem).toContain(`wrong format: ${part} (expected at least 16 characters, printable ASCII only`);
    expect(problem).not.toContain(value);
  });
});
