/**
 * Leak scan: every secret gets a unique canary; none may appear in a non-secret resource
 * input (what Pulumi stores in clear), in what the program prints, or in any file under the
 * working tree after a run.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { entriesIn, forStateBackendOnly, generatedEntriesFor, sopsEntriesFor } from "../../components/secrets/catalog";
import { projectRoot } from "../../components/stack/paths";
import { canaryEnv, canaryMarkers, leakedKeys } from "../helpers/canaries";
import { hetznerConfig, hetznerDataConfig, isSecretNode, mockEd25519Key, mockRandomPassword, one, runProgram, withoutSecrets, type Run } from "../helpers/pulumiMocks";

const canaries = canaryEnv("hetzner", "leak");
const markers = canaryMarkers("hetzner", "leak");
const privateKeyCanary = "-----BEGIN OPENSSH PRIVATE KEY-----\nCANARYprivatekeyCANARY\n-----END OPENSSH PRIVATE KEY-----\n";
const keyDir = mkdtempSync(join(tmpdir(), "core-leak-"));
const keyPath = join(keyDir, "id_ed25519");

/**
 * Files under `dir`, less what tools own: node_modules/ (npm), .git/ and .cache/ (the
 * conformance tools and the engine's image tarballs, which the engine tests may write while
 * this suite runs beside them; the program has no path into any of the three).
 */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === "node_modules" || e.name === ".git" || (dir === projectRoot && e.name === ".cache")) return [];
    const path = join(dir, e.name);
    return e.isDirectory() ? filesUnder(path) : e.isFile() ? [path] : [];
  });
}

/**
 * The generated secrets' values, as the mocked providers make them (test/helpers/pulumiMocks.ts):
 * a password is alphanumeric, so the whole value is its own marker, unchanged by any quoting; a
 * private key's marker is the longest alphanumeric run in its PEM lines after the first, which
 * hold key material (the first is the openssh-key-v1 header every key shares).
 */
const generatedMarkers = Object.fromEntries(
  generatedEntriesFor("hetzner").map((e) => {
    const name = e.key.toLowerCase().replace(/_/g, "-");
    if (e.generator?.kind === "ssh key") {
      const keyLines = mockEd25519Key(name).privateKeyOpenssh.split("\n").slice(2, -2).join(" ");
      return [e.key, keyLines.match(/[A-Za-z0-9]{12,}/g)!.sort((a, b) => b.length - a.length)[0].slice(0, 64)];
    }
    return [e.key, mockRandomPassword(name, 0, { length: e.generator?.kind === "password" ? e.generator.length : 0, upper: true, lower: true, numeric: true, special: false })];
  }),
);
const generatedInSecretsEnv = entriesIn(".secrets.env").filter((e) => e.source === "generated").map((e) => e.key);

const leaked = (text: string) => [...leakedKeys(text, markers), ...leakedKeys(text, generatedMarkers)];

