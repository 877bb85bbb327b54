import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { Bifrost, canarySecrets, composeStep } from "../docker-double/harness";
import { bifrostPerTest } from "../docker-double/perTest";

const bifrost = bifrostPerTest();

const steps = (b: Bifrost) => b.double.calls.map(composeStep).filter((s): s is string => s !== undefined && /^(up|restart) /.test(s));

function expectNoCanary(b: Bifrost, ...outputs: string[]): void {
  const values = Object.values(b.secrets).filter((v): v is string => !!v);
  expect(values.length).toBeGreaterThan(0);
  for (const output of outputs) for (const value of values) expect(output).not.toContain(value);
}

describe("bootstrap.sh in the docker double", () => {
  it("starts the stack in the design's order, minting and rendering between authentik and netbird", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.calls[0]).toBe("compose version");
    expect(composeStep(b.double.calls[1])).toBe("pull");
    expect(steps(b)).toEqual([
      "up traefik",
      "up authentik-postgres",
      "up authentik-server authentik-worker",
      "up netbird-server",
      "up netbird-dashboard",
      "up netbird-proxy",
      "up netbird-agent",
    ]);
    const mint = b.double.calls.indexOf("exec -i authentik-server ak shell");
    const authentik = b.double.calls.findIndex((c) => composeStep(c) === "up authentik-server authentik-worker");
    const netbird = b.double.calls.findIndex((c) => composeStep(c) === "up netbird-server");
    expect(authentik).toBeLessThan(mint);
    expect(mint).toBeLessThan(netbird);
    // Every image is pulled before the first container starts.
    expect(b.double.eventsOf("pull").map((e) => e.service).sort()).toEqual(Object.keys(parseYaml(b.read("docker-compose.yml")).services).sort());
    expect(b.double.tokens.get("netbird-mgmt-token")).toEqual({ user: "akadmin", key: b.secrets.AUTHENTIK_TOKEN, intent: "api", expiring: false });
    for (const name of b.double.containers.keys()) expect(b.double.healthOf(name)).toBe("healthy");
    // One log line per step, each with its duration.
    const stepLines = r.stdout.split("\n").filter((l) => l.startsWith("[bootstrap] step "));
    expect(stepLines.length).toBe(15);
    for (const line of stepLines) expect(line).toMatch(/: ok.*\(\d+\.\d\ds\)$/);
    expect(r.stderr).not.toMatch(/variable is not set/);
    expectNoCanary(b, r.stdout, r.stderr);
  });

  it("skips the optional services without their secret and says how to enable them", async () => {
    const b = await bifrost();
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.containers.has("netbird-proxy")).toBe(false);
    expect(b.double.containers.has("netbird-agent")).toBe(false);
    expect(b.double.eventsOf("pull").map((e) => e.service)).not.toContain("netbird-proxy");
    expect(r.stdout).toMatch(/step netbird-proxy: ok, skipped: add NB_PROXY_TOKEN .* to enable netbird-proxy/);
    expect(r.stdout).toMatch(/step netbird-agent: ok, skipped: add NB_BIFROST_SETUP_KEY .* to enable netbird-agent/);
  });

  it("removes an optional service whose secret was taken out, and only that one", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    expect((await b.run()).code).toBe(0);
    expect(b.double.containers.has("netbird-proxy")).toBe(true);
    const { NB_PROXY_TOKEN: _removed, ...rest } = b.secrets;
    b.secrets = rest;
    b.writeEnvFiles();
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.containers.has("netbird-proxy")).toBe(false);
    expect(b.double.containers.has("netbird-agent")).toBe(true);
    expect(b.double.eventsOf("remove").map((e) => e.service)).toEqual(["netbird-proxy"]);
    expect(r.stdout).toMatch(/step netbird-proxy: ok, skipped: .*; the running netbird-proxy was removed/);
    const again = await b.run();
    expect(again.stdout).not.toContain("was removed");
  });

  it("re-runs on a healthy stack without changing anything", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const template = b.read("netbird/config.yaml.tmpl");
    const first = b.endState();
    const events = b.double.events.length;
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.endState()).toEqual(first);
    expect(b.read("netbird/config.yaml.tmpl")).toBe(template);
    expect(fs.readFileSync(path.join(b.dir, "netbird/config.yaml.tmpl"), "utf8")).toBe(fs.readFileSync(path.join(__dirname, "../../cloud/bifrost/netbird/config.yaml.tmpl"), "utf8"));
    expect(b.double.events.slice(events).filter((e) => e.kind !== "pull" && e.kind !== "token-unchanged")).toEqual([]);
    expect(fs.statSync(path.join(b.dir, "netbird/config.yaml")).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(b.dir, ".secrets.env")).mode & 0o777).toBe(0o600);
  });

  it("follows a rotated AUTHENTIK_TOKEN: the minted token's key is updated, NetBird is not touched", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const before = b.read("netbird/config.yaml");
    const events = b.double.events.length;
    b.rotate("AUTHENTIK_TOKEN", "rotatedAUTHENTIKTOKEN0123456789abcdef");
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.tokens.get("netbird-mgmt-token")?.key).toBe("rotatedAUTHENTIKTOKEN0123456789abcdef");
    expect(b.double.events.slice(events).map((e) => `${e.kind} ${e.service}`).filter((e) => !e.startsWith("pull"))).toEqual([
      "recreate authentik-server",
      "recreate authentik-worker",
      "token-update authentik-server",
    ]);
    // NetBird's combined server reads no idpManager: nothing of Authentik's token is in its config.
    expect(b.read("netbird/config.yaml")).toBe(before);
    expectNoCanary(b, r.stdout, r.stderr);
  });

  it("never writes the env files Pulumi owns", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    const before = { env: b.read(".env"), secrets: b.read(".secrets.env") };
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect({ env: b.read(".env"), secrets: b.read(".secrets.env") }).toEqual(before);
    expect(before.secrets).not.toMatch(/NB_IDP_MGMT_TOKEN/);
  });

  it("creates the bind-mounted directories of uid-1000 images owned by 1000:1000 before anything starts", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    for (const dir of ["authentik/media", "netbird-proxy/certs"]) {
      const st = fs.statSync(path.join(b.data, dir));
      expect([dir, st.uid, st.gid]).toEqual([dir, 1000, 1000]);
    }
    const lines = r.stdout.split("\n");
    const dirs = lines.findIndex((l) => l.startsWith("[bootstrap] step data-dirs: ok, owner set to 1000:1000: authentik/media netbird-proxy/certs"));
    expect(dirs).toBeGreaterThan(-1);
    expect(dirs).toBeLessThan(lines.findIndex((l) => l.startsWith("[bootstrap] step pull:")));
    // A root-owned directory left by an earlier Docker (which creates missing bind sources as root) is fixed.
    fs.chownSync(path.join(b.data, "authentik/media"), 0, 0);
    const again = await b.run();
    expect(again.stdout).toContain("step data-dirs: ok, owner set to 1000:1000: authentik/media (");
    expect(fs.statSync(path.join(b.data, "authentik/media")).uid).toBe(1000);
    expect((await b.run()).stdout).toContain("step data-dirs: ok, unchanged (");
  });

  it("retries ak shell while Django starts", async () => {
    const b = await bifrost();
    b.double.configure({ akFailures: 3 });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.calls.filter((c) => c === "exec -i authentik-server ak shell")).toHaveLength(4);
    expect(r.stdout).toContain("step mint-token: ok, attempt 4");
  });

  it("gives up minting after a bounded number of attempts and shows ak shell's error", async () => {
    const b = await bifrost();
    b.double.configure({ akFailures: 100 });
    const r = await b.run({ env: { BIFROST_MINT_ATTEMPTS: "3" } });
    expect(r.code).not.toBe(0);
    expect(b.double.calls.filter((c) => c === "exec -i authentik-server ak shell")).toHaveLength(3);
    expect(r.stderr).toContain("the database system is starting up");
    expect(r.stderr).toMatch(/could not mint the NetBird management token .* after 3 attempts/);
    expect(b.double.containers.has("netbird-server")).toBe(false);
  });

  it("on a health timeout exits non-zero, names the service and shows its last log lines", async () => {
    const b = await bifrost();
    b.double.configure({ neverHealthy: ["authentik-worker"] });
    const r = await b.run({ env: { BIFROST_WAIT_TIMEOUT: "1" } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("last 50 log lines of authentik-worker:");
    expect(r.stderr).toContain("authentik-worker  | authentik-worker still starting");
    expect(r.stderr).not.toContain("last 50 log lines of authentik-server:");
    expect(r.stderr).toMatch(/ERROR: authentik-worker did not become healthy within 1s/);
    expect(r.stderr).toContain("step authentik: FAILED");
    expect(b.double.containers.has("netbird-server")).toBe(false);
    expectNoCanary(b, r.stdout, r.stderr);
  });

  it("reports every missing required secret at once and starts nothing", async () => {
    const secrets = canarySecrets();
    const b = await bifrost({ secrets: { ...secrets, NB_RELAY_SECRET: "", CLOUDFLARE_API_TOKEN: undefined } });
    const r = await b.run();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/required secrets missing or empty in \.env\/\.secrets\.env: .*CLOUDFLARE_API_TOKEN.*NB_RELAY_SECRET|NB_RELAY_SECRET.*CLOUDFLARE_API_TOKEN/);
    expect(b.double.calls).toEqual(["compose version"]);
  });

  it("refuses to run before cloud-init finished", async () => {
    const b = await bifrost();
    fs.rmSync(path.join(b.root, "boot-finished"));
    const r = await b.run();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("cloud-init has not finished");
    expect(b.double.calls).toEqual([]);
  });

  it("prints no secret value, on success, on failure and under bash -x", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    const ok = await b.run({ xtrace: true });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain("+ "); // xtrace was really on
    b.rotate("AUTHENTIK_POSTGRESQL_PASSWORD", "rotatedPostgresPassword-canary-0042");
    b.double.configure({ unhealthy: ["netbird-dashboard"] });
    const failed = await b.run({ xtrace: true });
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain("netbird-dashboard did not become healthy");
    expectNoCanary(b, ok.stdout, ok.stderr, failed.stdout, failed.stderr);
    expect(failed.stderr).not.toContain("rotatedPostgresPassword-canary-0042");
  });

  it("lets a concurrent second run wait for the first instead of interleaving", async () => {
    const b = await bifrost();
    b.double.configure({ delaysMs: { traefik: 400, "authentik-server": 400 } });
    const [first, second] = await Promise.all([b.run(), new Promise((r) => setTimeout(r, 100)).then(() => b.run())]);
    expect(first.code, first.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain("another bootstrap run holds the lock; waiting");
    // The second run's calls all come after the first run's last call.
    const calls = b.double.calls;
    const secondStart = calls.indexOf("compose version", 1);
    expect(secondStart).toBeGreaterThan(0);
    expect(calls.slice(0, secondStart).filter((c) => c === "compose version")).toHaveLength(1);
    expect(calls.slice(0, secondStart).some((c) => composeStep(c) === "up netbird-dashboard")).toBe(true);
  });

  it("refuses after a bounded wait when the lock stays held", async () => {
    const b = await bifrost();
    b.double.configure({ delaysMs: { traefik: 2500 } });
    const first = b.run();
    await new Promise((r) => setTimeout(r, 200));
    const second = await b.run({ env: { BIFROST_LOCK_TIMEOUT: "1" } });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/another bootstrap run still holds .*\.bootstrap\.lock after 1s/);
    expect((await first).code).toBe(0);
    expect(b.double.calls.filter((c) => c === "compose version")).toHaveLength(1);
  });

  it("renders hostile values verbatim and leaves the template untouched", async () => {
    const hostile = ["a&b/c|d\\e$f", "x\\&y$HOME${PATH}|/", "quote'in\"side `tick` #hash", "tail\\"];
    const secrets = canarySecrets();
    const b = await bifrost({
      secrets: { ...secrets, NB_RELAY_SECRET: hostile[0], NB_DATA_STORE_KEY: hostile[1], AUTHENTIK_TOKEN: hostile[2] },
    });
    b.settings = { ...b.settings, domain: hostile[3] };
    b.writeEnvFiles();
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    const config = parseYaml(b.read("netbird/config.yaml"));
    expect(config.server.authSecret).toBe(hostile[0]);
    expect(config.server.store.encryptionKey).toBe(hostile[1]);
    expect(config.server.exposedAddress).toBe(`https://netbird.${hostile[3]}:443`);
    expect(b.read("netbird/config.yaml.tmpl")).toBe(fs.readFileSync(path.join(__dirname, "../../cloud/bifrost/netbird/config.yaml.tmpl"), "utf8"));
    expect(config.server.auth.issuer).toBe(`https://netbird.${hostile[3]}/oauth2`);
    // A hostile token reads back through Compose's parser unchanged and is minted as it is.
    expect(b.double.containers.get("authentik-server")?.config.environment.AUTHENTIK_BOOTSTRAP_TOKEN).toBe(hostile[2]);
    expect(b.double.tokens.get("netbird-mgmt-token")?.key).toBe(hostile[2]);
  });
});
