/**
 * A real Docker Engine for the tests: trixie's dockerd 26.1.5 (the VPS's version) and its
 * containerd, bookworm's runc, the docker CLI 26.1.5 and Compose 2.26.1, all unpacked by
 * scripts/conformance-tools.sh into .cache/conformance-tools/root. Each Engine is a daemon of
 * its own: its own data root (a new one = a new server), socket and exec root, no iptables
 * rules on the host, no masquerading, no default bridge, Compose networks drawn only from
 * 198.18.0.0/15 (the benchmarking range, RFC 2544). Stopped by its PID.
 *
 * The daemon runs in a network namespace of its own, which stands for the VPS's network: it
 * holds only loopback and the bridges the daemon makes, so published ports (docker-compose.yml
 * publishes 80, 443 and 3478 on every address) exist only there and containers reach nothing
 * outside the machine. The daemon's --ip would bind them to 127.0.0.1 on the default bridge
 * only (libnetwork's bridge driver takes a user-defined network's binding address from its
 * host_binding_ipv4 option), and a crashed run's bridges vanish with the namespace instead of
 * shadowing the next run's routes. bootstrap.sh runs in the same namespace, as on the VPS.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { repoRoot } from "../docker-double/harness";

export const toolsDir = process.env.CONFORMANCE_TOOLS_DIR ?? path.join(repoRoot, ".cache/conformance-tools");
const toolsRoot = path.join(toolsDir, "root");
const run = promisify(execFile);

/** The engine's binaries first on PATH: dockerd finds containerd, runc and docker-proxy there. */
export const enginePath = [path.join(toolsRoot, "usr/sbin"), path.join(toolsRoot, "usr/bin"), process.env.PATH ?? ""].join(":");

export class Engine {
  readonly socket: string;
  readonly dataRoot: string;
  /** DOCKER_CONFIG: where the CLI finds the Compose plugin unpacked beside it. */
  readonly cliConfig: string;
  /** A directory holding only the docker CLI, for the bootstrap's PATH (the tools' bin has cloud-init too). */
  readonly cliBin: string;
  private daemon?: ChildProcess;

  /** The network namespace the daemon, its containers and the bootstrap share (ip netns). */
  readonly netns = `engine-${randomBytes(4).toString("hex")}`;

  private constructor(readonly dir: string) {
    this.socket = path.join(dir, "docker.sock");
    this.dataRoot = path.join(dir, "data-root");
    this.cliConfig = path.join(dir, "cli");
    this.cliBin = path.join(dir, "bin");
  }

  /** Starts a daemon on a new data root; throws with the reason (and dockerd's last log lines) when it cannot. */
  static async start(): Promise<Engine> {
    const missing = ["usr/sbin/dockerd", "usr/bin/containerd", "usr/sbin/runc", "usr/bin/docker", "usr/libexec/docker/cli-plugins/docker-compose"].filter((f) => !fs.existsSync(path.join(toolsRoot, f)));
    if (missing.length) throw new Error(`the engine's binaries are missing from ${toolsRoot} (${missing.join(", ")}): run scripts/conformance-tools.sh as root`);
    if (process.getuid?.() !== 0) throw new Error("the engine tests start dockerd, which needs root");
    const engine = new Engine(fs.mkdtempSync(path.join(os.tmpdir(), "engine-")));
    fs.mkdirSync(engine.cliConfig);
    fs.mkdirSync(engine.cliBin);
    fs.symlinkSync(path.join(toolsRoot, "usr/bin/docker"), path.join(engine.cliBin, "docker"));
    fs.writeFileSync(path.join(engine.cliConfig, "config.json"), JSON.stringify({ cliPluginsExtraDirs: [path.join(toolsRoot, "usr/libexec/docker/cli-plugins")] }));
    await run("ip", ["netns", "add", engine.netns]);
    await run("ip", ["-n", engine.netns, "link", "set", "lo", "up"]);
    await engine.startDaemon();
    return engine;
  }

  private async startDaemon(): Promise<void> {
    const logFile = path.join(this.dir, "dockerd.log");
    const args = [
      `--data-root=${this.dataRoot}`,
      `--exec-root=${path.join(this.dir, "exec")}`,
      `--pidfile=${path.join(this.dir, "dockerd.pid")}`,
      `--host=unix://${this.socket}`,
      "--iptables=false",
      "--ip6tables=false",
      "--ip-masq=false",
      "--bridge=none",
      "--default-address-pool=base=198.18.0.0/15,size=24",
      // Its own containerd namespaces, so nothing it runs meets another daemon's.
      `--containerd-namespace=engine-${path.basename(this.dir)}`,
      `--containerd-plugins-namespace=engine-${path.basename(this.dir)}-plugins`,
    ];
    const out = fs.openSync(logFile, "a");
    const [program, ...rest] = this.inNetwork([path.join(toolsRoot, "usr/sbin/dockerd"), ...args]);
    this.daemon = spawn(program, rest, { env: { PATH: enginePath }, stdio: ["ignore", out, out] });
    fs.closeSync(out);
    const deadline = Date.now() + 60_000;
    let lastError = "";
    while (Date.now() < deadline) {
      if (this.daemon.exitCode !== null) break;
      try {
        await this.docker(["version", "--format", "{{.Server.Version}}"]);
        return;
      } catch (e) {
        lastError = (e as Error).message;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    const tail = fs.readFileSync(logFile, "utf8").trim().split("\n").slice(-15).join("\n");
    await this.stop();
    throw new Error(`dockerd did not start (${this.daemon.exitCode !== null ? `exited with ${this.daemon.exitCode}` : lastError}); its log ends:\n${tail}`);
  }

  /** The environment a docker or compose call needs to reach this daemon. */
  get env(): Record<string, string> {
    return { PATH: enginePath, DOCKER_HOST: `unix://${this.socket}`, DOCKER_CONFIG: this.cliConfig };
  }

  async docker(args: string[], options: { input?: string; cwd?: string } = {}): Promise<string> {
    const child = run("docker", args, { env: { ...this.env, HOME: process.env.HOME ?? "/root" }, cwd: options.cwd, maxBuffer: 64 * 1024 * 1024 });
    if (options.input !== undefined) {
      child.child.stdin?.end(options.input);
    }
    const { stdout } = await child;
    return stdout;
  }

  /**
   * A command as it runs inside the engine's network namespace (what reaches the published
   * ports). nsenter enters the network namespace only and execs the command (its PID is the
   * command's); `ip netns exec` would also remount /sys, hiding the cgroup mounts dockerd needs.
   */
  inNetwork(command: string[]): string[] {
    return ["nsenter", `--net=/run/netns/${this.netns}`, "--", ...command];
  }

  /** Stops the daemon by its PID (SIGTERM, then SIGKILL) and removes its data root and network namespace. */
  async stop(): Promise<void> {
    const daemon = this.daemon;
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const exited = new Promise((resolve) => daemon.once("exit", resolve));
      daemon.kill("SIGTERM");
      const timer = setTimeout(() => daemon.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    }
    // The daemon leaves namespace files bind-mounted under its exec root; its bridges go with the network namespace.
    const mounts = fs.readFileSync("/proc/self/mounts", "utf8").split("\n").map((line) => line.split(" ")[1] ?? "").filter((m) => m.startsWith(`${this.dir}/`));
    for (const mount of mounts.sort((a, b) => b.length - a.length)) await run("umount", ["--lazy", mount]).catch(() => undefined);
    await run("ip", ["netns", "delete", this.netns]).catch(() => undefined);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
