/**
 * The stand-ins of the engine tests: one program, run in the images test/engine/images.ts
 * builds under the exact names docker-compose.yml pins, as each image's entrypoint and as the
 * commands the compose file's healthchecks and bootstrap.sh's `docker exec` call. The first
 * argument names the program it stands in for (`traefik healthcheck --ping` and
 * `ak healthcheck` answer in standin.sh, without a Node.js start):
 *
 *   traefik [flags…]
 *   ak server | ak worker | ak apply_blueprint FILE | ak shell -c CODE
 *   netbird-server --config FILE
 *   netbird-dashboard
 *   netbird-proxy
 *   netbird up | netbird status --check ready
 *
 * What the stand-ins answer over HTTP is the doubles' code (test/docker-double/apis.ts,
 * authentik.ts), each answer cited there; what they add is what only a container has: a real
 * start-up, a real uid against real bind-mount owners, a real database, state that survives
 * exactly what the container's volumes survive. Each image states its start-up cost in
 * STANDIN_START_MS (ENV in images.ts): milliseconds from the process's start until it serves.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { NetbirdDouble, type Containers } from "../../docker-double/apis";
import { AuthentikDouble, authentikReleaseLines, authentikServerStart, releaseLineOf } from "../../docker-double/authentik";
import { PgStore } from "./pgStore";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const startMs = Number(process.env.STANDIN_START_MS ?? 0);
/** Waits out the rest of the stated start-up cost, counted from the process's start: what the stand-in did meanwhile (waiting for the database, its version check) is part of it. */
const startedUp = () => sleep(Math.max(0, startMs - process.uptime() * 1000));
const log = (message: string) => process.stdout.write(`[standin] ${message}\n`);

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/** Inside a container, the container is the only one there is: ready or not, its own mounts at their own paths. */
function self(isReady: () => boolean): Containers {
  return {
    healthyEnv: () => (isReady() ? (process.env as Record<string, string>) : undefined),
    hostPathOf: (_name, target) => target,
  };
}

/** The uid-checked write the real program does first under a bind mount, so a wrong owner fails at start. */
function requireWritable(dir: string, why: string): void {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    fail(`${dir} is not writable by uid ${process.getuid?.()}: ${why}`);
  }
}

function serve(port: number, handler: http.RequestListener): Promise<void> {
  return new Promise((resolve) => http.createServer(handler).listen(port, "0.0.0.0", resolve));
}

// --- Traefik (the ping handler `traefik healthcheck --ping` asks, standin.sh: /ping on the
// traefik entry point, :8080 unless configured) ---------------------------------------------

async function traefik(): Promise<void> {
  await startedUp();
  // web redirects to websecure (the compose file's entryPoints.web.http.redirections).
  await serve(80, (req, res) => res.writeHead(308, { Location: `https://${req.headers.host ?? ""}${req.url ?? "/"}` }).end());
  await serve(8080, (req, res) => res.writeHead(req.url === "/ping" ? 200 : 404).end(req.url === "/ping" ? "OK" : ""));
  log("traefik: serving :80 and ping on :8080");
}

// --- Authentik (2025.10: lifecycle/ak writes the mode it runs in to /tmp/authentik-mode and
// `ak healthcheck`, answered in standin.sh, checks that mode: the server's /-/health/live/,
// the worker's own check, which these two files stand for) ----------------------------------

const modeFile = "/tmp/authentik-mode";
/** The image's Authentik version (images.ts bakes it in from the tag). */
const version = process.env.STANDIN_AUTHENTIK_VERSION ?? "";
const workerReadyFile = "/tmp/authentik-worker-ready";

