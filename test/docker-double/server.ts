/**
 * The test double of Docker (engine + Compose v2 plugin) that the bootstrap harness puts
 * behind the `docker` shim in ./shim. It runs inside the test process, keeps container state
 * in memory and mirrors it to a temp dir (state.json, calls.log), and implements exactly the
 * sub-commands bootstrap.sh uses; anything else fails loudly.
 *
 * Compose behaviour it reproduces: docker-compose.yml is parsed and interpolated from the
 * --env-file files (compose-go's dotenv rules, shell environment first), and `up` recreates a
 * container only when its resolved configuration changed. Bind-mounted files are part of the
 * configuration only by path, as in Compose: changing their content recreates nothing.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { NetbirdDouble, proxyTokenValid, type Containers } from "./apis";
import { AuthentikDouble, emptyAuthentikDb, type AuthentikDb, type AuthentikStore, type DiscoveryTimeline, type StoredToken } from "./authentik";
import { meshDnsDomain } from "./netbirdMesh";

export interface DoubleConfig {
  /** Milliseconds from (re)creation or restart until the service's health check passes. */
  delaysMs: Record<string, number>;
  /** Services whose health check fails once their delay has passed. */
  unhealthy: string[];
  /** Services that never finish starting (Compose's --wait runs into its timeout). */
  neverHealthy: string[];
  /**
   * How many more times a service's health is read as unhealthy although its program runs (by
   * Compose's --wait or `docker inspect`): a probe that timed out on a busy host. Docker marks
   * the running container unhealthy and the next passing probe makes it healthy again
   * (Docker's HEALTHCHECK reference: `retries` consecutive failures make it unhealthy, one
   * success healthy); nothing is restarted. Counted in reads, not time, so no test depends on
   * the machine's speed.
   */
  probeFails?: Record<string, number>;
  /** How many `ak shell` calls fail first, as while Django is starting. */
  akFailures: number;
  /** Milliseconds an `ak` management command takes before it acts: it boots Django first. */
  akCommandMs?: number;
  /** When the worker's blueprint discovery makes what, after it is healthy (see DiscoveryTimeline). */
  discoveryMs?: DiscoveryTimeline;
  /** 1-based index of the docker call at which the caller's process group is SIGKILLed. */
  killAtCall?: number;
  /**
   * psql in authentik-postgres never returns: libpq waits for a connection without limit
   * unless connect_timeout is set ("Zero, negative, or not specified means wait
   * indefinitely": PostgreSQL docs, libpq-connect.html), and the real engine once held a
   * bootstrap's `docker exec … psql` for minutes while the server was shutting down.
   */
  psqlHangs?: boolean;
}

export type EventKind = "create" | "recreate" | "restart" | "remove" | "stop" | "blueprint" | "admin-password" | "pull" | "token-create" | "token-set" | "token-delete" | "role-password";

export interface DoubleEvent {
  readonly kind: EventKind;
  readonly service: string;
}

interface Container {
  service: string;
  /** The project directory it was created from: relative bind sources resolve against it. */
  cwd: string;
  /** False once `docker stop` stopped it; `compose up` starts it again. */
  running: boolean;
  hash: string;
  config: ResolvedService;
  startedAt: number;
  log: string[];
  /** Why its program exited at its last start (Authentik refusing its database), if it did. */
  exited?: string;
}

interface ResolvedService {
  image: string;
  command?: unknown;
  environment: Record<string, string>;
  volumes: string[];
  ports: string[];
  profiles: string[];
  dependsOn: string[];
  healthcheck?: unknown;
  other: Record<string, unknown>;
}


interface Request {
  cwd: string;
  args: string[];
  stdin?: string;
  env: Record<string, string>;
}

interface Reply {
  code: number | "kill";
  stdout?: string;
  stderr?: string;
}

class Failure extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class DockerDouble {
  readonly calls: string[] = [];
  readonly events: DoubleEvent[] = [];
  readonly containers = new Map<string, Container>();
  /** The images the daemon holds (pulled once, kept across runs). */
  readonly images = new Set<string>();
  /** The authentik role's password as the database holds it (set at initdb, changed by ALTER ROLE). */
  dbPassword: string | undefined;
  config: DoubleConfig = { delaysMs: {}, unhealthy: [], neverHealthy: [], akFailures: 0 };
  port = 0;
  private server?: net.Server;
  /** The container whose `ak` command is running, else the worker (its discovery): who made an Authentik event. */
  private authentikActor = "authentik-worker";
  /** What netbird-agent's `netbird up` read as its setup key when the container last started. */
  private agentSetupKey?: { key: string } | { error: string };
  private discovering = false;

  /** NetBird's and Authentik's HTTP APIs, answering while their containers are healthy. */
  readonly netbird: NetbirdDouble;
  readonly authentik: AuthentikDouble;

