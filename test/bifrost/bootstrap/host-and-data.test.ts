import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Bifrost, composeStep } from "../../docker-double/harness";
import { bifrostPerTest } from "../../docker-double/perTest";

const device = "/dev/disk/by-id/scsi-0HC_Volume_4242";
const bifrost = bifrostPerTest();

const hostCalls = (b: Bifrost) => fs.readFileSync(path.join(b.hostState, "calls.log"), "utf8").trim().split("\n");
const storeKeyFingerprint = (b: Bifrost) => path.join(b.data, "netbird/.store-key.hmac");

describe("data volume (BIFROST_VOLUME_DEVICE)", () => {
  it("formats a fresh volume, mounts it, persists it in fstab, before traefik starts", async () => {
    const b = await bifrost({ volumeDevice: device });
    const r = await b.run({ hostTools: true });
    expect(r.code, r.stderr).toBe(0);
    const calls = hostCalls(b);
    expect(calls).toContain(`mkfs.ext4 -q -L bifrost-data ${device}`);
    expect(calls).toContain(`mount -t ext4 ${device} ${b.data}`);
    expect(calls.indexOf(`mkfs.ext4 -q -L bifrost-data ${device}`)).toBeLessThan(calls.indexOf(`mount -t ext4 ${device} ${b.data}`));
    expect(fs.readFileSync(b.fstab, "utf8").split("\n").filter((l) => l.startsWith(device))).toEqual([`${device} ${b.data} ext4 defaults,nofail 0 2`]);
    expect(r.stdout).toMatch(/step volume: ok, formatted .* mounted .* fstab updated/);
    expect(r.stdout.indexOf("step volume:")).toBeLessThan(r.stdout.indexOf("step traefik:"));
    expect(fs.existsSync(storeKeyFingerprint(b))).toBe(true);
    expect(fs.readFileSync(storeKeyFingerprint(b), "utf8")).toMatch(/^[0-9a-f]{64}$/);
  });

  it("never formats a volume that carries a filesystem, and is idempotent once mounted", async () => {
    const b = await bifrost({ volumeDevice: device });
    fs.mkdirSync(path.join(b.hostState, "fs"), { recursive: true });
    fs.writeFileSync(path.join(b.hostState, "fs", device.replace(/\//g, "_")), "ext4\n");
    expect((await b.run({ hostTools: true })).code).toBe(0);
    expect(hostCalls(b).filter((c) => c.startsWith("mkfs"))).toEqual([]);
    expect(hostCalls(b)).toContain(`mount -t ext4 ${device} ${b.data}`);
    const fstab = fs.readFileSync(b.fstab, "utf8");
    const r = await b.run({ hostTools: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/step volume: ok, already mounted \(/);
    expect(hostCalls(b).filter((c) => c.startsWith("mount ") || c.startsWith("mkfs"))).toHaveLength(1);
    expect(fs.readFileSync(b.fstab, "utf8")).toBe(fstab);
  });

  it("refuses a device path that is not stable", async () => {
    const b = await bifrost({ volumeDevice: "/dev/sdb" });
    const r = await b.run({ hostTools: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("BIFROST_VOLUME_DEVICE must be a stable /dev/disk/by-id/ path");
    expect(b.double.containers.size).toBe(0);
  });
});

describe("NB_DATA_STORE_KEY guard", () => {
  it("proceeds with the same key", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const fingerprint = fs.readFileSync(storeKeyFingerprint(b), "utf8");
    expect(fingerprint).not.toContain(b.secrets.NB_DATA_STORE_KEY!);
    const r = await b.run();
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("step netbird-store-key: ok, matches");
    expect(fs.readFileSync(storeKeyFingerprint(b), "utf8")).toBe(fingerprint);
  });

  it("refuses a changed key before anything is pulled, started or changed", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const config = b.readNetbirdConfig();
    const fingerprint = fs.readFileSync(storeKeyFingerprint(b), "utf8");
    const calls = b.double.calls.length;
    b.rotate("NB_DATA_STORE_KEY", "cm90YXRlZCBrZXkgdGhhdCBkb2VzIG5vdCBtYXRjaCE=");
    const secretsEnv = b.read(".secrets.env");
    const r = await b.run();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/NB_DATA_STORE_KEY no longer matches the key NetBird's existing database/);
    expect(r.stderr).toMatch(/restore the previous NB_DATA_STORE_KEY in secrets\/bootstrap\.sops\.yaml/);
    expect(r.stderr).toMatch(/delete .*\/netbird \(this loses every peer/);
    expect(r.stderr).not.toContain("cm90YXRlZCBrZXkgdGhhdCBkb2VzIG5vdCBtYXRjaCE=");
    const after = b.double.calls.slice(calls);
    expect(after.some((c) => /netbird/.test(composeStep(c) ?? ""))).toBe(false);
    // Only the pre-flight's look at Compose: no pull, no container started, no exec.
    expect(after).toEqual(["compose version"]);
    expect(b.readNetbirdConfig()).toBe(config);
    expect(b.read(".secrets.env")).toBe(secretsEnv);
    expect(fs.readFileSync(storeKeyFingerprint(b), "utf8")).toBe(fingerprint);
    expect(fs.existsSync(b.netbirdRestartPendingPath)).toBe(false);
  });
});

describe("AUTHENTIK_POSTGRESQL_PASSWORD rotation", () => {
  it("changes the role's password in the database before authentik-server is recreated", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const calls = b.double.calls.length;
    const events = b.double.events.length;
    b.rotate("AUTHENTIK_POSTGRESQL_PASSWORD", "new'pass$word\\with&odd|chars/");
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.dbPassword).toBe("new'pass$word\\with&odd|chars/");
    const log = b.double.events.slice(events).map((e) => `${e.kind} ${e.service}`);
    expect(log.indexOf("role-password authentik-postgres")).toBeGreaterThan(log.indexOf("recreate authentik-postgres"));
    expect(log.indexOf("role-password authentik-postgres")).toBeLessThan(log.indexOf("recreate authentik-server"));
    const after = b.double.calls.slice(calls);
    expect(after.findIndex((c) => c.startsWith("exec -i authentik-postgres psql"))).toBeLessThan(after.findIndex((c) => composeStep(c) === "up authentik-server authentik-worker"));
    expect(after.find((c) => c.startsWith("exec -i authentik-postgres"))).not.toContain("pass");
    expect(b.double.healthOf("authentik-server")).toBe("healthy");
    expect(r.stdout).toContain("step postgres-password: ok, role password set");
    const again = await b.run();
    expect(again.stdout).toContain("step postgres-password: ok, unchanged");
    // One ALTER ROLE in both runs; each run also reads Authentik's version history (--tuples-only).
    expect(b.double.calls.slice(calls).filter((c) => c.startsWith("exec -i authentik-postgres") && !c.includes("--tuples-only"))).toHaveLength(1);
  });

  it("without the role change authentik-server could not log in (the double holds the database to its password)", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    fs.rmSync(path.join(b.data, "authentik-postgres.password.hmac"));
    b.double.dbPassword = "what the database was initialised with";
    b.rotate("AUTHENTIK_POSTGRESQL_PASSWORD", "another-password-0042");
    // Missing fingerprint counts as changed, so the bootstrap still sets the role's password.
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.dbPassword).toBe("another-password-0042");
  });
});

describe("keyed fingerprints (lib/state.sh hmac_sha256)", () => {
  it("are HMAC-SHA-256 under the key file, as `openssl dgst -hmac` made them, for any value", async () => {
    const b = await bifrost();
    const storeKey = "ü \\ $HOME 'q' \"d\" ".repeat(3) + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    b.rotate("NB_DATA_STORE_KEY", storeKey);
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    const key = fs.readFileSync(path.join(b.data, ".fingerprint-key"), "utf8");
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.readFileSync(storeKeyFingerprint(b), "utf8")).toBe(createHmac("sha256", key).update(storeKey).digest("hex"));
  });

  it("never put the key on a process's command line (ps shows every argument to every user)", () => {
    for (const file of ["lib/state.sh", "lib/env.sh", "lib/http.sh", "lib/compose.sh", "lib/mesh.sh", "steps/host.sh", "steps/netbird.sh", "steps/authentik.sh", "bootstrap.sh"]) {
      const code = fs.readFileSync(path.join(__dirname, "../../../cloud/bifrost", file), "utf8").replace(/^\s*#.*$/gm, "");
      expect(code, file).not.toMatch(/-hmac\b/);
      expect(code, file).not.toMatch(/macopt/);
    }
  });
});
