/**
 * Runs the real cloud/bifrost/bootstrap.sh against a temp copy of cloud/bifrost, with env
 * files rendered by the real renderers from canary values, the docker double first on PATH
 * and (optionally) the host stand-ins for blkid/mkfs.ext4/mount/mountpoint, then the VPS's own
 * jq (trixie's, test/conformance/tools.ts vpsBin): the bootstrap's jq programs run on the jq
 * they meet on the VPS.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { entriesFor } from "../../components/secrets/catalog";
import { renderEnv, renderSecretsEnv, type SecretValues, type VpsSettings } from "../../components/secrets/render";
import { readNetbirdStore, writeNetbirdStore } from "./apis";
import { issuedSetupKey } from "./netbirdMesh";
import { DockerDouble } from "./server";
import { vpsBin } from "../conformance/tools";

export const repoRoot = path.resolve(__dirname, "../..");
export const bifrostSource = path.join(repoRoot, "cloud/bifrost");
const doubleBin = path.join(__dirname, "shim");
const hostBin = path.join(__dirname, "host-bin");

/** Every secret the hetzner stack delivers to the VPS, each with a unique canary value. */
export function canarySecrets(options: { optional?: boolean } = {}): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const e of entriesFor("hetzner")) {
    if (!e.where.some((w) => w === ".env" || w === ".secrets.env")) continue;
    if (e.optional && !options.optional) continue;
    secrets[e.key] = `canary${e.key.replace(/_/g, "")}${randomBytes(8).toString("hex")}`;
  }
  return secrets;
}

export interface BifrostOptions {
  secrets?: SecretValues;
  volumeDevice?: string;
  publicServices?: VpsSettings["publicServices"];
  /** core:netbirdUserApproval (default true). */
  netbirdUserApproval?: boolean;
  /** core:authentikGithubClientId and core:authentikGithubOrg (default: no GitHub login). */
  authentikGithub?: { clientId: string; org?: string };
  /** A reprovision: start on a copy of this earlier harness's data root (the kept volume). */
  dataFrom?: BifrostHost;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * A VPS's /etc/bifrost and data root in a temp directory, with env files rendered as Pulumi
 * renders them, and bootstrap.sh run on it; where Docker comes from is the subclass's.
 */
export abstract class BifrostHost {
  readonly root: string;
  readonly dir: string;
  readonly data: string;
  readonly fstab: string;
  readonly hostState: string;
  secrets: SecretValues;
  settings: VpsSettings;

  constructor(options: BifrostOptions = {}) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), "bifrost-"));
    this.dir = path.join(this.root, "etc-bifrost");
    this.data = path.join(this.root, "data");
    this.fstab = path.join(this.root, "fstab");
    this.hostState = path.join(this.root, "host");
    fs.cpSync(bifrostSource, this.dir, { recursive: true });
    // `cp -a`: the kept volume keeps its owners (PostgreSQL's uid 70, Authentik's 1000) for a real engine.
    if (options.dataFrom) execFileSync("cp", ["-a", options.dataFrom.data, this.data]);
    fs.writeFileSync(path.join(this.root, "boot-finished"), "");
    fs.writeFileSync(this.fstab, "# <file system> <mount point> <type> <options> <dump> <pass>\n");
    this.secrets = options.secrets ?? canarySecrets();
    this.issueNetbirdCredentials();
    this.settings = {
      domain: "bifrost.example.test",
      acmeEmail: "ops@example.test",
      netbirdOwnerEmail: "owner@example.test",
      netbirdUserApproval: options.netbirdUserApproval ?? true,
      netbirdUsersGroup: "netbird-users",
      authentikGithubClientId: options.authentikGithub?.clientId,
      authentikGithubOrg: options.authentikGithub?.org,
      netbirdAdminSources: [],
      authentikAdminSources: [],
      publicServices: options.publicServices ?? [{ name: "grafana", upstream: "http://100.64.0.10:3000" }],
      dataRoot: this.data,
      // The benchmarking range (RFC 2544), never a private or public network.
      networkSubnet: "198.18.0.0/24",
      traefikAddress: "198.18.0.10",
      databaseSubnet: "198.18.1.0/24",
      volumeDevice: options.volumeDevice,
    };
    this.writeEnvFiles();
  }

  /** What reaches Docker and its APIs: PATH entries before the host's, and variables. */
  protected abstract dockerEnv(): { path: string[]; env: Record<string, string> };

  /** The command line that runs a bundle script where the VPS's Docker is (here: as it is). */
  protected where(command: string[]): string[] {
    return command;
  }

  /** What Pulumi does before every bootstrap run: (re)write both env files, mode 0600. */
  writeEnvFiles(): void {
    fs.writeFileSync(path.join(this.dir, ".env"), renderEnv(this.settings, this.secrets), { mode: 0o600 });
    fs.writeFileSync(path.join(this.dir, ".secrets.env"), renderSecretsEnv(this.secrets), { mode: 0o600 });
  }

  rotate(key: string, value: string): void {
    this.secrets = { ...this.secrets, [key]: value };
    this.issueNetbirdCredentials();
    this.writeEnvFiles();
  }

  /**
   * A proxy token or setup key in SOPS is one NetBird issued (the operator created it in
   * NetBird first; management refuses any other): recorded as issued in NetBird's store on the
   * data root, where the doubles and the engine's netbird-server stand-in keep it.
   */
  private issueNetbirdCredentials(): void {
    const { NB_PROXY_TOKEN: token, NB_BIFROST_SETUP_KEY: key } = this.secrets;
    if (!token && !key) return;
    const dir = path.join(this.data, "netbird");
    fs.mkdirSync(dir, { recursive: true });
    const store = readNetbirdStore(dir);
    if (token && !store.proxyTokens.some((t) => t.token === token)) store.proxyTokens.push({ id: "issued-by-the-operator", name: "operator", token, revoked: false });
    if (key && !store.setupKeys.some((k) => k.key === key)) store.setupKeys.push(issuedSetupKey("issued-by-the-operator", key));
    writeNetbirdStore(dir, store);
  }

  read(relative: string): string {
    return fs.readFileSync(path.join(this.dir, relative), "utf8");
  }

  /** What the bootstrap renders for netbird-server, under the data root (never in /etc/bifrost). */
  get netbirdConfigPath(): string {
    return path.join(this.data, "netbird-config/config.yaml");
  }

  get netbirdRestartPendingPath(): string {
    return path.join(this.data, "netbird-config/.restart-pending");
  }

  readNetbirdConfig(): string {
    return fs.readFileSync(this.netbirdConfigPath, "utf8");
  }

  /** The bootstrap's state file on the data root (NetBird PAT, minted tokens, fingerprints). */
  state(): Record<string, Record<string, string>> {
    const file = path.join(this.data, "bootstrap-state.json");
    return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
  }

  /** Runs a script of the bundle (bootstrap.sh unless told otherwise) as Pulumi runs it on the VPS. */
  run(options: { env?: Record<string, string>; hostTools?: boolean; xtrace?: boolean; script?: string; args?: string[]; onStart?: (pid: number) => void; onStdout?: (stdout: string) => void } = {}): Promise<RunResult> {
    const started = Date.now();
    const docker = this.dockerEnv();
    const pathDirs = [...docker.path, ...(options.hostTools ? [hostBin] : []), vpsBin(), process.env.PATH ?? ""];
    const env: Record<string, string> = {
      HOME: process.env.HOME ?? "/root",
      LANG: "C.UTF-8",
      BIFROST_DIR: this.dir,
      BIFROST_FSTAB: this.fstab,
      BIFROST_CLOUD_INIT_MARKER: path.join(this.root, "boot-finished"),
      BIFROST_WAIT_TIMEOUT: "20",
      BIFROST_TOKEN_RETRY_DELAY: "0.05",
      BIFROST_API_RETRY_DELAY: "0.05",
      HOST_DOUBLE_STATE: this.hostState,
      ...docker.env,
      PATH: pathDirs.join(":"),
      ...options.env,
    };
    const args = [...(options.xtrace ? ["-x"] : []), path.join(this.dir, options.script ?? "bootstrap.sh"), ...(options.args ?? [])];
    return new Promise((resolve, reject) => {
      // Its own process group, so an interruption can kill the script with every child.
      const [program, ...rest] = this.where(["bash", ...args]);
      const child = spawn(program, rest, { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
      if (child.pid !== undefined) options.onStart?.(child.pid);
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => {
        stdout += d;
        options.onStdout?.(stdout);
      });
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started }));
    });
  }
}