  constructor(readonly stateDir: string) {
    fs.mkdirSync(stateDir, { recursive: true });
    const containers: Containers = {
      healthyEnv: (name) => {
        const c = this.containers.get(name);
        return c && c.running && this.health(c) === "healthy" ? c.config.environment : undefined;
      },
      hostPathOf: (name, target) => {
        const c = this.containers.get(name);
        const volume = c?.config.volumes.find((v) => v.split(":")[1] === target);
        return c && volume ? path.resolve(c.cwd, volume.split(":")[0]) : undefined;
      },
    };
    this.netbird = new NetbirdDouble(containers);
    this.authentik = new AuthentikDouble(containers, this.authentikStore(), (kind) => this.events.push({ kind, service: this.authentikActor }));
    // NetBird fetches <issuer>/.well-known/openid-configuration over the public name: it
    // answers when Traefik and authentik-server run and the issuer's application exists.
    this.netbird.discoverable = (issuer) => {
      const env = containers.healthyEnv("authentik-server");
      return !!env && !!containers.healthyEnv("traefik") && this.authentik.issuerFor("netbird", env.BIFROST_DOMAIN) === issuer;
    };
  }

  configure(config: Partial<DoubleConfig>): void {
    this.config = { ...this.config, ...config };
  }

  async start(): Promise<number> {
    this.server = net.createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    await Promise.all([this.netbird.api.start(), this.authentik.api.start()]);
    return this.port;
  }

