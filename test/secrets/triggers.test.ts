/**
 * Bootstrap triggers: a hash of the shipped files, a hash of the settings, and per secret
 * its name with a keyed fingerprint. Same input → same triggers; one change → exactly its
 * own entry, naming the secret and revealing neither its value nor an unkeyed hash of it.
 */
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { entriesShipped, generatedEntriesFor } from "../../components/secrets/catalog";
import { fingerprintKeySource } from "../../components/secrets/fingerprint";
import { canary, canaryEnv } from "../helpers/canaries";
import { hetznerConfig, isSecretNode, mockRandomPassword, one, runProgram, secretSig } from "../helpers/pulumiMocks";

const bundle = vi.hoisted(() => ({ dir: "" }));
vi.mock("../../components/stack/paths", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../components/stack/paths")>();
  const { mkdtempSync, cpSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  bundle.dir = join(mkdtempSync(join(tmpdir(), "core-triggers-")), "bifrost");
  cpSync(original.bundleDir, bundle.dir, { recursive: true });
  return { ...original, bundleDir: bundle.dir };
});

afterAll(() => rmSync(join(bundle.dir, ".."), { recursive: true, force: true }));

const baseEnv = { ...canaryEnv("hetzner"), SSH_AUTH_SOCK: "/run/agent.sock" };
type Entry = Record<string, string>;

async function triggers(env: Record<string, string> = baseEnv, config = hetznerConfig, randomGeneration?: Record<string, number>): Promise<Entry[]> {
  const run = await runProgram({ stack: "hetzner", config, env, randomGeneration });
  expect(run.error).toBeUndefined();
  const t = one(run, "command:remote:Command", "bifrost-run").inputs.triggers;
  // Plain data through and through: one secret element would make the whole property secret.
  expect(isSecretNode(t)).toBe(false);
  expect(JSON.stringify(t)).not.toContain(secretSig);
  return t as Entry[];
}

const differing = (a: Entry[], b: Entry[]) =>
  a.map((e, i) => [e, b[i]] as const).filter(([x, y]) => JSON.stringify(x) !== JSON.stringify(y));

// canaryEnv holds every optional key, CLOUDFLARE_DNS_TOKEN too: CLOUDFLARE_API_TOKEN is not shipped.
const vpsSecrets = entriesShipped((k) => k in baseEnv || generatedEntriesFor("hetzner").some((e) => e.key === k));

describe("bootstrap triggers", () => {
  it("are plain data: the server's id, the file hash, the settings hash, then one entry per secret on the VPS", async () => {
    const t = await triggers();
    expect(Object.keys(t[0])).toEqual(["server"]);
    expect(Object.keys(t[1])).toEqual(["files"]);
    expect(Object.keys(t[2])).toEqual(["settings"]);
    expect(t.slice(3).map((e) => e.secret)).toEqual(vpsSecrets.map((e) => e.key));
    for (const e of t.slice(3)) expect(e.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it("are identical for the same input twice", async () => {
    expect(await triggers()).toEqual(await triggers());
  });

  it.each(vpsSecrets.filter((e) => e.source === "sops" && e.key !== fingerprintKeySource).map((e) => e.key))(
    "changing %s changes exactly its own entry, showing its name and not its value",
    async (key) => {
      const before = await triggers();
      const changed = canary(key, "rotated").value;
      const after = await triggers({ ...baseEnv, [key]: changed });
      const diff = differing(before, after);
      expect(diff).toHaveLength(1);
      expect(diff[0][1].secret).toBe(key);
      const text = JSON.stringify(after);
      expect(text).not.toContain(canary(key, "rotated").marker);
      const unkeyed = createHash("sha256").update(changed).digest("hex");
      expect(text).not.toContain(unkeyed.slice(0, 16));
      expect(text).not.toContain(createHash("sha256").update(`${key}\0${changed}`).digest("hex").slice(0, 16));
    },
  );

  it.each(vpsSecrets.filter((e) => e.source === "generated").map((e) => e.key))(
    "generated %s: its entry names it in clear, and replacing its RandomPassword changes exactly that entry",
    async (key) => {
      const resource = key.toLowerCase().replace(/_/g, "-");
      const before = await triggers();
      const after = await triggers(baseEnv, hetznerConfig, { [resource]: 1 });
      expect(before.find((e) => e.secret === key)?.fingerprint).toMatch(/^[0-9a-f]{16}$/);
      const diff = differing(before, after);
      expect(diff).toHaveLength(1);
      expect(diff[0][1].secret).toBe(key);
      const inputs = { length: 64, upper: true, lower: true, numeric: true, special: false };
      for (const value of [mockRandomPassword(resource, 0, inputs), mockRandomPassword(resource, 1, inputs)]) {
        const text = JSON.stringify([before, after]);
        expect(text).not.toContain(value.slice(0, 16));
        expect(text).not.toContain(createHash("sha256").update(value).digest("hex").slice(0, 16));
      }
    },
  );

  it("with CLOUDFLARE_DNS_TOKEN, the zone token is off the VPS: changing it re-runs nothing there; without, it has its entry", async () => {
    expect(vpsSecrets.map((e) => e.key)).not.toContain("CLOUDFLARE_API_TOKEN");
    const before = await triggers();
    expect(differing(before, await triggers({ ...baseEnv, CLOUDFLARE_API_TOKEN: canary("CLOUDFLARE_API_TOKEN", "rotated").value }))).toEqual([]);
    const zoneOnly: Record<string, string> = { ...baseEnv };
    delete zoneOnly.CLOUDFLARE_DNS_TOKEN;
    const secrets = (await triggers(zoneOnly)).slice(3).map((e) => e.secret);
    expect(secrets).toContain("CLOUDFLARE_API_TOKEN");
    expect(secrets).not.toContain("CLOUDFLARE_DNS_TOKEN");
  });

  it(`changing ${fingerprintKeySource}, which keys the fingerprints and must never change, changes every secret entry`, async () => {
    const before = await triggers();
    const after = await triggers({ ...baseEnv, [fingerprintKeySource]: canary(fingerprintKeySource, "other").value });
    expect(differing(before, after).map(([, y]) => y.secret)).toEqual(vpsSecrets.map((e) => e.key));
  });

  it("an absent optional secret has no entry, and adding it adds exactly its entry", async () => {
    const optional = vpsSecrets.find((e) => e.optional)!.key;
    const without = await triggers({ ...baseEnv, [optional]: "" });
    const withIt = await triggers();
    expect(without.map((e) => e.secret ?? Object.keys(e)[0])).not.toContain(optional);
    expect(withIt.filter((e) => !without.some((w) => JSON.stringify(w) === JSON.stringify(e)))).toEqual([
      expect.objectContaining({ secret: optional }),
    ]);
  });

  it("changing a shipped file changes only the file hash", async () => {
    const before = await triggers();
    writeFileSync(join(bundle.dir, "added-by-test.txt"), "a new shipped file\n");
    const after = await triggers();
    expect(differing(before, after).map(([x]) => Object.keys(x)[0])).toEqual(["files"]);
  });

  it("changing a setting changes only the settings hash", async () => {
    const before = await triggers();
    const after = await triggers(baseEnv, { ...hetznerConfig, "core:acmeEmail": "other@example.test" });
    expect(differing(before, after).map(([x]) => Object.keys(x)[0])).toEqual(["settings"]);
  });
});

