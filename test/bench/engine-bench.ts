/**
 * Benchmark of a first boot on the real Docker Engine (test/engine/): bootstrap.sh with real
 * Compose, a real PostgreSQL and the stand-ins, compared with the critical path computed from
 * the step graph (bootstrap.graph plus docker-compose.yml's depends_on) and stated costs:
 *   - a service is healthy at the first passing probe after its start-up cost: probes run
 *     every `start_interval` while the container is starting within `start_period`, else every
 *     `interval` (moby daemon/health.go monitor getInterval), so its delay is its start-up
 *     cost rounded up to its probe period;
 *   - start-up costs are the stand-ins' STANDIN_START_MS (test/engine/images.ts), and for the
 *     real PostgreSQL the one this bench measures (initdb, CREATE DATABASE, start);
 *   - `ak` commands cost akCommandMs each (Django's boot, as the docker-double bench states it).
 * What is left over is the real daemon's own overhead (creating, starting and probing
 * containers, docker exec): reported, not hidden. Prints `engine bootstrap wall / critical path = R`.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { bifrostSource, canarySecrets } from "../docker-double/harness";
import { criticalPathMs } from "../bifrost/bootstrapGraph";
import { Engine } from "../engine/daemon";
import { EngineBifrost } from "../engine/harness";
import { akCommandMs, composeImages, provideImages, statedStartMs } from "../engine/images";

type Healthcheck = { interval?: string; start_interval?: string; start_period?: string };

const seconds = (duration: string | undefined, fallback: number) => (duration ? Number(/^(\d+(?:\.\d+)?)s$/.exec(duration)?.[1] ?? NaN) * 1000 : fallback);

/** A service's health delay: its start-up cost rounded up to the period Docker probes it at. */
function healthDelayMs(check: Healthcheck, startMs: number): number {
  const period = check.start_interval ? seconds(check.start_interval, 5000) : seconds(check.interval, 30_000);
  return Math.max(1, Math.ceil(startMs / period)) * period;
}

async function main(): Promise<void> {
  const engine = await Engine.start();
  try {
    await provideImages(engine);
    const postgresStartMs = await measurePostgresStart(engine);
    const compose = parseYaml(fs.readFileSync(path.join(bifrostSource, "docker-compose.yml"), "utf8")) as { services: Record<string, { healthcheck: Healthcheck }> };
    const delaysMs = Object.fromEntries(
      Object.entries(compose.services).map(([service, s]) => [service, healthDelayMs(s.healthcheck, service === "authentik-postgres" ? postgresStartMs : statedStartMs(service))]),
    );
    const stepCostsMs = { "authentik-admin": akCommandMs, "authentik-blueprint": akCommandMs };
    const critical = criticalPathMs(bifrostSource, delaysMs, stepCostsMs);
    const b = new EngineBifrost(engine, { secrets: canarySecrets() });
    const events = watchEvents(engine);
    try {
      const r = await b.run();
      const daemon = daemonTimings(events.stop());
      if (r.code !== 0) throw new Error(`bootstrap failed:\n${r.stdout}\n${r.stderr}`);
      console.log(r.stdout.trim());
      console.log(`PostgreSQL start measured: ${(postgresStartMs / 1000).toFixed(2)}s`);
      console.log(`health delays: ${Object.entries(delaysMs).map(([s, ms]) => `${s} ${(ms / 1000).toFixed(1)}s`).join(", ")}`);
      console.log(`critical path ${(critical.ms / 1000).toFixed(2)}s: ${critical.path.join(" → ")}`);
      console.log(`wall ${(r.ms / 1000).toFixed(2)}s; the daemon's own overhead: ${((r.ms - critical.ms) / 1000).toFixed(2)}s`);
      console.log(`the daemon, from its events: container create → start median ${daemon.start} (${daemon.starts} containers); the bootstrap's docker exec median ${daemon.exec} (${daemon.execs}); ${daemon.probes} health probe execs`);
      console.log(`engine bootstrap wall / critical path = ${(r.ms / critical.ms).toFixed(2)}`);
    } finally {
      await b.stop();
    }
  } finally {
    await engine.stop();
  }
}

interface DaemonEvent {
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  timeNano: number;
}

/** The daemon's event stream (`docker events`, JSON lines) until stopped. */
function watchEvents(engine: Engine): { stop: () => DaemonEvent[] } {
  const child = spawn(path.join(engine.cliBin, "docker"), ["events", "--format", "{{json .}}"], { env: { ...engine.env, HOME: process.env.HOME ?? "/root" } });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  return {
    stop: () => {
      child.kill();
      return out
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as DaemonEvent);
    },
  };
}

/**
 * What the daemon itself took: each container from `create` to `start` (the network
 * endpoints are joined in between) and each docker exec from `exec_create` to `exec_die`,
 * the health probes (the compose file's healthcheck commands) counted apart.
 */
function daemonTimings(events: DaemonEvent[]): { start: string; starts: number; exec: string; execs: number; probes: number } {
  const median = (xs: number[]) => (xs.length ? `${([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! / 1e9).toFixed(2)}s` : "-");
  const created = new Map<string, number>();
  const starts: number[] = [];
  const execCreated = new Map<string, { at: number; command: string }>();
  const execs: number[] = [];
  let probes = 0;
  const probeCommands = /^(traefik healthcheck|pg_isready|ak healthcheck|bash -c :> \/dev\/tcp|wget -q --spider|\/busybox\/wget|netbird status --check)/;
  for (const e of events) {
    const [action, command = ""] = e.Action.split(/: (.*)/s);
    if (action === "create") created.set(e.Actor.ID, e.timeNano);
    if (action === "start" && created.has(e.Actor.ID)) starts.push(e.timeNano - created.get(e.Actor.ID)!);
    if (action === "exec_create") execCreated.set(e.Actor.Attributes.execID ?? "", { at: e.timeNano, command });
    if (action === "exec_die") {
      const started = execCreated.get(e.Actor.Attributes.execID ?? "");
      if (!started) continue;
      if (probeCommands.test(started.command)) probes += 1;
      else execs.push(e.timeNano - started.at);
    }
  }
  return { start: median(starts), starts: starts.length, exec: median(execs), execs: execs.length, probes };
}

/** The real PostgreSQL's start-up on an empty data directory, as its container runs it: from `docker run` to pg_isready. */
async function measurePostgresStart(engine: Engine): Promise<number> {
  const image = composeImages()["authentik-postgres"];
  const started = Date.now();
  const id = (await engine.docker(["run", "--detach", "--env", "POSTGRES_PASSWORD=bench-only-password", "--env", "POSTGRES_USER=authentik", "--env", "POSTGRES_DB=authentik", image])).trim();
  try {
    for (;;) {
      const ready = await engine
        .docker(["exec", id, "pg_isready", "--dbname=authentik", "--username=authentik"])
        .then(() => true)
        .catch(() => false);
      if (ready) return Date.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await engine.docker(["rm", "--force", id]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