  async stop(): Promise<void> {
    await Promise.all([this.netbird.api.stop(), this.authentik.api.stop()]);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  eventsOf(...kinds: EventKind[]): DoubleEvent[] {
    return this.events.filter((e) => kinds.includes(e.kind));
  }

  healthOf(name: string): "healthy" | "unhealthy" | "starting" {
    const c = this.containers.get(name);
    if (!c) throw new Error(`no container ${name}`);
    return this.health(c);
  }

  // --- wire protocol (see shim/docker) -----------------------------------------------------

  private serve(socket: net.Socket): void {
    let buffer = Buffer.alloc(0);
    let handled = false;
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      const request = handled ? undefined : decodeRequest(buffer);
      if (!request) return;
      handled = true;
      void this.handle(request).then((reply) => {
        socket.end(`${reply.code}\0${reply.stdout ?? ""}\0${reply.stderr ?? ""}\0`);
      });
    });
    socket.on("error", () => undefined);
  }

  private async handle(request: Request): Promise<Reply> {
    this.calls.push(request.args.join(" "));
    fs.appendFileSync(path.join(this.stateDir, "calls.log"), `${request.args.join(" ")}\n`);
    if (this.config.killAtCall === this.calls.length) return { code: "kill" };
    try {
      const out = { stdout: "", stderr: "" };
      await this.dispatch(request, out);
      return { code: 0, ...out };
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      return { code: e instanceof Failure ? e.code : 125, stderr: `${message}\n` };
    } finally {
      this.persist();
    }
  }

  private persist(): void {
    const state = {
      containers: Object.fromEntries(this.containers),
      tokens: Object.fromEntries(this.tokens),
      events: this.events,
    };
    const file = path.join(this.stateDir, "state.json");
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2));
    fs.renameSync(`${file}.tmp`, file);
  }

  private async dispatch(request: Request, out: { stdout: string; stderr: string }): Promise<void> {
    const [command, ...rest] = request.args;
    if (command === "compose") return this.compose(request, rest, out);
    if (command === "inspect") return this.inspect(rest, out);
    if (command === "exec") {
      if (rest.includes("ak")) await sleep(this.config.akCommandMs ?? 0);
      if (this.config.psqlHangs && rest[0] === "-i" && rest[1] === "authentik-postgres" && rest[2] === "psql") await new Promise(() => undefined);
      return this.exec(request, rest, out);
    }
    if (command === "ps") return this.ps(rest, out);
    if (command === "stop") return this.stopContainers(rest, out);
    if (command === "pull") return this.pull(rest, out);
    if (command === "image" && rest[0] === "inspect") return this.imageInspect(rest.slice(1), out);
    throw new Failure(`docker double: unsupported command: docker ${request.args.join(" ")}`, 127);
  }

  // --- docker compose ----------------------------------------------------------------------

  private async compose(request: Request, args: string[], out: { stdout: string; stderr: string }): Promise<void> {
    const envFiles: string[] = [];
    const profiles: string[] = [];
    const files: string[] = [];
    let i = 0;
    for (; i < args.length && args[i].startsWith("-"); i += 2) {
      if (args[i] === "--env-file") envFiles.push(args[i + 1]);
      else if (args[i] === "--profile") profiles.push(args[i + 1]);
      else if (args[i] === "-f" || args[i] === "--file") files.push(args[i + 1]);
      else throw new Failure(`docker double: unsupported compose flag ${args[i]}`, 127);
    }
    const [sub, ...subArgs] = args.slice(i);
    if (sub === "version") {
      if (subArgs.length) throw new Failure(`docker double: unsupported: compose version ${subArgs.join(" ")}`, 127);
      out.stdout += "Docker Compose version v2.26.1 (double)\n";
      return;
    }
    const project = loadProject(request, envFiles, files, out);
    const { flags, services } = splitFlags(subArgs);
    const known = (allowed: string[]) => {
      const unknown = Object.keys(flags).filter((f) => !allowed.includes(f));
      if (unknown.length) throw new Failure(`docker double: unsupported flags for compose ${sub}: ${unknown.join(" ")}`, 127);
      for (const s of services) if (!project[s]) throw new Failure(`no such service: ${s}`);
    };
    switch (sub) {
      case "pull": {
        // compose/pkg/compose/pull.go: `--policy missing` skips a service whose image the
        // daemon already has; without it every image is pulled again.
        known(["--quiet", "--policy"]);
        if (flags["--policy"] !== undefined && !["missing", "always"].includes(flags["--policy"])) throw new Failure(`invalid pull policy: ${flags["--policy"]}`);
        const active = Object.entries(project).filter(([, s]) => !s.profiles.length || s.profiles.some((p) => profiles.includes(p)));
        const held = new Set(this.images);
        for (const [name, service] of active) {
          if (flags["--policy"] === "missing" && held.has(service.image)) continue;
          this.images.add(service.image);
          this.events.push({ kind: "pull", service: name });
        }
        return;
      }
      case "up":
        known(["--detach", "--wait", "--wait-timeout"]);
        if (!("--detach" in flags) || !("--wait" in flags) || services.length === 0)
          throw new Failure("docker double: only `compose up --detach --wait [--wait-timeout N] SERVICE…` is supported", 127);
        return this.up(request.cwd, project, services, Number(flags["--wait-timeout"] ?? "0"), out);
      case "config": {
        // `config --format json [SERVICE…]`: the resolved model of the selected services and
        // the services they depend on (docker/compose cmd/compose/config.go, Compose 2.26.1:
        // `config --images authentik-server` prints authentik-postgres's image too). The double
        // renders each service's image only.
        known(["--format"]);
        if (flags["--format"] !== "json") throw new Failure("docker double: only `compose config --format json [SERVICE…]` is supported", 127);
        const selected = new Set<string>();
        const select = (s: string) => {
          if (selected.has(s)) return;
          selected.add(s);
          project[s].dependsOn.forEach(select);
        };
        (services.length ? services : Object.keys(project)).forEach(select);
        out.stdout += `${JSON.stringify({ name: "bifrost", services: Object.fromEntries([...selected].map((s) => [s, { image: project[s].image }])) })}\n`;
        return;
      }
      case "stop":
        known([]);
        for (const s of services) {
          const c = this.containers.get(s);
          if (!c?.running) continue;
          c.running = false;
          this.events.push({ kind: "stop", service: s });
          out.stderr += ` Container ${s}  Stopping\n Container ${s}  Stopped\n`;
        }
        return;
      case "restart":
        known([]);
        for (const s of services) {
          const c = this.containers.get(s);
          if (!c) throw new Failure(`no container for service ${s}`);
          c.startedAt = Date.now();
          c.log.push(`${s} restarted`);
          this.started(s);
          this.events.push({ kind: "restart", service: s });
          out.stderr += ` Container ${s}  Restarting\n Container ${s}  Started\n`;
        }
        return;
      case "rm":
        known(["--stop", "--force"]);
        if (!("--stop" in flags) || !("--force" in flags)) throw new Failure("docker double: only `compose rm --stop --force SERVICE…` is supported", 127);
        for (const s of services) {
          if (!project[s].profiles.every((p) => profiles.includes(p))) throw new Failure(`no such service: ${s} (its profile is not enabled)`);
          if (this.containers.delete(s)) this.events.push({ kind: "remove", service: s });
        }
        return;
      case "logs": {
        known(["--no-color", "--tail"]);
        const tail = Number(flags["--tail"]);
        for (const s of services) for (const line of this.containers.get(s)?.log.slice(-tail) ?? []) out.stdout += `${s}  | ${line}\n`;
        return;
      }
      case "ps":
        known(["--all", "--quiet"]);
        if (!("--quiet" in flags)) throw new Failure("docker double: only `compose ps --all --quiet` is supported", 127);
        for (const s of services) if (this.containers.has(s)) out.stdout += `${containerId(s)}\n`;
        return;
      default:
        throw new Failure(`docker double: unsupported: docker compose ${args.join(" ")}`, 127);
    }
  }

  private async up(cwd: string, project: Record<string, ResolvedService>, targets: string[], timeoutS: number, out: { stdout: string; stderr: string }) {
    const order: string[] = [];
    const visit = (s: string) => {
      if (order.includes(s)) return;
      for (const d of project[s].dependsOn) visit(d);
      order.push(s);
    };
    targets.forEach(visit);
    for (const name of order) {
      const config = project[name];
      const hash = createHash("sha256").update(JSON.stringify(config)).digest("hex");
      const existing = this.containers.get(name);
      if (existing && existing.hash === hash) {
        out.stderr += ` Container ${name}  ${existing.running ? "Running" : "Started"}\n`;
        if (!existing.running) this.started(name);
        existing.running = true;
        continue;
      }
      this.prepareMounts(cwd, name, config);
      this.containers.set(name, { service: name, cwd, running: true, hash, config, startedAt: Date.now(), log: [...(existing?.log ?? []), `${name} starting`] });
      this.started(name);
      this.events.push({ kind: existing ? "recreate" : "create", service: name });
      out.stderr += ` Container ${name}  ${existing ? "Recreated" : "Created"}\n Container ${name}  Started\n`;
    }
    const deadline = Date.now() + timeoutS * 1000;
    for (const name of order) {
      const c = this.containers.get(name)!;
      for (;;) {
        const health = this.readHealth(c);
        if (health === "healthy") break;
        if (health === "unhealthy") {
          c.log.push(`${name} health check failed`);
          throw new Failure(`${out.stderr}dependency failed to start: container ${name} is unhealthy`);
        }
        if (timeoutS > 0 && Date.now() >= deadline) {
          c.log.push(`${name} still starting`);
          throw new Failure(`${out.stderr}timeout waiting for container ${name} to become healthy`);
        }
        await sleep(Math.max(1, Math.min(this.readyAt(c) - Date.now(), timeoutS > 0 ? deadline - Date.now() : Infinity, 50)));
      }
      out.stderr += ` Container ${name}  Healthy\n`;
    }
  }

  private readyAt(c: Container): number {
    return c.startedAt + (c.config.healthcheck ? (this.config.delaysMs[c.service] ?? 0) : 0);
  }

  /** The health Compose's --wait or `docker inspect` reads: one read of a failing probe's count. */
  private readHealth(c: Container): "healthy" | "unhealthy" | "starting" {
    const health = this.health(c);
    const fails = this.config.probeFails;
    if (fails?.[c.service] && health === "unhealthy") fails[c.service] -= 1;
    return health;
  }

  private health(c: Container): "healthy" | "unhealthy" | "starting" {
    if (this.config.neverHealthy.includes(c.service)) return "starting";
    if (Date.now() < this.readyAt(c)) return "starting";
    if (this.config.unhealthy.includes(c.service)) return "unhealthy";
    if ((this.config.probeFails?.[c.service] ?? 0) > 0) {
      c.log.push(`${c.service} health probe timed out`);
      return "unhealthy";
    }
    if (c.exited) {
      c.log.push(c.exited);
      return "unhealthy";
    }
    const dbPassword = c.config.environment.AUTHENTIK_POSTGRESQL__PASSWORD;
    if (dbPassword !== undefined && dbPassword !== this.dbPassword) {
      c.log.push('FATAL: password authentication failed for user "authentik"');
      return "unhealthy";
    }
    const refused = this.netbirdCredentialRefused(c);
    if (refused) {
      c.log.push(refused);
      return "unhealthy";
    }
    return "healthy";
  }

  /** A container's process (re)started: what a server decides once at its start is decided now. */
  private started(service: string): void {
    if (service === "authentik-server") {
      const c = this.containers.get(service)!;
      c.exited = this.authentik.serverStarted(c.config.image);
    }
    if (service === "netbird-server") this.netbird.serverStarted();
    if (service === "netbird-agent") this.agentSetupKey = this.agentSetupKeyAtStart();
  }

  /**
   * The agent's setup key as its entrypoint's `netbird up` reads it, once, at the container's
   * start (client/netbird-entrypoint.sh connect; client/cmd/root.go getSetupKey: NB_SETUP_KEY,
   * else the file NB_SETUP_KEY_FILE names, trimmed; a file it cannot read fails `up`).
   */
  private agentSetupKeyAtStart(): { key: string } | { error: string } {
    const c = this.containers.get("netbird-agent")!;
    const { NB_SETUP_KEY: key, NB_SETUP_KEY_FILE: file } = c.config.environment;
    if (key || !file) return { key: key ?? "" };
    const mount = c.config.volumes.map((v) => v.split(":")).find(([, target]) => file.startsWith(`${target}/`));
    const host = mount ? path.join(path.resolve(c.cwd, mount[0]), file.slice(mount[1].length + 1)) : undefined;
    if (!host || !fs.existsSync(host)) return { error: `failed to read setup key file: open ${file}: no such file or directory` };
    return { key: fs.readFileSync(host, "utf8").trim() };
  }

  /** The WireGuard key the agent made on first start and keeps in its state directory. */
  private agentPublicKey(c: Container): string {
    const dir = this.containerHostPath(c, "/var/lib/netbird");
    const file = path.join(dir, "double-wireguard-public-key");
    if (!fs.existsSync(file)) fs.writeFileSync(file, randomBytes(32).toString("base64"));
    return fs.readFileSync(file, "utf8");
  }

  private containerHostPath(c: Container, target: string): string {
    const mount = c.config.volumes.map((v) => v.split(":")).find(([, t]) => t === target);
    if (!mount) throw new Failure(`docker double: ${c.service} has no ${target} mount`);
    return path.resolve(c.cwd, mount[0]);
  }

  /**
   * netbird-proxy authenticates to management with a proxy token NetBird stores
   * (internals/shared/grpc/proxy_auth.go doValidateProxyToken: "invalid token"); netbird-agent
   * logs in as a peer (netbirdMesh.ts loginPeer: a known WireGuard key, else a valid setup key).
   * A refusal keeps them unhealthy, as the real engine's stand-ins showed.
   */
  private netbirdCredentialRefused(c: Container): string | undefined {
    if (c.service !== "netbird-proxy" && c.service !== "netbird-agent") return undefined;
    const server = this.containers.get("netbird-server");
    if (!server || !server.running) return "management unreachable";
    if (c.service === "netbird-proxy") return proxyTokenValid(this.netbird.store(), c.config.environment.NB_PROXY_TOKEN ?? "", this.netbird.now()) ? undefined : "management refused the proxy: invalid token";
    const key = this.agentSetupKey ?? this.agentSetupKeyAtStart();
    if ("error" in key) return key.error;
    const reply = this.netbird.login({ setupKey: key.key, publicKey: this.agentPublicKey(c), hostname: c.config.environment.NB_HOSTNAME ?? "" });
    return reply.status === 200 ? undefined : String((reply.body as { message: string }).message);
  }

  private setDbPassword(dataDir: string, password: string | undefined): void {
    this.dbPassword = password;
    if (password !== undefined) fs.writeFileSync(path.join(dataDir, "double-authentik-role-password"), password);
  }

  /** What the engine does on create: missing bind sources become directories; postgres runs initdb on an empty data dir. */
  private prepareMounts(cwd: string, name: string, config: ResolvedService): void {
    for (const volume of config.volumes) {
      const [source, target] = volume.split(":");
      const host = path.resolve(cwd, source);
      if (!fs.existsSync(host)) fs.mkdirSync(host, { recursive: true });
      if (config.image.startsWith("postgres:") && target === "/var/lib/postgresql/data") {
        // The role's password lives in the database on the volume: a new server on the old
        // volume finds the one set at initdb or by the last ALTER ROLE.
        const role = path.join(host, "double-authentik-role-password");
        if (fs.readdirSync(host).length === 0) {
          fs.writeFileSync(path.join(host, "PG_VERSION"), "16\n");
          this.setDbPassword(host, config.environment.POSTGRES_PASSWORD);
          this.containers.get(name)?.log.push("initdb done");
        } else if (this.dbPassword === undefined && fs.existsSync(role)) {
          this.dbPassword = fs.readFileSync(role, "utf8");
        }
      }
    }
  }

  // --- docker inspect / exec ---------------------------------------------------------------

  /**
   * `docker ps --quiet --filter label=com.docker.compose.project=NAME`: ids of the running
   * containers of that Compose project, one per line (docker CLI reference, "docker container
   * ls", --filter label=). Compose labels each container with its project's name
   * (docker/compose pkg/api/labels.go, ProjectLabel); docker-compose.yml names it `bifrost`.
   */
  private ps(args: string[], out: { stdout: string }): void {
    const filter = "label=com.docker.compose.project=";
    if (args.length !== 3 || args[0] !== "--quiet" || args[1] !== "--filter" || !args[2].startsWith(filter))
      throw new Failure(`docker double: only \`ps --quiet --filter ${filter}NAME\` is supported`, 127);
    if (args[2] !== `${filter}bifrost`) return;
    for (const c of this.containers.values()) if (c.running) out.stdout += `${containerId(c.service)}\n`;
  }

  /** `docker pull --quiet IMAGE`: the daemon holds the image from then on; prints its reference (docker CLI reference, "docker image pull"). */
  private pull(args: string[], out: { stdout: string }): void {
    if (args.length !== 2 || args[0] !== "--quiet") throw new Failure("docker double: only `pull --quiet IMAGE` is supported", 127);
    this.images.add(args[1]);
    this.events.push({ kind: "pull", service: args[1] });
    out.stdout += `${args[1]}\n`;
  }

  /** `docker image inspect IMAGE`: fails for an image the daemon does not hold (docker CLI reference, "docker image inspect"). */
  private imageInspect(args: string[], out: { stdout: string }): void {
    if (args.length !== 1) throw new Failure("docker double: only `image inspect IMAGE` is supported", 127);
    if (!this.images.has(args[0])) throw new Failure(`Error response from daemon: No such image: ${args[0]}`);
    out.stdout += `${JSON.stringify([{ RepoTags: [args[0]] }])}\n`;
  }

  /** `docker stop --time N ID…`: stops each container and prints its id (docker CLI reference, "docker container stop"). */
  private stopContainers(args: string[], out: { stdout: string }): void {
    if (args[0] !== "--time" || !/^\d+$/.test(args[1] ?? "") || args.length < 3)
      throw new Failure("docker double: only `stop --time N ID…` is supported", 127);
    for (const id of args.slice(2)) {
      const c = [...this.containers.values()].find((x) => containerId(x.service) === id);
      if (!c) throw new Failure(`Error response from daemon: No such container: ${id}`);
      c.running = false;
      this.events.push({ kind: "stop", service: c.service });
      out.stdout += `${id}\n`;
    }
  }

  /**
   * `docker inspect --format` with a container's health (Docker's inspect: .State.Health.Status
   * is starting|healthy|unhealthy), or its state and health: .State.Status is "running" until
   * its program exits ("exited", or "restarting" under a restart policy) and for a stopped one.
   */
  private inspect(args: string[], out: { stdout: string }): void {
    const formats = ["{{.State.Health.Status}}", "{{.State.Status}} {{.State.Health.Status}}"];
    if (args.length !== 3 || args[0] !== "--format" || !formats.includes(args[1]))
      throw new Failure(`docker double: unsupported: docker inspect ${args.join(" ")}`, 127);
    const c = this.containers.get(args[2]);
    if (!c) throw new Failure(`Error: No such object: ${args[2]}`);
    const health = this.readHealth(c);
    if (args[1] === formats[0]) out.stdout += `${health}\n`;
    else out.stdout += `${c.running ? (c.exited ? "restarting" : "running") : "exited"} ${health}\n`;
  }

  private exec(request: Request, args: string[], out: { stdout: string; stderr: string }): void {
    if (args[0] !== "-i") return this.execWithoutStdin(args, out);
    const [, name, ...command] = args;
    if (request.stdin === undefined) throw new Failure("docker double: `docker exec -i` without stdin", 127);
    const c = this.containers.get(name);
    if (!c) throw new Failure(`Error response from daemon: No such container: ${name}`);
    if (this.health(c) === "starting") throw new Failure(`Error response from daemon: container ${name} is not running`);
    // authentik/core/management/commands/shell.py: without -c it starts an interactive
    // console, and code on stdin runs only if it happens to be ready: a race, refused here.
    if (name === "authentik-server" && command[0] === "ak" && command[1] === "shell")
      throw new Failure("docker double: `ak shell` fed on stdin races the interactive console; use `ak shell -c CODE`", 127);
    if (name === "authentik-postgres" && command[0] === "psql") return this.psql(command.slice(1), request.stdin, out);
    throw new Failure(`docker double: unsupported: docker exec -i ${name} ${command.join(" ")}`, 127);
  }

  /**
   * `netbird status --json` (client/status/status.go OutputOverview): the peer's address as
   * netbirdIp, with its prefix length, and its WireGuard public key; a daemon that never logged
   * in has no address yet.
   */
  private agentStatus(c: Container, out: { stdout: string }): void {
    const publicKey = this.agentPublicKey(c);
    const peer = this.netbird.store().peers.find((p) => p.public_key === publicKey);
    out.stdout += `${JSON.stringify({ netbirdIp: peer ? `${peer.ip}/16` : "", publicKey, fqdn: peer ? `${peer.dns_label}.${meshDnsDomain}` : "" })}\n`;
  }

  /** `docker exec CONTAINER ak apply_blueprint FILE` (see AuthentikDouble.applyBlueprint) and `ak shell -c CODE`. */
  private execWithoutStdin(args: string[], out: { stdout: string; stderr: string }): void {
    const [name, ...command] = args;
    const c = this.containers.get(name);
    if (!c || !c.running) throw new Failure(`Error response from daemon: No such container: ${name}`);
    if (this.health(c) === "starting") throw new Failure(`Error response from daemon: container ${name} is not running`);
    this.authentikActor = name;
    try {
      if (name === "authentik-server" && command[0] === "ak" && command[1] === "shell" && command[2] === "-c" && command.length === 4) return this.akShell(c, command[3], out);
      if (name === "netbird-agent" && command.join(" ") === "netbird status --json") return this.agentStatus(c, out);
      if (!name.startsWith("authentik-") || command[0] !== "ak" || command[1] !== "apply_blueprint" || command.length !== 3)
        throw new Failure(`docker double: unsupported: docker exec ${args.join(" ")}`, 127);
      const mount = c.config.volumes.map((v) => v.split(":")).find(([, target]) => command[2].startsWith(`${target}/`));
      const file = mount ? path.join(path.resolve(c.cwd, mount[0]), command[2].slice(mount[1].length + 1)) : command[2];
      const result = this.authentik.applyBlueprint(file, c.config.environment);
      if (result.invalid) throw new Failure(result.invalid);
      out.stdout += result.stdout;
    } finally {
      this.authentikActor = "authentik-worker";
    }
  }

  private akShell(c: Container, snippet: string, out: { stdout: string }): void {
    if (this.config.akFailures > 0) {
      this.config.akFailures -= 1;
      throw new Failure("django.db.utils.OperationalError: the database system is starting up");
    }
    try {
      out.stdout += this.authentik.shell(snippet, c.config.environment);
    } catch (e) {
      throw new Failure((e as Error).message);
    }
  }

  /** The API tokens Authentik holds, by identifier (read-only view for tests). */
  get tokens(): Map<string, StoredToken> {
    return this.authentik.tokens;
  }

  get adminPassword(): string | undefined {
    return this.authentik.adminPassword;
  }

  seedToken(identifier: string, token: StoredToken): void {
    this.authentik.seedToken(identifier, token);
  }

  /**
   * Authentik's database, in a file on the postgres volume (so a new server on the old volume
   * finds it, and a new volume starts empty), caught up with the worker's discovery whenever
   * it is read: the double computes discovery lazily, where the worker runs it in the background.
   */
  private authentikStore(): AuthentikStore {
    const file = () => {
      const data = this.containers.get("authentik-postgres");
      const host = data?.config.volumes.map((v) => v.split(":")).find(([, target]) => target === "/var/lib/postgresql/data");
      return data && host ? path.join(path.resolve(data.cwd, host[0]), "double-authentik-db.json") : undefined;
    };
    const load = (): AuthentikDb => {
      const f = file();
      return f && fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, "utf8")) : emptyAuthentikDb();
    };
    return {
      read: () => {
        this.discover();
        return load();
      },
      transact: (change) => {
        this.discover();
        const f = file();
        if (!f) throw new Failure("django.db.utils.OperationalError: connection to server failed");
        const db = load();
        const result = change(db);
        fs.writeFileSync(f, JSON.stringify(db, null, 2));
        return result;
      },
    };
  }

  /** The worker's discovery caught up to now (see DoubleConfig.discoveryMs), while the worker is healthy. */
  private discover(): void {
    const worker = this.containers.get("authentik-worker");
    if (this.discovering || !worker || !worker.running || this.health(worker) !== "healthy") return;
    if (!this.containers.get("authentik-postgres")) return;
    this.discovering = true;
    try {
      this.authentik.discover(worker.config.environment, Date.now() - this.readyAt(worker), this.config.discoveryMs ?? { bootstrap: 0, instances: 0, applied: 0 });
    } finally {
      this.discovering = false;
    }
  }

  /**
   * psql in authentik-postgres: `ALTER ROLE authentik WITH PASSWORD '…';`, and the query of the
   * version that last ran Authentik's database, guarded for a database without the table
   * (test/conformance/postgres.test.ts runs the bootstrap's own script on a real PostgreSQL).
   */
  private psql(args: string[], sql: string, out: { stdout: string }): void {
    for (const required of ["--username=authentik", "--dbname=authentik"])
      if (!args.includes(required)) throw new Failure(`docker double: psql needs ${required}`);
    if (args.some((a) => /password/i.test(a))) throw new Failure("docker double: a password on psql's command line");
    if (/to_regclass\('authentik_version_history'\)[\s\S]*\\if[\s\S]*SELECT version FROM authentik_version_history ORDER BY timestamp DESC LIMIT 1;/.test(sql)) {
      if (!args.includes("--tuples-only") || !args.includes("--no-align")) throw new Failure("docker double: the version query needs --tuples-only --no-align");
      const version = this.authentik.versions().at(-1);
      if (version !== undefined) out.stdout += `${version}\n`;
      return;
    }
    const m = /^ALTER ROLE authentik WITH PASSWORD '((?:[^']|'')*)';\s*$/.exec(sql);
    if (!m) throw new Failure("ERROR:  syntax error (the double understands only ALTER ROLE authentik WITH PASSWORD '…';)");
    if (this.dbPassword === undefined) throw new Failure('FATAL:  role "authentik" does not exist');
    const data = this.containers.get("authentik-postgres");
    const host = data && data.config.volumes.map((v) => v.split(":")).find(([, target]) => target === "/var/lib/postgresql/data");
    if (!data || !host) throw new Failure("docker double: authentik-postgres has no data directory");
    this.setDbPassword(path.resolve(data.cwd, host[0]), m[1].replace(/''/g, "'"));
    this.events.push({ kind: "role-password", service: "authentik-postgres" });
  }
}