async function ak(args: string[]): Promise<void> {
  const store = new PgStore(process.env);
  const [command, ...rest] = args;
  switch (command) {
    case "server":
    case "worker": {
      fs.writeFileSync(modeFile, command);
      // Uploaded files (icons, branding) are written by uid 1000 under /data since 2025.12,
      // /media before (website/docs/releases/2025/v2025.12.md "Storage improvements").
      requireWritable(authentikReleaseLines.indexOf(releaseLineOf(version)) < authentikReleaseLines.indexOf("2025.12") ? "/media" : "/data", "Authentik stores uploaded files there");
      await waitForDatabase(store);
      if (command === "server") checkVersion(store);
      await startedUp();
      return command === "server" ? authentikServer(store) : authentikWorker(store);
    }
    case "apply_blueprint":
    case "shell": {
      // Every management command boots Django first (the stated cost of an `ak` command,
      // counted from the process's start, as the stand-in's own start is part of it).
      await sleep(Math.max(0, Number(process.env.STANDIN_AK_COMMAND_MS ?? 0) - process.uptime() * 1000));
      const authentik = new AuthentikDouble(self(() => true), store);
      try {
        if (command === "apply_blueprint") {
          const result = authentik.applyBlueprint(rest[0] ?? "", process.env as Record<string, string>);
          if (result.invalid) fail(result.invalid);
          process.stdout.write(result.stdout);
          return;
        }
        // authentik/core/management/commands/shell.py: without -c it starts an interactive
        // console that reads stdin only if it happens to be ready: not what the bootstrap may use.
        if (rest[0] !== "-c" || rest.length !== 2) fail("ak shell: only `ak shell -c CODE` runs deterministically");
        process.stdout.write(authentik.shell(rest[1], process.env as Record<string, string>));
      } catch (e) {
        fail((e as Error).message);
      }
      return;
    }
    default:
      fail(`standin: ak ${command ?? ""} is not modelled`);
  }
}

/** The server's version check and record before it migrates, in the real database (authentikServerStart cites lifecycle/migrate.py). */
function checkVersion(store: PgStore): void {
  const { record, refusal } = authentikServerStart(version, store.versions());
  if (record) store.recordVersion(version);
  if (refusal) fail(refusal);
}

/** lifecycle/wait_for_db.py: Authentik waits for PostgreSQL, then migrates (lifecycle/migrate.py). */
async function waitForDatabase(store: PgStore): Promise<void> {
  for (;;) {
    try {
      store.migrate();
      return;
    } catch (e) {
      log(`waiting for PostgreSQL: ${(e as Error).message.split("\n")[0]}`);
      await sleep(1000);
    }
  }
}

async function authentikServer(store: PgStore): Promise<void> {
  const authentik = new AuthentikDouble(self(() => true), store);
  authentik.api.onCall = (call) => log(`api ${call}`);
  await authentik.api.start(9000, "0.0.0.0");
  log("authentik server: API on :9000");
}

async function authentikWorker(store: PgStore): Promise<void> {
  const authentik = new AuthentikDouble(self(() => true), store);
  const readyAt = Date.now();
  fs.writeFileSync(workerReadyFile, "");
  const timeline = { bootstrap: Number(process.env.STANDIN_DISCOVERY_BOOTSTRAP_MS ?? 0), instances: Number(process.env.STANDIN_DISCOVERY_INSTANCES_MS ?? 0), applied: Number(process.env.STANDIN_DISCOVERY_APPLIED_MS ?? 0) };
  log("authentik worker: discovering blueprints");
  for (;;) {
    try {
      authentik.discover(process.env as Record<string, string>, Date.now() - readyAt, timeline);
    } catch (e) {
      log(`discovery: ${(e as Error).message.split("\n")[0]}`);
    }
    await sleep(250);
  }
}

// --- NetBird combined server (v0.77.1: combined/cmd/root.go loads --config, serves HTTP and
// gRPC on server.listenAddress, the health listener on server.healthcheckAddress) ----------

