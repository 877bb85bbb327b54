/**
 * bootstrap.sh on a real Docker Engine (test/engine/daemon.ts) with real Compose and a real
 * PostgreSQL: the beliefs of test/docker-double (when Compose recreates, what `up --wait`
 * waits for, who owns a bind mount, what survives a restart or a new server) checked against
 * the real thing. The tests share one daemon and run in order: there is one `bifrost`
 * project per daemon, as on the VPS.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blastRadius, catalog, composeServices, entriesShipped } from "../../components/secrets/catalog";
import { Bifrost, canarySecrets, type RunResult } from "../docker-double/harness";
import { NetbirdAccounts } from "../docker-double/netbirdAccounts";
import { Engine } from "./daemon";
import { EngineBifrost, type ContainerState } from "./harness";
import { composeImages, provideImages } from "./images";
import { asDeployedWithAuthentik202510 } from "../bifrost/bootstrap/olderBundle";

let engine: Engine;

beforeAll(async () => {
  engine = await Engine.start();
  await provideImages(engine);
}, 300_000);

afterAll(async () => {
  await engine?.stop();
}, 60_000);

const now = () => new Date().toISOString();
/** A call of the HTTP APIs the bootstrap uses that changes something (the proxy's and agent's gRPC stand-ins are not the bootstrap's). */
const isApiWrite = (call: string) => /: (POST|PUT|PATCH|DELETE) \/api\//.test(call);
const ok = (r: RunResult, what: string) => expect(r.code, `${what}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`).toBe(0);

/** Services whose container Compose recreated (a new id) or that were restarted (a new start time). */
function touched(before: Record<string, ContainerState>, after: Record<string, ContainerState>): string[] {
  return composeServices.filter((s) => before[s]?.id !== after[s]?.id || before[s]?.startedAt !== after[s]?.startedAt);
}

async function expectAllHealthy(b: EngineBifrost): Promise<Record<string, ContainerState>> {
  const containers = await b.containers();
  expect(Object.keys(containers).sort()).toEqual([...composeServices].sort());
  for (const [service, c] of Object.entries(containers)) expect(c.health, `${service}: ${await b.logs(service, 15)}`).toBe("healthy");
  return containers;
}