const containerId = (name: string) => createHash("sha256").update(name).digest("hex").slice(0, 12);

function decodeRequest(buffer: Buffer): Request | undefined {
  const fields: string[] = [];
  let start = 0;
  for (let i = 0; i < buffer.length; i++) {
    if (buffer[i] === 0) {
      fields.push(buffer.subarray(start, i).toString("utf8"));
      start = i + 1;
    }
  }
  // pgid, cwd, argc, args…, has_stdin, stdin, envc, env…
  if (fields.length < 3) return undefined;
  const argc = Number(fields[2]);
  const envcAt = 3 + argc + 2;
  if (fields.length <= envcAt) return undefined;
  const envc = Number(fields[envcAt]);
  if (fields.length < envcAt + 1 + envc) return undefined;
  const env: Record<string, string> = {};
  for (const entry of fields.slice(envcAt + 1, envcAt + 1 + envc)) {
    const eq = entry.indexOf("=");
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return { cwd: fields[1], args: fields.slice(3, 3 + argc), stdin: fields[3 + argc] === "1" ? fields[4 + argc] : undefined, env };
}

function splitFlags(args: string[]): { flags: Record<string, string>; services: string[] } {
  const withValue = new Set(["--wait-timeout", "--tail", "--policy", "--format"]);
  const flags: Record<string, string> = {};
  const services: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (!args[i].startsWith("-")) services.push(args[i]);
    else if (withValue.has(args[i])) flags[args[i]] = args[++i];
    else flags[args[i]] = "";
  }
  return { flags, services };
}

