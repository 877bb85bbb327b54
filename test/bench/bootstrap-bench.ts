/**
 * Benchmark of bootstrap.sh's own overhead: runs it in the docker double with per-service
 * health delays and compares the wall time with the critical path, computed from the step
 * graph (bootstrap.graph plus docker-compose.yml's depends_on) — not from the order the
 * script happens to run things in. Prints `bootstrap wall / critical path = R`.
 */
import { bifrostSource, Bifrost, canarySecrets } from "../docker-double/harness";
import { criticalPathMs } from "../bifrost/bootstrapGraph";

// Health delays of the eight services, in proportion to what they take on a small VPS
// (Authentik's migrations dominate).
const delaysMs: Record<string, number> = {
  traefik: 1000,
  "authentik-postgres": 2500,
  "authentik-server": 6000,
  "authentik-worker": 5000,
  "netbird-server": 2000,
  "netbird-dashboard": 1000,
  "netbird-proxy": 1500,
  "netbird-agent": 2000,
};

async function main(): Promise<void> {
  const critical = criticalPathMs(bifrostSource, delaysMs);
  const b = await new Bifrost({ secrets: canarySecrets({ optional: true }) }).start();
  try {
    b.double.configure({ delaysMs });
    const r = await b.run();
    if (r.code !== 0) throw new Error(`bootstrap failed:\n${r.stdout}\n${r.stderr}`);
    const started = [...b.double.containers.keys()].sort();
    console.log(`services started: ${started.length} (${started.join(", ")})`);
    console.log(`critical path ${(critical.ms / 1000).toFixed(2)}s: ${critical.path.join(" → ")}`);
    console.log(`wall ${(r.ms / 1000).toFixed(2)}s, ${b.double.calls.length} docker calls`);
    console.log(`bootstrap wall / critical path = ${(r.ms / critical.ms).toFixed(2)}`);
  } finally {
    await b.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
