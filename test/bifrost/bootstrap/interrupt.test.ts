import { describe, expect, it } from "vitest";
import { composeServices } from "../../../components/secrets/catalog";
import { Bifrost, canarySecrets } from "../../docker-double/harness";

/**
 * Paths differ between temp dirs, and NetBird mints random ids and tokens: those are compared
 * by what must hold (one owner, the state's PAT and tokens are NetBird's, one identity provider
 * with the current secret); everything else of the end state must match exactly.
 */
function normalised(b: Bifrost): unknown {
  const state = b.endState() as Record<string, unknown>;
  const containers = Object.fromEntries([...b.double.containers].map(([name, c]) => [name, { config: c.config, health: b.double.healthOf(name) }]));
  const { storeKeyFingerprint, postgresFingerprint, bootstrapState, netbirdStore, authentik, ...rest } = state;
  const netbird = (bootstrapState as Record<string, Record<string, string>>).netbird ?? {};
  const store = netbirdStore as ReturnType<Bifrost["double"]["netbird"]["store"]>;
  const { providers, applications } = authentik as { providers: Record<string, Record<string, unknown>>; applications: Record<string, Record<string, unknown>> };
  // Minted tokens are random: stand in their names wherever they went (the containers' env).
  const minted = (text: string) =>
    [["proxy_token", "<minted proxy token>"], ["setup_key", "<minted setup key>"]].reduce((t, [k, name]) => (netbird[k] ? t.replaceAll(netbird[k], name) : t), text);
  const withoutPk = (o: Record<string, Record<string, unknown>>) => Object.fromEntries(Object.entries(o).map(([k, { pk: _pk, provider: _p, ...v }]) => [k, v]));
  return JSON.parse(
    minted(JSON.stringify({
      ...rest,
      containers,
      hasFingerprints: [storeKeyFingerprint !== undefined, postgresFingerprint !== undefined],
      stateKeys: Object.keys(netbird).sort(),
      netbird: {
        owners: store.owner ? 1 : 0,
        patIsNetbirds: store.pats.some((p) => p.token === netbird.pat && p.user_id === store.owner?.user_id),
        proxyTokens: store.proxyTokens.length,
        setupKeys: store.setupKeys.length,
        identityProviders: store.identityProviders.map(({ id, client_secret, ...idp }) => ({ ...idp, idIsStates: id === netbird.idp_id, currentSecret: client_secret === b.secrets.NB_AUTHENTIK_CLIENT_SECRET })),
      },
      authentik: { providers: withoutPk(providers), applications: withoutPk(applications) },
    })).replaceAll(b.root, "<root>"),
  );
}

async function reference(secrets: Record<string, string>): Promise<{ state: unknown; calls: number }> {
  const b = await new Bifrost({ secrets }).start();
  try {
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    return { state: normalised(b), calls: b.double.calls.length };
  } finally {
    await b.stop();
  }
}

/** `brokenEnv`: the broken run's environment, e.g. a short deadline where the bootstrap waits out a failing probe. */
async function convergesAfter(secrets: Record<string, string>, expected: unknown, breakIt: (b: Bifrost) => void, label: string, brokenEnv: Record<string, string> = {}) {
  const b = await new Bifrost({ secrets }).start();
  try {
    breakIt(b);
    const broken = await b.run({ env: brokenEnv });
    expect(broken.code === 0 && broken.signal === null, `${label}: the injected failure did not stop the run`).toBe(false);
    b.double.configure({ killAtCall: undefined, unhealthy: [] });
    const fixed = await b.run();
    expect(fixed.code, `${label}: re-run failed\n${fixed.stderr}`).toBe(0);
    expect(normalised(b), label).toEqual(expected);
    const events = b.double.events.length;
    expect((await b.run()).code).toBe(0);
    expect(b.double.events.slice(events).filter((e) => ["create", "recreate", "restart"].includes(e.kind)), `${label}: a third run still changed something`).toEqual([]);
  } finally {
    await b.stop();
  }
}

describe("bootstrap.sh converges from any interruption", () => {
  const secrets = canarySecrets({ optional: true });

  it("killed (SIGKILL of the whole run) at every docker call k, then re-run", async () => {
    const { state, calls } = await reference(secrets);
    expect(calls).toBeGreaterThan(10);
    for (let k = 1; k <= calls; k++) {
      await convergesAfter(secrets, state, (b) => b.double.configure({ killAtCall: k }), `killed at call ${k}`);
    }
  }, 300_000);

  it("killed at every docker call k while the proxy token and setup key are minted through NetBird, then re-run", async () => {
    const sopsWithoutTokens = canarySecrets();
    const { state, calls } = await reference(sopsWithoutTokens);
    for (let k = 1; k <= calls; k++) {
      await convergesAfter(sopsWithoutTokens, state, (b) => b.double.configure({ killAtCall: k }), `minting, killed at call ${k}`);
    }
  }, 300_000);

  it("an interruption while NetBird's one-time /api/setup answer is in flight loses nothing: the call ends in its own session, the next run takes its answer", async () => {
    const b = await new Bifrost({ secrets }).start();
    try {
      let group = 0;
      // SIGKILL of the bootstrap's whole process group (as a hang-up or Ctrl-C reaches it) after
      // NetBird committed the owner and before its answer left: the window NetBird never repeats.
      b.double.netbird.afterSetupCommit = () => process.kill(-group, "SIGKILL");
      const broken = await b.run({ onStart: (pid) => (group = pid) });
      expect(broken.signal === "SIGKILL" || broken.code !== 0).toBe(true);
      b.double.netbird.afterSetupCommit = undefined;
      const fixed = await b.run();
      expect(fixed.code, fixed.stderr).toBe(0);
      expect(fixed.stdout).toContain("step netbird-setup: ok, owner created, PAT stored (recovered from an interrupted run)");
      expect(b.double.netbird.setupCalls).toBe(1);
      expect(b.state().netbird?.pat).toMatch(/^nbp_/);
    } finally {
      await b.stop();
    }
  });

  it("failing the health of each service in turn, then re-run", async () => {
    const { state } = await reference(secrets);
    for (const service of composeServices) {
      // A probe that keeps failing is waited out until the step's deadline (lib/compose.sh
      // start_services): a short one here, the failure is the point.
      await convergesAfter(secrets, state, (b) => b.double.configure({ unhealthy: [service] }), `${service} unhealthy`, { BIFROST_WAIT_TIMEOUT: "2" });
    }
  }, 300_000);
});