// --- Compose project loading ---------------------------------------------------------------

/** compose-go's dotenv rules for the lines render.ts writes (and the usual unquoted/single-quoted forms). */
export function parseEnvFile(text: string, lookup: (name: string) => string | undefined): Record<string, string> {
  const vars: Record<string, string> = {};
  const resolve = (name: string) => vars[name] ?? lookup(name) ?? "";
  const expand = (value: string) => value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, n1, n2) => resolve(n1 ?? n2));
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new Failure(`failed to read env file: unexpected line: ${line.split("=")[0]}=…`);
    const [, name, rest] = m;
    if (rest.startsWith('"')) {
      const end = /^"((?:[^"\\]|\\.)*)"/.exec(rest);
      if (!end) throw new Failure(`failed to read env file: unterminated quoted value for ${name}`);
      // Escaped `$` and `\` must survive expansion as literals: park them on private-use code points.
      const escapes: Record<string, string> = { a: "\x07", b: "\b", c: "", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", $: "\uE000", '"': '"', "\\": "\uE001" };
      const unescaped = end[1].replace(/\\(?:([abcfnrtv$"\\])|0(\d{0,3}))/g, (_m, c, oct) => (c !== undefined ? escapes[c] : String.fromCharCode(parseInt(oct || "0", 8))));
      vars[name] = expand(unescaped).replace(/\uE000/g, "$").replace(/\uE001/g, "\\");
    } else if (rest.startsWith("'")) {
      const end = /^'([^']*)'/.exec(rest);
      if (!end) throw new Failure(`failed to read env file: unterminated quoted value for ${name}`);
      vars[name] = end[1];
    } else {
      vars[name] = expand(rest.replace(/\s+#.*$/, "").trim());
    }
  }
  return vars;
}

/**
 * Compose's interpolation (compose-go v2 template/template.go, as Compose 2.26.1 uses it): `$$`
 * is a `$`; `$NAME`, `${NAME}`; `${NAME:-default}` / `${NAME-default}` (the colon form also
 * when empty); `${NAME:?message}` / `${NAME?message}` fail. A default may itself hold
 * `${…}`, substituted only when it is used — the real Compose resolves
 * `${A:-${B:-}}` so (test/conformance/compose.test.ts checks it on trixie's Compose).
 */
function interpolateText(text: string, env: Record<string, string>, warn: (name: string) => void): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    if (text.startsWith("$$", i)) {
      out += "$";
      i += 2;
    } else if (text.startsWith("${", i)) {
      let depth = 1;
      let j = i + 2;
      for (; j < text.length && depth > 0; j++) {
        if (text.startsWith("${", j)) {
          depth++;
          j++;
        } else if (text[j] === "}") depth--;
      }
      if (depth > 0) throw new Failure(`invalid interpolation format for ${text}`);
      const inner = text.slice(i + 2, j - 1);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([\s\S]*))?$/.exec(inner);
      if (!m) throw new Failure(`invalid interpolation format for ${text}`);
      const [, key, colon, op, arg] = m;
      const val = env[key];
      const unset = val === undefined || (colon === ":" && val === "");
      if (op === "-") out += unset ? interpolateText(arg, env, warn) : val;
      else if (op === "?" && unset) throw new Failure(`required variable ${key} is missing a value: ${arg}`);
      else {
        if (val === undefined) warn(key);
        out += val ?? "";
      }
      i = j;
    } else {
      const bare = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(text.slice(i));
      if (bare) {
        const val = env[bare[1]];
        if (val === undefined) warn(bare[1]);
        out += val ?? "";
        i += bare[0].length;
      } else {
        out += text[i];
        i++;
      }
    }
  }
  return out;
}