export class Bifrost extends BifrostHost {
  readonly double: DockerDouble;

  constructor(options: BifrostOptions = {}) {
    super(options);
    this.double = new DockerDouble(path.join(this.root, "docker"));
  }

  protected dockerEnv(): { path: string[]; env: Record<string, string> } {
    return {
      path: [doubleBin],
      env: {
        BIFROST_NETBIRD_API: `http://127.0.0.1:${this.double.netbird.api.port}`,
        BIFROST_AUTHENTIK_API: `http://127.0.0.1:${this.double.authentik.api.port}`,
        DOCKER_DOUBLE_PORT: String(this.double.port),
      },
    };
  }

  async start(): Promise<this> {
    await this.double.start();
    return this;
  }

  async stop(): Promise<void> {
    await this.double.stop();
    fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** Everything a converged run leaves behind, for comparing two runs. */
  endState(): Record<string, unknown> {
    const optionalFile = (p: string) => (fs.existsSync(p) ? fs.readFileSync(p, "utf8") : undefined);
    return {
      containers: Object.fromEntries(
        [...this.double.containers].map(([name, c]) => [name, { hash: c.hash, health: this.double.healthOf(name) }]),
      ),
      tokens: Object.fromEntries(this.double.tokens),
      dbPassword: this.double.dbPassword,
      secretsEnv: this.read(".secrets.env"),
      netbirdConfig: this.readNetbirdConfig(),
      template: this.read("netbird/config.yaml.tmpl"),
      restartPending: fs.existsSync(this.netbirdRestartPendingPath),
      bootstrapState: this.state(),
      netbirdStore: this.double.netbird.store(),
      authentik: { providers: Object.fromEntries(this.double.authentik.providers), applications: Object.fromEntries(this.double.authentik.applications) },
      storeKeyFingerprint: optionalFile(path.join(this.data, "netbird/.store-key.hmac")),
      postgresFingerprint: optionalFile(path.join(this.data, "authentik-postgres.password.hmac")),
      bifrostFiles: fs.readdirSync(this.dir, { recursive: true }).map(String).sort(),
    };
  }
}

/** A `docker compose …` call of the log as "verb service…" (flags and env files dropped); undefined for other calls. */
export function composeStep(call: string): string | undefined {
  const words = call.split(" ");
  if (words[0] !== "compose") return undefined;
  let i = 1;
  while (["--env-file", "--profile", "-f"].includes(words[i])) i += 2;
  const rest = words.slice(i + 1);
  const services = rest.filter((w, j) => !w.startsWith("-") && !["--wait-timeout", "--tail", "--policy"].includes(rest[j - 1]));
  return [words[i], ...services].join(" ");
}