async function netbirdServer(args: string[]): Promise<void> {
  const configFile = args[args.indexOf("--config") + 1];
  if (!configFile || !fs.existsSync(configFile)) fail(`failed to load config: open ${configFile}: no such file or directory`);
  const config = parseYaml(fs.readFileSync(configFile, "utf8")) as { server?: { listenAddress?: string; healthcheckAddress?: string; dataDir?: string } };
  const port = (address: string | undefined) => Number(String(address ?? "").split(":").pop());
  const dataDir = config.server?.dataDir ?? "/var/lib/netbird";
  fs.mkdirSync(dataDir, { recursive: true });
  await startedUp();
  const netbird = new NetbirdDouble(self(() => true));
  netbird.serverStarted();
  // NetBird fetches the issuer's discovery document over its public name; here the issuer's
  // path is asked of authentik-server over the compose network (no DNS or certificate here).
  netbird.discoverable = async (issuer) => {
    const where = /^https:\/\/[^/]+(\/application\/o\/[^/]+\/)$/.exec(issuer);
    if (!where) return false;
    try {
      const response = await fetch(`http://authentik-server:9000${where[1]}.well-known/openid-configuration`, { signal: AbortSignal.timeout(3000) });
      return response.ok && ((await response.json()) as { issuer?: string }).issuer === issuer;
    } catch {
      return false;
    }
  };
  netbird.api.onCall = (call) => log(`api ${call}`);
  await netbird.api.start(port(config.server?.listenAddress), "0.0.0.0");
  await new Promise<void>((resolve) => net.createServer((s) => s.end()).listen(port(config.server?.healthcheckAddress), "0.0.0.0", resolve));
  log("netbird server: API and gRPC on the listen address, health listener up");
}

// --- NetBird dashboard (nginx serving the SPA on :80) --------------------------------------

async function netbirdDashboard(): Promise<void> {
  await startedUp();
  await serve(80, (_req, res) => res.writeHead(200, { "Content-Type": "text/html" }).end("<!doctype html><title>NetBird</title>"));
  log("dashboard: serving :80");
}

// --- netbird-proxy (v0.77.1: proxy/cmd/proxy/cmd/root.go refuses to start without
// NB_PROXY_TOKEN; proxy/internal/health/health.go /healthz answers 200 once management
// accepted the token) ---------------------------------------------------------------------

async function netbirdProxy(): Promise<void> {
  const token = process.env.NB_PROXY_TOKEN ?? "";
  if (!token) fail("proxy token is required: set NB_PROXY_TOKEN environment variable");
  // ACME certificates are written under NB_PROXY_CERTIFICATE_DIRECTORY by uid 1000.
  requireWritable(process.env.NB_PROXY_CERTIFICATE_DIRECTORY ?? "/certs", "the proxy keeps its ACME certificates there");
  await startedUp();
  let connected = false;
  await new Promise<void>((resolve) =>
    http.createServer((req, res) => res.writeHead(req.url === "/healthz" && connected ? 200 : 503).end()).listen(8080, "127.0.0.1", resolve),
  );
  const management = process.env.NB_PROXY_MANAGEMENT_ADDRESS ?? "";
  for (;;) {
    try {
      const response = await fetch(`${management}/management.ProxyService/GetMappingUpdate`, { method: "POST", headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3000) });
      connected = response.ok;
      if (!connected) log(`management refused the proxy: ${response.status}`);
    } catch (e) {
      connected = false;
      log(`management unreachable: ${(e as Error).message}`);
    }
    await sleep(connected ? 5000 : 1000);
  }
}

// --- netbird agent (v0.77.1: the entrypoint starts the daemon and runs `netbird up` once,
// which reads the setup key from NB_SETUP_KEY, else from the file NB_SETUP_KEY_FILE names —
// client/netbird-entrypoint.sh; client/cmd/root.go getSetupKey, a file it cannot read fails
// `up`, and the entrypoint's `set -e` ends the container. The daemon logs in with its
// WireGuard key, kept in its state directory, and the setup key, and answers the CLI on
// unix:///var/run/netbird.sock: `netbird status --check ready`, and `--json` with netbirdIp
// and publicKey (client/status/status.go OutputOverview)). ---------------------------------