describe("leak scan", () => {
  let run: Run;
  const before = new Map<string, number>();
  beforeAll(async () => {
    for (const f of filesUnder(projectRoot)) before.set(f, statSync(f).mtimeMs);
    writeFileSync(keyPath, privateKeyCanary, { mode: 0o600 });
    run = await runProgram({
      stack: "hetzner",
      config: { ...hetznerConfig, "core:sshPrivateKeyPath": keyPath },
      env: { ...canaries },
    });
  });
  afterAll(() => rmSync(keyDir, { recursive: true, force: true }));

  it("the run itself succeeded, so there was something to scan", () => {
    expect(run.error).toBeUndefined();
    expect(run.resources.length).toBeGreaterThan(20);
  });

  it("has a distinct canary for every secret the stack reads", () => {
    expect(Object.keys(canaries).sort()).toEqual(sopsEntriesFor("hetzner").map((e) => e.key).sort());
    expect(Object.keys(generatedMarkers)).toEqual(["NB_AUTHENTIK_CLIENT_SECRET", "NB_SESSION_COOKIE_KEY", "BIFROST_SSH_HOST_KEY"]);
    for (const value of Object.values(generatedMarkers)) expect(value).toMatch(/^[A-Za-z0-9]{12,64}$/);
    expect(new Set(Object.values(markers)).size).toBe(Object.keys(markers).length);
    for (const [key, value] of Object.entries(canaries)) expect(value, key).toContain(markers[key]);
  });

  it("no canary in any non-secret resource input", () => {
    const clear = JSON.stringify(run.resources.map((r) => withoutSecrets(r.inputs)));
    expect(leaked(clear)).toEqual([]);
    expect(clear).not.toContain("CANARYprivatekey");
  });

  it("the scan can see a secret: the wrapped inputs do hold the canaries", () => {
    const all = JSON.stringify(run.resources.map((r) => r.inputs));
    // Optional secrets, the program-only token and the generated secrets are delivered too.
    // Except the state backend's passphrase: the Pulumi CLI reads it, no resource does.
    const delivered = sopsEntriesFor("hetzner").filter((e) => !forStateBackendOnly(e)).map((e) => e.key);
    expect(leaked(all).sort()).toEqual([...delivered, ...Object.keys(generatedMarkers)].sort());
    expect(all).toContain("CANARYprivatekey");
  });

  it("providers, env files and the SSH key reach Pulumi only secret-wrapped", () => {
    expect(isSecretNode(one(run, "pulumi:providers:hcloud").inputs.token)).toBe(true);
    expect(isSecretNode(one(run, "pulumi:providers:cloudflare").inputs.apiToken)).toBe(true);
    expect(isSecretNode(one(run, "command:remote:Command", "bifrost-env").inputs.stdin)).toBe(true);
    const secretsEnv = one(run, "command:remote:Command", "bifrost-secrets-env").inputs.stdin;
    expect(isSecretNode(secretsEnv)).toBe(true);
    // The generated secrets bound for the VPS travel inside that one wrapped input, not beside it.
    expect(generatedInSecretsEnv).toEqual(["NB_AUTHENTIK_CLIENT_SECRET", "NB_SESSION_COOKIE_KEY"]);
    for (const key of generatedInSecretsEnv) expect((secretsEnv as { value: string }).value, key).toContain(`${key}="${generatedMarkers[key]}"`);
    // The host key travels only in the server's user data, wrapped.
    expect(isSecretNode(one(run, "hcloud:index/server:Server").inputs.userData)).toBe(true);
    expect((secretsEnv as { value: string }).value).not.toContain(generatedMarkers.BIFROST_SSH_HOST_KEY);
    const connection = one(run, "command:remote:Command", "bifrost-run").inputs.connection;
    expect(JSON.stringify(withoutSecrets(connection))).not.toContain("CANARYprivatekey");
  });

  it("no canary in anything the program printed", () => {
    expect(run.printed).toContain("checked");
    expect(leaked(run.printed)).toEqual([]);
  });

  it("no canary in any file under the working tree, and no file written there", () => {
    const after = filesUnder(projectRoot);
    const changed = after.filter((f) => before.get(f) !== statSync(f).mtimeMs).map((f) => relative(projectRoot, f));
    // Other suites may run beside this one; only files this run could have made are ours to judge.
    const ours = changed.filter((f) => !f.startsWith("test/") && !f.startsWith("cloud/"));
    expect(ours).toEqual([]);
    // A canary exists only since this run began, so only a file made or changed since then can
    // hold one: those are read, whoever wrote them; reading every file (.cache/ holds the
    // conformance tools, near a gigabyte) made the test's time grow with the cache (issue 29).
    for (const f of changed) {
      const text = readFileSync(join(projectRoot, f), "utf8");
      expect(leaked(text), f).toEqual([]);
    }
  });

  it("the hetzner-data stack keeps its token wrapped too", async () => {
    const data = await runProgram({ stack: "hetzner-data", config: hetznerDataConfig, env: { ...canaries } });
    expect(data.error).toBeUndefined();
    expect(leaked(JSON.stringify(data.resources.map((r) => withoutSecrets(r.inputs))))).toEqual([]);
    expect(leaked(data.printed)).toEqual([]);
  });
});