function interpolate(value: unknown, env: Record<string, string>, warn: (name: string) => void): unknown {
  if (typeof value === "string") return interpolateText(value, env, warn);
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env, warn));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, warn)]));
  return value;
}

function loadProject(request: Request, envFiles: string[], files: string[], out: { stderr: string }): Record<string, ResolvedService> {
  const fromFiles: Record<string, string> = {};
  for (const file of envFiles) {
    const full = path.resolve(request.cwd, file);
    if (!fs.existsSync(full)) throw new Failure(`couldn't find env file: ${full}`);
    Object.assign(fromFiles, parseEnvFile(fs.readFileSync(full, "utf8"), (n) => request.env[n] ?? fromFiles[n]));
  }
  // The shell's environment wins over the env files, as in Compose.
  const env = { ...fromFiles, ...request.env };
  // -f files in order, else COMPOSE_FILE, else docker-compose.yml (Compose docs,
  // environment-variables/envvars: COMPOSE_FILE is read only when no -f is given).
  const paths = files.length ? files : (request.env.COMPOSE_FILE?.split(":") ?? ["docker-compose.yml"]);
  const warned = new Set<string>();
  const [doc, ...overrides] = paths.map((file) => {
    const full = path.resolve(request.cwd, file);
    if (!fs.existsSync(full)) throw new Failure(`no configuration file provided: not found in ${request.cwd}`, 14);
    return interpolate(parseYaml(fs.readFileSync(full, "utf8")), env, (name) => {
      if (!warned.has(name)) out.stderr += `WARN[0000] The "${name}" variable is not set. Defaulting to a blank string.\n`;
      warned.add(name);
    }) as { services: Record<string, Record<string, unknown>> };
  });
  // A later file's scalar replaces the earlier one (compose-go override merge); the double
  // takes overrides of a service's image only.
  for (const override of overrides)
    for (const [name, fields] of Object.entries(override.services ?? {})) {
      if (!doc.services[name]) throw new Failure(`docker double: an override of unknown service ${name}`, 127);
      for (const [key, value] of Object.entries(fields)) {
        if (key !== "image") throw new Failure(`docker double: overrides may set only a service's image, not ${key}`, 127);
        doc.services[name].image = value;
      }
    }
  const project: Record<string, ResolvedService> = {};
  for (const [name, s] of Object.entries(doc.services)) {
    const { image, command, environment, volumes, ports, profiles, depends_on, healthcheck, ...other } = s;
    const envMap: Record<string, string> = {};
    if (Array.isArray(environment))
      for (const e of environment as string[]) {
        const eq = e.indexOf("=");
        envMap[eq < 0 ? e : e.slice(0, eq)] = eq < 0 ? (env[e] ?? "") : e.slice(eq + 1);
      }
    else for (const [k, v] of Object.entries((environment ?? {}) as Record<string, unknown>)) envMap[k] = v === null ? "" : String(v);
    if (typeof image !== "string" || !image) throw new Failure(`service "${name}" has neither an image nor a build context specified`, 15);
    project[name] = {
      image,
      command,
      environment: envMap,
      volumes: ((volumes ?? []) as string[]).map(String),
      ports: ((ports ?? []) as string[]).map(String),
      profiles: (profiles ?? []) as string[],
      dependsOn: Array.isArray(depends_on) ? (depends_on as string[]) : Object.keys((depends_on ?? {}) as object),
      healthcheck,
      other,
    };
  }
  return project;
}
