/**
 * Benchmark of bootstrap.sh's own overhead: runs it in the docker double with per-service
 * health delays and compares the wall time with the critical path, the longest chain of
 * those delays through the bootstrap's dependency order (services of one step start together,
 * so a step costs its slowest service). Prints `bootstrap wall / critical path = R`.
 */
import { Bifrost, canarySecrets } from "../docker-double/harness";

// The order bootstrap.sh follows; each inner list starts together.
const chain: string[][] = [
  ["traefik"],
  ["authentik-postgres"],
  ["authentik-server", "authentik-worker"],
  ["netbird-server"],
  ["netbird-dashboard"],
  ["netbird-proxy"],
  ["netbird-agent"],
];

const delaysMs: Record<string, number> = {
  traefik: 400,
  "authentik-postgres": 600,
  "authentik-server": 1200,
  "authentik-worker": 900,
  "netbird-server": 700,
  "netbird-dashboard": 400,
  "netbird-proxy": 400,
  "netbird-agent": 500,
};

async function main(): Promise<void> {
  const criticalMs = chain.reduce((sum, step) => sum + Math.max(...step.map((s) => delaysMs[s])), 0);
  const b = await new Bifrost({ secrets: canarySecrets({ optional: true }) }).start();
  try {
    b.double.configure({ delaysMs });
    const r = await b.run();
    if (r.code !== 0) throw new Error(`bootstrap failed:\n${r.stdout}\n${r.stderr}`);
    console.log(`health delays ${(Object.values(delaysMs).reduce((a, c) => a + c, 0) / 1000).toFixed(1)}s in all, critical path ${(criticalMs / 1000).toFixed(2)}s, wall ${(r.ms / 1000).toFixed(2)}s, ${b.double.calls.length} docker calls`);
    console.log(`bootstrap wall / critical path = ${(r.ms / criticalMs).toFixed(2)}`);
  } finally {
    await b.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
