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
    try {
      const r = await b.run();
      if (r.code !== 0) throw new Error(`bootstrap failed:\n${r.stdout}\n${r.stderr}`);
      console.log(r.stdout.trim());
      console.log(`PostgreSQL start measured: ${(postgresStartMs / 1000).toFixed(2)}s`);
      console.log(`health delays: ${Object.entries(delaysMs).map(([s, ms]) => `${s} ${(ms / 1000).toFixed(1)}s`).join(", ")}`);
      console.log(`critical path ${(critical.ms / 1000).toFixed(2)}s: ${critical.path.join(" → ")}`);
      console.log(`wall ${(r.ms / 1000).toFixed(2)}s; the daemon's own overhead: ${((r.ms - critical.ms) / 1000).toFixed(2)}s`);
      console.log(`engine bootstrap wall / critical path = ${(r.ms / critical.ms).toFixed(2)}`);
    } finally {
      await b.stop();
    }
  } finally {
    await engine.stop();
  }
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