const daemonSocket = "/var/run/netbird.sock";
const daemonStateFile = "/var/run/netbird-standin.state";

async function netbirdAgent(args: string[]): Promise<void> {
  if (args[0] === "status") {
    const answer = await new Promise<string>((resolve) => {
      const s = net.connect(daemonSocket);
      let text = "";
      s.on("data", (d) => (text += d));
      s.on("end", () => resolve(text));
      s.on("error", () => resolve(JSON.stringify({ state: "daemon not running" })));
    });
    const status = JSON.parse(answer) as { state: string; ip: string; publicKey: string };
    if (args.includes("--json")) {
      process.stdout.write(`${JSON.stringify({ netbirdIp: status.ip ? `${status.ip}/16` : "", publicKey: status.publicKey })}\n`);
      process.exit(0);
    }
    if (status.state !== "ready") fail(`netbird daemon: ${status.state}`);
    process.exit(0);
  }
  // A restarted container keeps its files: until this daemon says otherwise, it is not ready.
  fs.rmSync(daemonStateFile, { force: true });
  await startedUp();
  let setupKey = process.env.NB_SETUP_KEY ?? "";
  const keyFile = process.env.NB_SETUP_KEY_FILE;
  if (!setupKey && keyFile) {
    try {
      setupKey = fs.readFileSync(keyFile, "utf8").trim();
    } catch (e) {
      fail(`failed to read setup key file: ${(e as Error).message}`);
    }
  }
  const keyPath = "/var/lib/netbird/standin-wireguard-public-key";
  if (!fs.existsSync(keyPath)) fs.writeFileSync(keyPath, crypto.randomBytes(32).toString("base64"), { mode: 0o600 });
  const publicKey = fs.readFileSync(keyPath, "utf8");
  const status = { state: "connecting", ip: "", publicKey };
  // `netbird status --check ready`, the healthcheck, is answered in standin.sh from this file.
  const setState = (state: string) => {
    status.state = state;
    fs.writeFileSync(`${daemonStateFile}.tmp`, state);
    fs.renameSync(`${daemonStateFile}.tmp`, daemonStateFile);
  };
  setState("connecting");
  fs.rmSync(daemonSocket, { force: true });
  net.createServer((s) => s.end(JSON.stringify(status))).listen(daemonSocket);
  // The management URL is https://netbird.<domain>; the agent shares the host's network, where
  // netbird-server's loopback port stands in for it (no DNS or certificate here).
  const login = process.env.STANDIN_MANAGEMENT_LOGIN ?? "http://127.0.0.1:8081/management.ManagementService/Login";
  for (;;) {
    try {
      const response = await fetch(login, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ setupKey, publicKey, hostname: process.env.NB_HOSTNAME ?? "" }),
        signal: AbortSignal.timeout(3000),
      });
      const answer = (await response.json()) as { ip?: string };
      status.ip = answer.ip ?? "";
      setState(response.ok ? "ready" : `login refused: ${response.status}`);
    } catch (e) {
      setState(`management unreachable: ${(e as Error).message}`);
    }
    await sleep(status.state === "ready" ? 5000 : 1000);
  }
}

async function main(): Promise<void> {
  const [program, ...args] = process.argv.slice(2);
  switch (path.basename(program ?? "")) {
    case "traefik":
      return traefik();
    case "ak":
      return ak(args);
    case "netbird-server":
      return netbirdServer(args);
    case "netbird-dashboard":
      return netbirdDashboard();
    case "netbird-proxy":
      return netbirdProxy();
    case "netbird":
      return netbirdAgent(args);
    default:
      fail(`standin: unknown program ${program ?? ""}`);
  }
}

process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
void main().catch((e) => fail(`standin: ${(e as Error).stack ?? String(e)}`));
