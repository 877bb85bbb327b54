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

// What steps cost beyond their services' health, stated here and imposed on the double alike.
// `ak` management commands boot Django before they act: 2 s on this scale, where Authentik
// itself takes 6 s to be healthy (an estimate in proportion, not a measurement of Authentik).
// A first boot runs two: akadmin's password (authentik-admin) and the blueprint
// (authentik-blueprint); the token is only probed. NetBird's IdP registration is refused until
// auth.<domain> answers with a certificate: 5 refusals 0.2 s apart, 1 s.
const akCommandMs = 2000;
const idpRefusals = 5;
const apiRetryDelayS = 0.2;
const stepCostsMs: Record<string, number> = {
  "authentik-admin": akCommandMs,
  "authentik-blueprint": akCommandMs,
  "netbird-idp": idpRefusals * apiRetryDelayS * 1000,
};

async function main(): Promise<void> {
  const critical = criticalPathMs(bifrostSource, delaysMs, stepCostsMs);
  const b = await new Bifrost({ secrets: canarySecrets({ optional: true }) }).start();
  try {
    b.double.configure({ delaysMs, akCommandMs });
    b.double.netbird.issuerUnreachableCalls = idpRefusals;
    const r = await b.run({ env: { BIFROST_API_RETRY_DELAY: String(apiRetryDelayS) } });
    if (r.code !== 0) throw new Error(`bootstrap failed:\n${r.stdout}\n${r.stderr}`);
    const started = [...b.double.containers.keys()].sort();
    console.log(`services started: ${started.length} (${started.join(", ")})`);
    console.log(`critical path ${(critical.ms / 1000).toFixed(2)}s: ${critical.path.join(" → ")}`);
    console.log(`step costs: ${Object.entries(stepCostsMs).map(([step, ms]) => `${step} ${(ms / 1000).toFixed(1)}s`).join(", ")}`);
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