/** A person's first request after an SSO login (the NetBird stand-in's `Bearer sso:<id>`), from inside the edge's network namespace. */
async function ssoLogin(user: string): Promise<string> {
  const [program, ...args] = engine.inNetwork(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", `Authorization: Bearer sso:${user}`, "http://127.0.0.1:8081/api/users/current"]);
  return (await promisify(execFile)(program!, args)).stdout;
}

/** Reads a container's process status line, as the kernel sees it. */
const processStatus = async (container: string, field: string) => (await engine.docker(["exec", container, "grep", `^${field}:`, "/proc/1/status"])).split(/\s+/)[1];
/** Whether `from` can open a TCP connection to `host:port` (bash's /dev/tcp, in every stand-in image). */
const reaches = (from: string, host: string, port: number) =>
  engine.docker(["exec", from, "bash", "-c", `timeout 3 bash -c ':> /dev/tcp/${host}/${port}'`]).then(
    () => true,
    () => false,
  );

/** docker-compose.yml's hardening, as the real daemon applied it to the running containers. */
async function expectHardened(): Promise<void> {
  for (const service of composeServices) {
    // NoNewPrivs is 1 in the process itself (the kernel's view of no-new-privileges).
    expect(await processStatus(service, "NoNewPrivs"), service).toBe("1");
  }
  for (const service of ["authentik-server", "authentik-worker", "netbird-proxy"]) {
    expect(await processStatus(service, "CapEff"), service).toBe("0000000000000000");
    expect(await processStatus(service, "CapBnd"), service).toBe("0000000000000000");
  }
  const inspected = JSON.parse(await engine.docker(["inspect", ...composeServices])) as { Name: string; HostConfig: { Memory: number; PidsLimit: number; LogConfig: { Type: string; Config: Record<string, string> } } }[];
  for (const c of inspected) {
    expect(c.HostConfig.Memory, c.Name).toBeGreaterThan(0);
    expect(c.HostConfig.PidsLimit, c.Name).toBeGreaterThan(0);
    expect(c.HostConfig.LogConfig, c.Name).toEqual({ Type: "json-file", Config: { "max-file": "3", "max-size": "100m" } });
  }
  expect((await engine.docker(["network", "inspect", "--format", "{{.Internal}}", "bifrost-db"])).trim()).toBe("true");
  expect(await reaches("authentik-server", "authentik-postgres", 5432)).toBe(true);
  expect(await reaches("authentik-worker", "authentik-postgres", 5432)).toBe(true);
  // The others reach their own peers (so a refusal below is the network's, not a missing tool's)…
  expect(await reaches("traefik", "netbird-server", 80)).toBe(true);
  expect(await reaches("netbird-proxy", "netbird-server", 80)).toBe(true);
  expect(await reaches("netbird-server", "authentik-server", 9000)).toBe(true);
  // …but not the database.
  for (const other of ["traefik", "netbird-server", "netbird-proxy"]) expect(await reaches(other, "authentik-postgres", 5432), other).toBe(false);
}

describe("bootstrap.sh on a real Docker Engine", () => {
  it("converges on first boot with all 8 services healthy; a second run recreates nothing and writes through no API", async () => {
    const b = new EngineBifrost(engine);
    try {
      ok(await b.run(), "first boot");
      // Healthy includes netbird-proxy and Authentik writing their bind mounts as uid 1000
      // (the stand-ins refuse to start otherwise) and PostgreSQL owning its data as uid 70.
      const first = await expectAllHealthy(b);
      // The owner's account, repaired by the host's sqlite3 in the store netbird-server's
      // container keeps on its bind mount: people join it, held for approval.
      expect([await ssoLogin("alice"), await ssoLogin("bob")]).toEqual(["403", "403"]);
      const accounts = new NetbirdAccounts(path.join(b.data, "netbird"));
      expect(accounts.accounts().map((a) => a.domain)).toEqual(["netbird.selfhosted"]);
      expect(accounts.users(accounts.accounts()[0]!.id).map((u) => [u.role, u.pending_approval])).toEqual([["owner", 0], ["user", 1], ["user", 1]]);
      await expectHardened();
      const since = now();
      ok(await b.run(), "second run");
      const second = await expectAllHealthy(b);
      expect(touched(first, second)).toEqual([]);
      expect((await b.apiCalls(since)).filter(isApiWrite)).toEqual([]);
    } finally {
      await b.stop();
    }
  }, 240_000);

  it("rotating each secret recreates or restarts exactly its consumers, as the docker double does", async () => {
    const rotatable = catalog.filter((e) => (e.where.includes(".env") || e.where.includes(".secrets.env")) && e.source === "sops" && e.rotation.kind !== "never");
    // The proxy token and setup key are NetBird's own credentials: the operator has NetBird
    // issue them and puts them into SOPS (a made-up value is refused by management). The
    // first boot mints its own; each rotation below issues a new one through NetBird's API.
    const secrets = canarySecrets({ optional: true });
    delete secrets.NB_PROXY_TOKEN;
    delete secrets.NB_BIFROST_SETUP_KEY;
    const shipped = new Set(entriesShipped((k) => secrets[k] !== undefined).map((e) => e.key));
    expect(shipped.has("CLOUDFLARE_API_TOKEN")).toBe(false);
    const b = new EngineBifrost(engine, { secrets });
    const double = await new Bifrost({ secrets }).start();
    try {
      // The engine's run mostly waits on health probes: the double's runs beside it.
      const [engineBoot, doubleBoot] = await Promise.all([b.run(), double.run()]);
      ok(engineBoot, "first boot");
      ok(doubleBoot, "first boot on the double");
      for (const e of rotatable) {
        const value = netbirdIssued[e.key] ? await netbirdIssued[e.key](b) : `rotated${e.key.replace(/_/g, "")}0123456789abcdef0123`;
        const before = await b.containers();
        const events = double.double.events.length;
        b.rotate(e.key, value);
        double.rotate(e.key, value);
        const [onEngineRun, onDoubleRun] = await Promise.all([b.run(), double.run()]);
        ok(onEngineRun, `${e.key} on the engine`);
        ok(onDoubleRun, `${e.key} on the double`);
        const onEngine = touched(before, await expectAllHealthy(b));
        const onDouble = new Set(double.double.events.slice(events).filter((ev) => ["create", "recreate", "restart"].includes(ev.kind)).map((ev) => ev.service));
        // CLOUDFLARE_DNS_TOKEN is among the secrets: CLOUDFLARE_API_TOKEN is not shipped, and its rotation touches nothing.
        const expected = shipped.has(e.key) ? blastRadius(e.key) : [];
        expect({ key: e.key, recreated: onEngine }).toEqual({ key: e.key, recreated: expected });
        expect({ key: e.key, recreated: composeServices.filter((s) => onDouble.has(s)) }).toEqual({ key: e.key, recreated: onEngine });
      }
    } finally {
      await double.stop();
      await b.stop();
    }
  }, 600_000);

  it("reprovisions: a new server (a new daemon and data root) on the kept volume converges without /api/setup", async () => {
    const b = new EngineBifrost(engine);
    const fresh = await Engine.start();
    try {
      ok(await b.run(), "first boot");
      await b.down();
      await provideImages(fresh);
      const again = new EngineBifrost(fresh, { secrets: b.secrets, dataFrom: b });
      try {
        const since = now();
        ok(await again.run(), "first boot of the new server");
        await expectAllHealthy(again);
        const calls = await again.apiCalls(since);
        expect(calls.filter((c) => c.includes("/api/setup "))).toEqual([]);
        expect(calls.filter(isApiWrite)).toEqual([]);
      } finally {
        await again.stop();
      }
    } finally {
      await b.stop();
      await fresh.stop();
    }
  }, 400_000);

  it("steps an edge that ran Authentik 2025.10.4 through each release line to the pin, in the real PostgreSQL, its files moved to /data", async () => {
    const b = new EngineBifrost(engine);
    try {
      const pinned = composeImages()["authentik-server"]!;
      const restore = asDeployedWithAuthentik202510(b.dir, pinned);
      ok(await b.run(), "first boot on 2025.10.4");
      restore();
      // A file Authentik wrote under /media (an uploaded icon), as uid 1000.
      fs.mkdirSync(path.join(b.data, "authentik/media/public"));
      fs.writeFileSync(path.join(b.data, "authentik/media/public/icon.svg"), "<svg/>");
      for (const made of ["authentik/media/public", "authentik/media/public/icon.svg"]) fs.chownSync(path.join(b.data, made), 1000, 1000);
      const moved = await b.run();
      ok(moved, "the bundle with the pinned Authentik");
      expect(moved.stdout.split("\n").filter((l) => l.startsWith("[bootstrap] authentik: release line")).map((l) => l.split(" ")[4])).toEqual(["2025.12", "2026.2", "2026.5"]);
      const history = await engine.docker(["exec", "authentik-postgres", "psql", "--username=authentik", "--dbname=authentik", "--tuples-only", "--no-align", "--command", "SELECT version FROM authentik_version_history ORDER BY timestamp"]);
      expect(history.trim().split("\n")).toEqual(["2025.10.4", "2025.12.5", "2026.2.4", "2026.5.8", /:(\S+)$/.exec(pinned)![1]]);
      await expectAllHealthy(b);
      expect(fs.readFileSync(path.join(b.data, "authentik/data/media/public/icon.svg"), "utf8")).toBe("<svg/>");
    } finally {
      await b.stop();
    }
  }, 300_000);

  it("a bootstrap SIGKILLed before, during and after compose up and mid-API step: the next run converges, /api/setup answered once", async () => {
    const b = new EngineBifrost(engine);
    const since = now();
    try {
      // Each run is killed, with its whole process group, when its log shows the step before
      // the point: the next run starts from what the killed one left (the daemon keeps starting
      // what Compose asked for; a one-time NetBird call runs on in its own session, mint_once).
      const points: [string, RegExp][] = [
        ["before any compose up (the image pull under way)", /step netbird-store-key: ok/],
        ["during compose up (Authentik's server and worker starting)", /step authentik-postgres: ok/],
        ["after compose up, mid-API step (NetBird's account, tokens and groups)", /step netbird-setup: ok/],
        ["mid-API step (Authentik's blueprint applied and read back)", /step authentik-token: ok/],
      ];
      for (const [point, line] of points) {
        const r = await runKilledWhen(b, line);
        expect(r.signal, `${point}: the run ended before the point:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`).toBe("SIGKILL");
      }
      const converged = await b.run();
      ok(converged, "the run after the kills");
      const first = await expectAllHealthy(b);
      const calls = await b.apiCalls(since);
      expect(calls.filter((c) => /^netbird-server: POST \/api\/setup \d+$/.test(c))).toEqual(["netbird-server: POST /api/setup 200"]);
      const again = now();
      ok(await b.run(), "a run after convergence");
      expect(touched(first, await expectAllHealthy(b))).toEqual([]);
      expect((await b.apiCalls(again)).filter(isApiWrite)).toEqual([]);
    } finally {
      await b.stop();
    }
  }, 420_000);

  it("lets a second run wait on the first's lock; release-volume.sh stops every container before the unmount", async () => {
    const device = "/dev/disk/by-id/scsi-0HC_Volume_4242";
    const b = new EngineBifrost(engine, { volumeDevice: device });
    try {
      const [first, second] = await Promise.all([b.run({ hostTools: true }), new Promise((r) => setTimeout(r, 300)).then(() => b.run({ hostTools: true }))]);
      ok(first, "first run");
      ok(second, "second run");
      expect(second.stdout).toContain("another bootstrap run holds the lock; waiting");
      await expectAllHealthy(b);
      const released = await b.run({ hostTools: true, script: "release-volume.sh", args: [b.data] });
      ok(released, "release-volume.sh");
      const containers = await b.containers();
      expect(Object.entries(containers).filter(([, c]) => c.running)).toEqual([]);
      expect(released.stderr).toMatch(new RegExp(`\\[release\\] stop the stack: ok in \\d+s \\(${composeServices.length} container\\(s\\) stopped\\)`));
      expect(released.stderr).toMatch(/\[release\] unmount .*: ok in \d+s \(unmounted\)/);
    } finally {
      await b.stop();
    }
  }, 300_000);
});

/** A bootstrap run SIGKILLed with its process group as soon as its output matches `line` (an interruption at that point). */
function runKilledWhen(b: EngineBifrost, line: RegExp): Promise<RunResult> {
  let pid = 0;
  let killed = false;
  return b.run({
    onStart: (started) => (pid = started),
    onStdout: (stdout) => {
      if (killed || !line.test(stdout)) return;
      killed = true;
      process.kill(-pid, "SIGKILL");
    },
  });
}

/** A NetBird API call from inside the VPS, with the owner's PAT from the bootstrap's state, the PAT in a header read from stdin (never on a command line). */
async function netbirdApi(b: EngineBifrost, method: string, apiPath: string, body: unknown): Promise<Record<string, unknown>> {
  const pat = b.state().netbird?.pat;
  if (!pat) throw new Error("no NetBird PAT in the bootstrap's state");
  const [program, ...args] = b.engine.inNetwork(["curl", "--silent", "--show-error", "--fail", "-X", method, "-H", "@-", "-H", "Content-Type: application/json", "--data-binary", JSON.stringify(body), `http://127.0.0.1:8081${apiPath}`]);
  const out = await new Promise<string>((resolve, reject) => {
    const child = execFile(program, args, (error, stdout, stderr) => (error ? reject(new Error(`${method} ${apiPath}: ${stderr}`)) : resolve(stdout)));
    child.stdin?.end(`Authorization: Token ${pat}\n`);
  });
  return JSON.parse(out) as Record<string, unknown>;
}

/** How an operator obtains a new value of a NetBird-issued secret (handlers cited in test/docker-double/apis.ts). */
const netbirdIssued: Record<string, (b: EngineBifrost) => Promise<string>> = {
  NB_PROXY_TOKEN: async (b) => String((await netbirdApi(b, "POST", "/api/reverse-proxies/proxy-tokens", { name: "rotated-by-operator" })).plain_token),
  NB_BIFROST_SETUP_KEY: async (b) => String((await netbirdApi(b, "POST", "/api/setup-keys", { name: "bifrost-rotated", type: "reusable" })).key),
};
