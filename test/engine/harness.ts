/**
 * bootstrap.sh on a real Docker Engine: the shipped bundle byte for byte, with only
 * DOCKER_HOST (the test daemon), the data root, and COMPOSE_FILE adding the one capability
 * override of compose.engine-override.yml. The APIs are the stand-ins' own, on the loopback
 * ports docker-compose.yml publishes (bootstrap.sh's defaults).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BifrostHost, type BifrostOptions } from "../docker-double/harness";
import type { Engine } from "./daemon";
import { composeImages, digestOverride } from "./images";

const override = path.join(__dirname, "compose.engine-override.yml");

export interface ContainerState {
  id: string;
  health: string;
  running: boolean;
  /** Changes on every start, a restart included (the id changes only when Compose recreates). */
  startedAt: string;
}

export class EngineBifrost extends BifrostHost {
  constructor(
    readonly engine: Engine,
    options: BifrostOptions = {},
  ) {
    super(options);
  }

  protected dockerEnv(): { path: string[]; env: Record<string, string> } {
    return {
      path: [this.engine.cliBin],
      env: {
        DOCKER_HOST: this.engine.env.DOCKER_HOST,
        DOCKER_CONFIG: this.engine.env.DOCKER_CONFIG,
        COMPOSE_FILE: [path.join(this.dir, "docker-compose.yml"), override, ...this.digestOverrideFile()].join(":"),
        // Health is observed at the compose file's own intervals (5-10 s), on a 2-core machine.
        BIFROST_WAIT_TIMEOUT: "180",
      },
    };
  }

  /** The local tags of digest-pinned images (images.ts digestOverride), written beside the bundle; none when nothing is pinned. */
  private digestOverrideFile(): string[] {
    const text = digestOverride(composeImages());
    if (text === undefined) return [];
    const file = path.join(this.root, "compose.digests-override.yml");
    fs.writeFileSync(file, text);
    return [file];
  }

  /** bootstrap.sh runs in the engine's network namespace, where the published ports are: the VPS. */
  protected where(command: string[]): string[] {
    return this.engine.inNetwork(command);
  }

  /** The project's containers by service: id, health and whether they run. */
  async containers(): Promise<Record<string, ContainerState>> {
    const ids = (await this.engine.docker(["ps", "--all", "--quiet", "--filter", "label=com.docker.compose.project=bifrost"])).split("\n").filter(Boolean);
    if (!ids.length) return {};
    const inspected = JSON.parse(await this.engine.docker(["inspect", ...ids])) as { Id: string; Config: { Labels: Record<string, string> }; State: { Running: boolean; StartedAt: string; Health?: { Status: string } } }[];
    return Object.fromEntries(
      inspected.map((c) => [c.Config.Labels["com.docker.compose.service"], { id: c.Id, health: c.State.Health?.Status ?? "none", running: c.State.Running, startedAt: c.State.StartedAt }]),
    );
  }

  /** The API calls the stand-ins of netbird-server and authentik-server answered since `since` (RFC 3339), as "METHOD /path STATUS". */
  async apiCalls(since: string): Promise<string[]> {
    const calls: string[] = [];
    for (const service of ["netbird-server", "authentik-server"]) {
      const log = await this.engine.docker(["logs", "--since", since, service]).catch(() => "");
      for (const m of log.matchAll(/^\[standin\] api (.*)$/gm)) calls.push(`${service}: ${m[1]}`);
    }
    return calls;
  }

  /** The last lines a service's container logged, for a failing test's message. */
  async logs(service: string, lines = 30): Promise<string> {
    return this.engine.docker(["logs", "--tail", String(lines), service]).catch((e) => String(e));
  }

  /** Stops and removes the project's containers and network, leaving the data root (a server that goes away). */
  async down(): Promise<void> {
    const ids = (await this.engine.docker(["ps", "--all", "--quiet", "--filter", "label=com.docker.compose.project=bifrost"])).split("\n").filter(Boolean);
    if (ids.length) await this.engine.docker(["stop", ...ids]);
    if (ids.length) await this.engine.docker(["rm", "--force", ...ids]);
    await this.engine.docker(["network", "rm", "bifrost"]).catch(() => undefined);
    await this.engine.docker(["network", "rm", "bifrost-db"]).catch(() => undefined);
  }

  /**
   * Kills what a killed bootstrap left running: a one-time NetBird call runs in a session of its
   * own so that it outlives an interruption and its answer is kept (mint_once), and it retries
   * for up to WAIT_TIMEOUT. On the VPS the next run picks its answer up; between two test edges
   * in one network namespace it would answer the next edge's netbird-server first.
   */
  killLeftovers(): void {
    const mark = `BIFROST_DIR=${this.dir}\0`;
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      let environ = "";
      try {
        environ = fs.readFileSync(`/proc/${pid}/environ`, "latin1");
      } catch {
        continue;
      }
      if (environ.includes(mark)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.killLeftovers();
    await this.down();
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
