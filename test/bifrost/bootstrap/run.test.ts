import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { writeNetbirdStore } from "../../docker-double/apis";
import { Bifrost, canarySecrets, composeStep } from "../../docker-double/harness";
import { bifrostPerTest } from "../../docker-double/perTest";

const bifrost = bifrostPerTest();

/**
 * Failure output the bootstrap kept on the VPS (lib/state.sh keep_output) instead of printing
 * it into what Pulumi records: the file its stderr names after `label`, read back, after
 * checking it is a 0600 file under the data root.
 */
function keptOutput(b: Bifrost, stderr: string, label: string): string {
  const at = stderr.indexOf(label);
  expect(at, `stderr names no file after "${label}"`).toBeGreaterThan(-1);
  const file = stderr.slice(at + label.length).split("\n")[0].trim();
  expect(path.dirname(file)).toBe(path.join(b.data, "bootstrap-logs"));
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  return fs.readFileSync(file, "utf8");
}


function expectNoCanary(b: Bifrost, ...outputs: string[]): void {
  const values = Object.values(b.secrets).filter((v): v is string => !!v);
  expect(values.length).toBeGreaterThan(0);
  for (const output of outputs) for (const value of values) expect(output).not.toContain(value);
}

/** The HTTP status Authentik's API answers a key with (GET /api/v3/core/users/me/ on the double). */
/** Resolves once `ready()` holds; fails if the run ends first (it would never hold then). */
async function whileRunning(run: Promise<unknown>, ready: () => boolean): Promise<void> {
  let ended = false;
  const end = () => (ended = true);
  run.then(end, end);
  while (!ready()) {
    if (ended) throw new Error("the bootstrap ended before the awaited call");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function authentikStatus(b: Bifrost, key: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${b.double.authentik.api.port}/api/v3/core/users/me/`, { headers: { Authorization: `Bearer ${key}` } });
  return res.status;
}

describe("bootstrap.sh in the docker double", () => {
  it("follows the step graph: independent services start together, Authentik and NetBird meet at the IdP registration", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    // Long enough that a service started in sequence would show: every first-wave `up` is
    // issued before the first of them can be healthy.
    b.double.configure({ delaysMs: { traefik: 300, "authentik-postgres": 300, "netbird-server": 300, "netbird-dashboard": 300 } });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.calls[0]).toBe("compose version");
    expect(composeStep(b.double.calls[1])).toBe("pull");
    const at = (call: string) => {
      const i = b.double.calls.findIndex((c) => composeStep(c) === call || c === call);
      expect(i, call).toBeGreaterThan(-1);
      return i;
    };
    const firstWave = ["up traefik", "up authentik-postgres", "up netbird-server", "up netbird-dashboard"].map(at);
    const psql = b.double.calls.findIndex((c) => c.startsWith("exec -i authentik-postgres psql"));
    for (const i of firstWave) expect(i).toBeLessThan(psql);
    // The Authentik branch, in order.
    expect(psql).toBeLessThan(at("up authentik-server authentik-worker"));
    expect(at("up authentik-server authentik-worker")).toBeLessThan(at("exec authentik-server ak apply_blueprint /blueprints/custom/netbird.yaml"));
    // First boot: the key answers on the token Authentik made itself; no `ak shell` for it.
    expect(r.stdout).toContain("step authentik-token: ok, key answers (");
    // Both branches before the IdP registration, which comes before proxy and agent.
    const api = b.double.netbird.api.calls;
    expect(api.indexOf("POST /api/setup")).toBeGreaterThan(-1);
    expect(api.indexOf("POST /api/setup")).toBeLessThan(api.indexOf("POST /api/identity-providers"));
    expect(b.double.authentik.api.calls[0]).toBe("GET /api/v3/core/users/me/");
    expect(b.double.authentik.api.calls).toContain("GET /api/v3/providers/oauth2/?client_id=netbird");
    const lines = r.stdout.split("\n");
    const line = (step: string) => lines.findIndex((l) => l.startsWith(`[bootstrap] step ${step}: ok`));
    expect(line("netbird-idp")).toBeGreaterThan(line("authentik-blueprint"));
    expect(line("netbird-idp")).toBeGreaterThan(line("netbird-setup"));
    // Proxy and agent wait for their tokens, not for the IdP registration (they consume nothing from it).
    for (const s of ["netbird-proxy", "netbird-agent"]) expect(line(s)).toBeGreaterThan(line("netbird-tokens"));
    // Every image is pulled before the first container starts.
    expect(b.double.eventsOf("pull").map((e) => e.service).sort()).toEqual(Object.keys(parseYaml(b.read("docker-compose.yml")).services).sort());
    expect(Object.fromEntries(b.double.tokens)).toEqual({ "authentik-bootstrap-token": { user: "akadmin", key: b.secrets.AUTHENTIK_TOKEN, intent: "api", expiring: false } });
    for (const name of b.double.containers.keys()) expect(b.double.healthOf(name)).toBe("healthy");
    // One log line per step of the graph (and the pre-flight), each with its duration.
    const stepLines = lines.filter((l) => l.startsWith("[bootstrap] step "));
    expect(stepLines.length).toBe(1 + b.read("bootstrap.graph").split("\n").filter((l) => l.startsWith("step ")).length);
    for (const l of stepLines) expect(l).toMatch(/: ok.*\(\d+\.\d\ds\)$/);
    expect(r.stderr).not.toMatch(/variable is not set/);
    expectNoCanary(b, r.stdout, r.stderr);
  });

  it("converges NetBird and Authentik: provider and application from the blueprint, NetBird set up once, Authentik registered once", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    const domain = b.settings.domain;
    expect(b.double.authentik.providers.get("netbird")).toMatchObject({
      client_type: "confidential",
      client_id: "netbird",
      client_secret: b.secrets.NB_AUTHENTIK_CLIENT_SECRET,
      redirect_uris: [{ matching_mode: "strict", url: `https://netbird.${domain}/oauth2/callback` }],
    });
    expect(b.double.authentik.applications.get("netbird")?.provider).toBe(b.double.authentik.providers.get("netbird")?.pk);
    // Only the members of core:netbirdUsersGroup get from Authentik to NetBird; without a
    // binding every Authentik user (a GitHub login included) would.
    expect(b.double.authentik.applicationGroups("netbird")).toEqual(["netbird-users"]);
    expect(b.double.authentik.flowReputationBindings("default-authentication-flow")).toEqual([{ policy: "homelab-core login reputation", threshold: -10, negate: true }]);
    // Administrators get the stage that makes them set up a second factor; everyone else the
    // login flow's own optional one. Both decided when reached, with the user known.
    const mfa = b.double.authentik.flowMfaStages("default-authentication-flow");
    expect(mfa.map(({ configurationStages, ...rest }) => ({ ...rest, configurationStages: configurationStages.length }))).toEqual([
      { stage: "default-authentication-mfa-validation", order: 30, reEvaluated: true, notConfiguredAction: "skip", configurationStages: 0, policies: [{ policy: "homelab-core administrators", negate: true }] },
      { stage: "homelab-core-admin-mfa", order: 31, reEvaluated: true, notConfiguredAction: "configure", configurationStages: 2, policies: [{ policy: "homelab-core administrators", negate: false }] },
    ]);
    // No GitHub login here (no client id): nothing is bound to the source flows.
    expect(b.double.authentik.flowExpressionPolicies("default-source-enrollment")).toEqual([]);
    const store = b.double.netbird.store();
    expect(b.double.netbird.setupCalls).toBe(1);
    expect(store.owner?.email).toBe("owner@example.test");
    expect(store.identityProviders).toEqual([
      expect.objectContaining({ type: "authentik", issuer: `https://auth.${domain}/application/o/netbird/`, client_id: "netbird", client_secret: b.secrets.NB_AUTHENTIK_CLIENT_SECRET }),
    ]);
    const state = b.state();
    expect(state.netbird.idp_id).toBe(store.identityProviders[0].id);
    expect(store.pats.map((p) => p.token)).toContain(state.netbird.pat);
    // The state file is the bootstrap's, on the data root, readable by root only.
    expect(fs.statSync(path.join(b.data, "bootstrap-state.json")).mode & 0o777).toBe(0o600);
    expect(r.stdout).toContain("step netbird-setup: ok, owner created, PAT stored");
    expect(r.stdout).toContain("step netbird-idp: ok, registered");
    expectNoCanary(b, r.stdout, r.stderr, JSON.stringify(b.double.calls), JSON.stringify(b.double.netbird.api.calls));
    for (const value of [state.netbird.pat]) expect(r.stdout + r.stderr).not.toContain(value);
  });

  it("mints a proxy token through NetBird when SOPS has none, and keeps it", async () => {
    const b = await bifrost();
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("step netbird-tokens: ok, proxy token minted");
    const { proxy_token } = b.state().netbird;
    expect(proxy_token).toMatch(/^nbx_[A-Za-z0-9]{36}$/);
    // It reaches its container through Compose's environment, never through a file of Pulumi's.
    expect(b.double.containers.get("netbird-proxy")?.config.environment.NB_PROXY_TOKEN).toBe(proxy_token);
    expect(b.read(".secrets.env")).not.toContain(proxy_token);
    expect(r.stdout + r.stderr).not.toContain(proxy_token);
    const events = b.double.events.length;
    const again = await b.run();
    expect(again.stdout).toContain("step netbird-tokens: ok, proxy token minted before, valid");
    expect(b.double.netbird.store().proxyTokens).toHaveLength(1);
    expect(b.double.events.slice(events).filter((e) => ["create", "recreate", "restart"].includes(e.kind))).toEqual([]);
  });

  it("the minted proxy token expires after a year; a run in its last 30 days mints the next and revokes the old one once the proxy uses the new (issue 30)", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const [first] = b.double.netbird.store().proxyTokens;
    const year = 365 * 86_400_000;
    // A year from the mint, which lies somewhere in the run just ended (ten minutes of slack
    // for a slow machine); the state file's record of it agrees with NetBird's to the minute.
    expect(first.expiresAt! - Date.now()).toBeGreaterThan(year - 600_000);
    expect(first.expiresAt! - Date.now()).toBeLessThanOrEqual(year);
    expect(Math.abs(Number(b.state().netbird.proxy_token_expires) * 1000 - first.expiresAt!)).toBeLessThan(60_000);
    // Twenty days before the end of that year.
    const state = b.state();
    state.netbird.proxy_token_expires = String(Math.floor(Date.now() / 1000) + 20 * 86400);
    fs.writeFileSync(path.join(b.data, "bootstrap-state.json"), JSON.stringify(state));
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("step netbird-tokens: ok, proxy token renewed, valid 365 days");
    expect(r.stdout).toMatch(/step netbird-proxy: ok, 1 replaced proxy token\(s\) revoked/);
    const tokens = b.double.netbird.store().proxyTokens;
    expect(tokens.map((t) => t.revoked)).toEqual([true, false]);
    expect(b.double.containers.get("netbird-proxy")?.config.environment.NB_PROXY_TOKEN).toBe(tokens[1].token);
    expect(b.state().netbird.proxy_token).toBe(tokens[1].token);
    expect(r.stdout + r.stderr).not.toContain(tokens[1].token);
  });

  it("an edge whose minted proxy token never expires gets one that does, and the old one is revoked (issue 30)", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    // As bootstraps before this left it: expires_in 0 and no expiry in the state file.
    const store = b.double.netbird.store();
    delete store.proxyTokens[0].expiresAt;
    writeNetbirdStore(path.join(b.data, "netbird"), store);
    const state = b.state();
    delete state.netbird.proxy_token_expires;
    delete state.netbird.proxy_token_id;
    fs.writeFileSync(path.join(b.data, "bootstrap-state.json"), JSON.stringify(state));
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("proxy token renewed");
    const tokens = b.double.netbird.store().proxyTokens;
    expect(tokens.map((t) => [t.revoked, t.expiresAt === undefined])).toEqual([
      [true, true],
      [false, false],
    ]);
  });

  it("a SOPS token wins over a minted one, and taking it out falls back to the minted one", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const minted = b.state().netbird.proxy_token;
    const fromSops = canarySecrets({ optional: true }).NB_PROXY_TOKEN!;
    b.rotate("NB_PROXY_TOKEN", fromSops);
    let events = b.double.events.length;
    const withSops = await b.run();
    expect(withSops.code, withSops.stderr).toBe(0);
    expect(withSops.stdout).toContain("proxy token from SOPS");
    expect(b.double.containers.get("netbird-proxy")?.config.environment.NB_PROXY_TOKEN).toBe(fromSops);
    expect(b.double.events.slice(events).filter((e) => e.kind === "recreate").map((e) => e.service)).toEqual(["netbird-proxy"]);
    const { NB_PROXY_TOKEN: _removed, ...rest } = b.secrets;
    b.secrets = rest;
    b.writeEnvFiles();
    events = b.double.events.length;
    const without = await b.run();
    expect(without.code, without.stderr).toBe(0);
    expect(b.double.containers.get("netbird-proxy")?.config.environment.NB_PROXY_TOKEN).toBe(minted);
    expect(b.double.events.slice(events).filter((e) => e.kind === "recreate").map((e) => e.service)).toEqual(["netbird-proxy"]);
  });

  it("a new server on the old volume changes nothing and never calls /api/setup again", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    expect((await b.run()).code).toBe(0);
    const before = { state: b.state(), store: b.double.netbird.store() };
    const fresh = await bifrost({ secrets: b.secrets, dataFrom: b });
    const r = await fresh.run();
    expect(r.code, r.stderr).toBe(0);
    expect(fresh.double.netbird.setupCalls).toBe(0);
    expect(fresh.double.netbird.api.calls).not.toContain("POST /api/setup");
    expect({ state: fresh.state(), store: fresh.double.netbird.store() }).toEqual(before);
    expect(r.stdout).toContain("step netbird-setup: ok, set up before, PAT valid");
    expect(r.stdout).toContain("step netbird-idp: ok, registered, unchanged");
  });

  it("renews NetBird's PAT in its last 30 days; the new one authenticates", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const statePath = path.join(b.data, "bootstrap-state.json");
    const state = b.state();
    const old = state.netbird.pat;
    // 340 days on: NetBird's clock and the recorded expiry agree that 25 days are left.
    b.double.netbird.clockOffsetDays = 340;
    fs.writeFileSync(statePath, JSON.stringify({ ...state, netbird: { ...state.netbird, pat_expires: String(Math.floor(Date.now() / 1000) + 25 * 86400) } }));
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("step netbird-setup: ok, set up before, PAT renewed, 1 replaced PAT(s) revoked");
    expect(b.state().netbird.pat).not.toBe(old);
    expect(b.double.netbird.api.calls.filter((c) => c.startsWith("POST /api/users/"))).toHaveLength(1);
  });

  it("a renewal revokes the PAT it replaces; a PAT the owner made under another name stays", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const state = b.state();
    const setupPat = state.netbird.pat;
    const api = `http://127.0.0.1:${b.double.netbird.api.port}`;
    const asOwner = (token: string, method = "GET", body?: object) =>
      fetch(`${api}/api/users/${state.netbird.user_id}/tokens`, { method, headers: { Authorization: `Token ${token}`, "Content-Type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
    const own = (await (await asOwner(setupPat, "POST", { name: "operator-scripts", expires_in: 365 })).json()) as { plain_token: string };
    b.double.netbird.clockOffsetDays = 340;
    const statePath = path.join(b.data, "bootstrap-state.json");
    fs.writeFileSync(statePath, JSON.stringify({ ...state, netbird: { ...state.netbird, pat_expires: String(Math.floor(Date.now() / 1000) + 25 * 86400) } }));
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect((await asOwner(setupPat)).status).toBe(401);
    expect((await asOwner(b.state().netbird.pat)).status).toBe(200);
    const left = (await (await asOwner(b.state().netbird.pat)).json()) as { name: string }[];
    expect(left.map((t) => t.name).sort()).toEqual(["bifrost-bootstrap", "operator-scripts"]);
    expect((await asOwner(own.plain_token)).status).toBe(200);
    // Nothing more to revoke on the next pass: it reads, writes nothing.
    const since = b.double.netbird.api.calls.length;
    expect((await b.run()).code).toBe(0);
    expect(b.double.netbird.api.calls.slice(since).filter((c) => /^(POST|PUT|DELETE) \/api\/users\/[^/]+\/tokens/.test(c))).toEqual([]);
  });

  it("a PAT that expired while nothing ran: a clear way out instead of a failed call", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const state = b.state();
    b.double.netbird.clockOffsetDays = 400;
    fs.writeFileSync(path.join(b.data, "bootstrap-state.json"), JSON.stringify({ ...state, netbird: { ...state.netbird, pat_expires: String(Math.floor(Date.now() / 1000) - 35 * 86400) } }));
    const r = await b.run();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/NetBird's PAT in .*bootstrap-state\.json expired/);
    expect(r.stderr).toContain("create a personal access token");
    expect(r.stderr).not.toContain(state.netbird.pat);
  });

  it("an interruption after NetBird answered /api/setup loses nothing: the recorded answer is picked up, setup is not called again", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    expect((await b.run()).code).toBe(0);
    const state = b.state();
    // As the run leaves it when killed after curl wrote NetBird's answer, before the state file had the PAT.
    const { pat, user_id } = state.netbird;
    fs.writeFileSync(path.join(b.data, ".minted-setup.json"), JSON.stringify({ user_id, email: "owner@example.test", personal_access_token: pat }), { mode: 0o600 });
    const { pat: _p, user_id: _u, pat_expires: _e, ...rest } = state.netbird;
    fs.writeFileSync(path.join(b.data, "bootstrap-state.json"), JSON.stringify({ ...state, netbird: rest }));
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("step netbird-setup: ok, owner created, PAT stored (recovered from an interrupted run)");
    expect(b.double.netbird.setupCalls).toBe(1);
    expect(b.state().netbird.pat).toBe(pat);
    expect(fs.existsSync(path.join(b.data, ".minted-setup.json"))).toBe(false);
  });

  it("an owner without a stored PAT or a recorded answer stops with what to do, and changes nothing", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    expect((await b.run()).code).toBe(0);
    const state = b.state();
    const { pat: _p, ...rest } = state.netbird;
    fs.writeFileSync(path.join(b.data, "bootstrap-state.json"), JSON.stringify({ ...state, netbird: rest }));
    const r = await b.run();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("NetBird already has an owner but");
    expect(r.stderr).toContain("Create a personal access token for the owner in NetBird's dashboard");
    expect(b.double.netbird.setupCalls).toBe(1);
  });

  it("a rotated OAuth2 client secret reaches both sides: Authentik by the blueprint, NetBird by an update of the same IdP", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    expect((await b.run()).code).toBe(0);
    const idp = b.double.netbird.store().identityProviders[0];
    const rotated = "rotatedClientSecret0123456789abcdefABCDEF0123456789abcdefABCDEF01";
    b.rotate("NB_AUTHENTIK_CLIENT_SECRET", rotated);
    const events = b.double.events.length;
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.authentik.providers.get("netbird")?.client_secret).toBe(rotated);
    expect(b.double.netbird.store().identityProviders).toEqual([{ ...idp, client_secret: rotated }]);
    expect(b.double.netbird.api.calls).toContain(`PUT /api/identity-providers/${idp.id}`);
    expect(r.stdout).toContain("step netbird-idp: ok, updated");
    expect(b.double.events.slice(events).filter((e) => ["create", "recreate", "restart"].includes(e.kind)).map((e) => e.service)).toEqual(["authentik-server", "authentik-worker"]);
    expect(r.stdout + r.stderr).not.toContain(rotated);
  });

  it("retries the IdP registration while NetBird cannot reach Authentik's issuer yet", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    b.double.netbird.issuerUnreachableCalls = 3;
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.netbird.api.calls.filter((c) => c === "POST /api/identity-providers")).toHaveLength(4);
    expect(b.double.netbird.store().identityProviders).toHaveLength(1);
  });

  it("gives up on the IdP registration after the timeout with the last error; proxy and agent, which do not need it, still start", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    b.double.netbird.issuerUnreachableCalls = Infinity;
    // Long enough for the proxy's and the agent's own steps (tokens; groups) to end before the
    // registration gives up: after a failure the bootstrap starts nothing new.
    const r = await b.run({ env: { BIFROST_WAIT_TIMEOUT: "5" } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("last error: curl: (22) The requested URL returned error: 422");
    expect(r.stderr).toMatch(/registering Authentik in NetBird's identity providers did not succeed within 5s/);
    expect(r.stderr).toContain("step netbird-idp: FAILED");
    expect(b.double.netbird.store().identityProviders).toEqual([]);
    expect(b.double.containers.has("netbird-proxy")).toBe(true);
    expect(b.double.containers.has("netbird-agent")).toBe(true);
  });

  it("re-runs on a healthy stack without changing anything", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const template = b.read("netbird/config.yaml.tmpl");
    const first = b.endState();
    const events = b.double.events.length;
    const calls = b.double.calls.length;
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.endState()).toEqual(first);
    expect(b.read("netbird/config.yaml.tmpl")).toBe(template);
    expect(fs.readFileSync(path.join(b.dir, "netbird/config.yaml.tmpl"), "utf8")).toBe(fs.readFileSync(path.join(__dirname, "../../../cloud/bifrost/netbird/config.yaml.tmpl"), "utf8"));
    // Each run pulls, re-reads the minted token and re-applies the blueprint; nothing else happens.
    expect(b.double.events.slice(events).filter((e) => !["pull", "blueprint"].includes(e.kind))).toEqual([]);
    expect(b.double.calls.slice(calls).some((c) => c.startsWith("exec authentik-server ak shell"))).toBe(false);
    expect(b.double.netbird.setupCalls).toBe(1);
    expect(fs.statSync(b.netbirdConfigPath).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(b.dir, ".secrets.env")).mode & 0o777).toBe(0o600);
  });

  it("follows a rotated AUTHENTIK_TOKEN: the new key is set on authentik-bootstrap-token, the old key is refused, NetBird is not touched", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    const before = b.readNetbirdConfig();
    const events = b.double.events.length;
    const old = b.secrets.AUTHENTIK_TOKEN!;
    b.rotate("AUTHENTIK_TOKEN", "rotatedAUTHENTIKTOKEN0123456789abcdef");
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("step authentik-token: ok, key set on authentik-bootstrap-token (");
    expect(Object.keys(Object.fromEntries(b.double.tokens))).toEqual(["authentik-bootstrap-token"]);
    expect(b.double.tokens.get("authentik-bootstrap-token")?.key).toBe("rotatedAUTHENTIKTOKEN0123456789abcdef");
    expect(b.double.events.slice(events).map((e) => `${e.kind} ${e.service}`).filter((e) => !e.startsWith("pull") && !e.startsWith("blueprint"))).toEqual([
      "recreate authentik-server",
      "recreate authentik-worker",
      "token-set authentik-server",
    ]);
    expect(await authentikStatus(b, old)).toBe(403);
    expect(await authentikStatus(b, "rotatedAUTHENTIKTOKEN0123456789abcdef")).toBe(200);
    // NetBird's combined server reads no idpManager: nothing of Authentik's token is in its config.
    expect(b.readNetbirdConfig()).toBe(before);
    expectNoCanary(b, r.stdout, r.stderr);
  });

  it("on an edge deployed before, removes the netbird-mgmt-token that bootstrap made, keeping the key on authentik-bootstrap-token", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    // An older bootstrap minted a second token with the same key and recorded nothing.
    b.double.seedToken("netbird-mgmt-token", { user: "akadmin", key: b.secrets.AUTHENTIK_TOKEN!, intent: "api", expiring: false });
    const state = b.state();
    delete state.authentik.token_fingerprint;
    fs.writeFileSync(path.join(b.data, "bootstrap-state.json"), JSON.stringify(state));
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("step authentik-token: ok, key set on authentik-bootstrap-token, 1 other token(s) removed (");
    expect([...b.double.tokens.keys()]).toEqual(["authentik-bootstrap-token"]);
    expect(await authentikStatus(b, b.secrets.AUTHENTIK_TOKEN!)).toBe(200);
  });

  it("first boot on a slow Authentik: the key is probed until the worker made its token, the blueprint retried until the defaults are discovered", async () => {
    const b = await bifrost();
    // The worker's discovery is held back until the bootstrap has met each missing object once
    // (a refused key probe, then a refused apply): fixed delays raced the machine's load and
    // let a slow run find everything already there.
    const held = { bootstrap: Infinity, instances: Infinity, applied: 60_000 };
    b.double.configure({ discoveryMs: held });
    const probes = () => b.double.authentik.api.calls.filter((c) => c.startsWith("GET /api/v3/core/users/me/")).length;
    const applies = () => b.double.calls.filter((c) => c.includes(" ak apply_blueprint ")).length;
    const run = b.run({ env: { BIFROST_API_RETRY_DELAY: "0.1" } });
    await whileRunning(run, () => probes() >= 1);
    b.double.configure({ discoveryMs: { ...held, bootstrap: 0 } });
    await whileRunning(run, () => applies() >= 2);
    b.double.configure({ discoveryMs: { ...held, bootstrap: 0, instances: 0 } });
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(probes()).toBeGreaterThanOrEqual(2);
    expect(r.stdout).toMatch(/step authentik-blueprint: ok, provider and application verified, applied after \d+ attempt\(s\) Authentik refused or did not apply/);
    expect(b.double.calls.some((c) => c.startsWith("exec authentik-server ak shell -c import os\nfrom authentik.core.models import Token"))).toBe(false);
    expect(b.double.authentik.providers.get("netbird")).toMatchObject({ authorization_flow: expect.stringMatching(/^pk:/), invalidation_flow: expect.stringMatching(/^pk:/) });
  });

  it("a psql in authentik-postgres that never returns ends its step within WAIT_TIMEOUT, saying so, instead of holding the run", async () => {
    const b = await bifrost();
    b.double.configure({ psqlHangs: true });
    const r = await b.run({ env: { BIFROST_WAIT_TIMEOUT: "2" } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("ERROR: psql in authentik-postgres did not return within 2s (is the database shutting down? see: docker logs authentik-postgres)");
    expect(r.stderr).toMatch(/step postgres-password: FAILED after 2\.\d\ds/);
    expect(b.double.containers.has("authentik-server")).toBe(false);
  });

  it("an apply that fails after a valid validation exits 0 upstream: the bootstrap sees the missing provider and applies again", async () => {
    const b = await bifrost();
    b.double.authentik.applyConflicts = 1;
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.authentik.applyConflicts).toBe(0);
    expect(r.stdout).toMatch(/step authentik-blueprint: ok, provider and application verified, applied after 1 attempt\(s\)/);
    expect(b.double.authentik.providers.get("netbird")).toMatchObject({ client_id: "netbird" });
  });

  it("an apply that keeps failing silently ends the step saying that Authentik exited 0 without applying", async () => {
    const b = await bifrost();
    b.double.authentik.applyConflicts = Infinity;
    const r = await b.run({ env: { BIFROST_WAIT_TIMEOUT: "2", BIFROST_API_RETRY_DELAY: "0.2" } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("ERROR: Authentik did not apply /blueprints/custom/netbird.yaml within 2s: ak apply_blueprint exited 0, but Authentik's NetBird provider does not match the blueprint");
    expect(b.double.authentik.providers.has("netbird")).toBe(false);
  });

  it("with CLOUDFLARE_DNS_TOKEN, Traefik gets that token and CLOUDFLARE_API_TOKEN never reaches the VPS", async () => {
    const secrets: Record<string, string> = { ...canarySecrets(), CLOUDFLARE_DNS_TOKEN: `dns${"k".repeat(40)}` };
    const b = await bifrost({ secrets });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.containers.get("traefik")?.config.environment.CF_DNS_API_TOKEN).toBe(secrets.CLOUDFLARE_DNS_TOKEN);
    expect(b.read(".secrets.env") + b.read(".env")).not.toContain(secrets.CLOUDFLARE_API_TOKEN);
    const without = await bifrost();
    expect((await without.run()).code).toBe(0);
    expect(without.double.containers.get("traefik")?.config.environment.CF_DNS_API_TOKEN).toBe(without.secrets.CLOUDFLARE_API_TOKEN);
  });

  it("with the GitHub login, its sign-up and login flows carry the organisation check, the organisation from the stack", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }), authentikGithub: { clientId: "Ov23liTestClientId01", org: "homelab-people" } });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    const signup = b.double.authentik.flowExpressionPolicies("default-source-enrollment");
    const login = b.double.authentik.flowExpressionPolicies("default-source-authentication");
    expect(signup.map((p) => [p.policy, p.negate])).toEqual([["homelab-core GitHub sign-up", false]]);
    expect(login.map((p) => [p.policy, p.negate])).toEqual([["homelab-core GitHub login", false]]);
    for (const p of [...signup, ...login]) expect(p.expression).toContain('org = "homelab-people"\n');
    expect(signup[0].expression).toContain("refuse_without_org = True\n");
    expect(login[0].expression).toContain("refuse_without_org = False\n");
  });

  it("without its metaapplyblueprint entries the blueprint is refused while the worker has not applied the default flows", async () => {
    const b = await bifrost();
    b.double.configure({ discoveryMs: { bootstrap: 0, instances: 0, applied: 60_000 } });
    const file = path.join(b.dir, "authentik/blueprints/netbird.yaml");
    const doc = parseYaml(fs.readFileSync(file, "utf8").replace(/!(Env|Format|Find|KeyOf|Condition|If)\b/g, "")) as { entries: { model: string }[] };
    expect(doc.entries.filter((e) => e.model === "authentik_blueprints.metaapplyblueprint")).toHaveLength(8);
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/  - model: authentik_blueprints\.metaapplyblueprint\n(?:    .*\n|      .*\n)+/g, ""));
    const r = await b.run({ env: { BIFROST_WAIT_TIMEOUT: "1", BIFROST_API_RETRY_DELAY: "0.1" } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toContain("This field may not be null");
    expect(keptOutput(b, r.stderr, "last output of ak apply_blueprint:")).toContain("'authorization_flow': ['This field may not be null.']");
    expect(r.stderr).toMatch(/Authentik did not apply \/blueprints\/custom\/netbird\.yaml within 1s: Authentik refused the blueprint/);
  });

  it("a rotated AUTHENTIK_BOOTSTRAP_PASSWORD becomes akadmin's password; an unchanged one costs no ak shell", async () => {
    const b = await bifrost();
    const first = await b.run();
    expect(first.code, first.stderr).toBe(0);
    // Authentik's bootstrap blueprint set it at the first start already.
    expect(first.stdout).toContain("step authentik-admin: ok, akadmin's password unchanged");
    expect(b.double.adminPassword).toBe(b.secrets.AUTHENTIK_BOOTSTRAP_PASSWORD);
    const rotated = "rotated akadmin password #1 $x";
    b.rotate("AUTHENTIK_BOOTSTRAP_PASSWORD", rotated);
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("step authentik-admin: ok, akadmin's password set");
    expect(b.double.adminPassword).toBe(rotated);
    expect(r.stdout + r.stderr).not.toContain(rotated);
    const shells = () => b.double.calls.filter((c) => c.startsWith("exec authentik-server ak shell -c")).length;
    const before = shells();
    const again = await b.run();
    expect(again.stdout).toContain("step authentik-admin: ok, unchanged");
    expect(shells()).toBe(before);
  });

  it("never writes the env files Pulumi owns", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    const before = { env: b.read(".env"), secrets: b.read(".secrets.env") };
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect({ env: b.read(".env"), secrets: b.read(".secrets.env") }).toEqual(before);
    expect(before.secrets).not.toMatch(/NB_IDP_MGMT_TOKEN/);
  });

  it("creates the bind-mounted directories of uid-1000 images owned by 1000:1000 before their containers start", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    for (const dir of ["authentik/data", "netbird-proxy/certs"]) {
      const st = fs.statSync(path.join(b.data, dir));
      expect([dir, st.uid, st.gid]).toEqual([dir, 1000, 1000]);
    }
    const lines = r.stdout.split("\n");
    const dirs = lines.findIndex((l) => l.startsWith("[bootstrap] step data-dirs: ok, owner set to 1000:1000: authentik/data netbird-proxy/certs"));
    expect(dirs).toBeGreaterThan(-1);
    for (const starter of ["authentik", "netbird-proxy"]) expect(dirs).toBeLessThan(lines.findIndex((l) => l.startsWith(`[bootstrap] step ${starter}:`)));
    // A root-owned directory left by an earlier Docker (which creates missing bind sources as root) is fixed.
    fs.chownSync(path.join(b.data, "authentik/data"), 0, 0);
    const again = await b.run();
    expect(again.stdout).toContain("step data-dirs: ok, owner set to 1000:1000: authentik/data (");
    expect(fs.statSync(path.join(b.data, "authentik/data")).uid).toBe(1000);
    expect((await b.run()).stdout).toContain("step data-dirs: ok, unchanged (");
  });

  it("retries ak shell while Django starts", async () => {
    const b = await bifrost();
    b.double.configure({ akFailures: 3 });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    // Four tries of akadmin's password, the one `ak shell` of a first boot.
    expect(b.double.calls.filter((c) => c.startsWith("exec authentik-server ak shell -c"))).toHaveLength(4);
    expect(r.stdout).toContain("step authentik-admin: ok, akadmin's password unchanged");
  });

  it("gives up setting the token after a bounded number of attempts and shows ak shell's error", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    b.rotate("AUTHENTIK_TOKEN", "rotatedAUTHENTIKTOKEN0123456789abcdef");
    b.double.configure({ akFailures: 100 });
    const r = await b.run({ env: { BIFROST_TOKEN_ATTEMPTS: "3" } });
    expect(r.code).not.toBe(0);
    expect(b.double.calls.filter((c) => c.startsWith("exec authentik-server ak shell -c import os\nfrom authentik.core.models import Token"))).toHaveLength(3);
    expect(r.stderr).not.toContain("the database system is starting up");
    expect(keptOutput(b, r.stderr, "last error of ak shell:")).toContain("the database system is starting up");
    expect(r.stderr).toMatch(/setting AUTHENTIK_TOKEN on authentik-bootstrap-token through ak shell in authentik-server failed after 3 attempts/);
    expect(r.stderr).not.toContain("rotatedAUTHENTIKTOKEN0123456789abcdef");
  });

  it("never feeds ak shell its code on stdin (a race with Django's interactive console)", () => {
    const steps = fs.readFileSync(path.join(__dirname, "../../../cloud/bifrost/steps/authentik.sh"), "utf8");
    expect(steps).not.toMatch(/exec -i authentik-server ak shell/);
    expect(steps).toContain('docker exec authentik-server ak shell -c "$2"');
  });

  it("on a health timeout exits non-zero, names the service and shows its last log lines", async () => {
    const b = await bifrost();
    b.double.configure({ neverHealthy: ["authentik-worker"] });
    // Output kept by earlier failures: only the newest 20 files stay.
    const logs = path.join(b.data, "bootstrap-logs");
    fs.mkdirSync(logs, { recursive: true });
    for (let i = 0; i < 25; i++) {
      const old = path.join(logs, `old-${i}`);
      fs.writeFileSync(old, "");
      fs.utimesSync(old, 1_000_000 + i, 1_000_000 + i);
    }
    const r = await b.run({ env: { BIFROST_WAIT_TIMEOUT: "1" } });
    expect(r.code).not.toBe(0);
    const kept = fs.readdirSync(logs);
    expect(kept).toHaveLength(20);
    expect(kept.filter((f) => f.startsWith("old-")).sort()).toEqual(Array.from({ length: 19 }, (_, i) => `old-${i + 6}`).sort());
    expect(r.stderr).not.toContain("still starting");
    expect(keptOutput(b, r.stderr, "last 50 log lines of authentik-worker:")).toContain("authentik-worker  | authentik-worker still starting");
    expect(r.stderr).not.toContain("last 50 log lines of authentik-server:");
    expect(r.stderr).toMatch(/ERROR: authentik-worker did not become healthy within 1s/);
    expect(r.stderr).toContain("step authentik: FAILED");
    expect(r.stderr).toContain("step(s) failed: authentik");
    expect(b.double.netbird.store().identityProviders).toEqual([]);
    expectNoCanary(b, r.stdout, r.stderr);
  });

  it("waits out a running service's probe that failed for a moment instead of failing at once (issue 29)", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    // A re-run changes nothing, so Compose recreates no container; netbird-agent's probe has
    // just timed out (a busy host): Compose's `up --wait` reads it unhealthy and refuses it at
    // once, the step's own wait reads it unhealthy once more, then the probe passes again.
    b.double.configure({ probeFails: { "netbird-agent": 3 } });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/step netbird-agent: ok.*healthy again after its probe reported unhealthy \d+s into the wait/);
    expect(b.double.config.probeFails).toEqual({ "netbird-agent": 0 });
    expect(b.double.events.filter((e) => e.service === "netbird-agent" && ["create", "recreate", "restart"].includes(e.kind))).toHaveLength(1);
  });

  it("says a probe reported a service unhealthy at once, not that it ran out of time, when it stays unhealthy (issue 29)", async () => {
    const b = await bifrost();
    expect((await b.run()).code).toBe(0);
    b.double.configure({ probeFails: { "netbird-agent": Number.MAX_SAFE_INTEGER } });
    const started = Date.now();
    const r = await b.run({ env: { BIFROST_WAIT_TIMEOUT: "6" } });
    expect(r.code).not.toBe(0);
    // "at once" when Compose answered within the first second, as it does here unless the
    // machine is very busy; then it says after how many seconds.
    expect(r.stderr).toMatch(/ERROR: netbird-agent reported unhealthy by its probe (at once|after [1-5]s) and was still not healthy when the step's 6s ran out/);
    expect(r.stderr).not.toContain("did not become healthy within");
    // It waited for the step's deadline, not for nothing and not for ever. The deadline is in
    // bash's SECONDS, which count whole seconds: up to one of the six may already have passed.
    expect(Date.now() - started).toBeGreaterThanOrEqual(5000);
  });

  it("reports every missing required secret at once and starts nothing", async () => {
    const secrets = canarySecrets();
    const b = await bifrost({ secrets: { ...secrets, NB_RELAY_SECRET: "", CLOUDFLARE_API_TOKEN: undefined } });
    const r = await b.run();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/required secrets missing or empty in \.env\/\.secrets\.env: .*CLOUDFLARE_API_TOKEN.*NB_RELAY_SECRET|NB_RELAY_SECRET.*CLOUDFLARE_API_TOKEN/);
    expect(b.double.calls).toEqual(["compose version"]);
  });

  it("refuses to run before cloud-init finished", async () => {
    const b = await bifrost();
    fs.rmSync(path.join(b.root, "boot-finished"));
    const r = await b.run();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("cloud-init has not finished");
    expect(b.double.calls).toEqual([]);
  });

  it("prints no secret value, on success, on failure and under bash -x", async () => {
    const b = await bifrost({ secrets: canarySecrets({ optional: true }) });
    const ok = await b.run({ xtrace: true });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain("+ "); // xtrace was really on
    b.rotate("AUTHENTIK_POSTGRESQL_PASSWORD", "rotatedPostgresPassword-canary-0042");
    b.double.configure({ unhealthy: ["netbird-dashboard"] });
    // A probe that keeps failing is waited out until the step's deadline: a short one here.
    const failed = await b.run({ xtrace: true, env: { BIFROST_WAIT_TIMEOUT: "2" } });
    expect(failed.code).not.toBe(0);
    // Compose reports it unhealthy at once, or, on a very busy machine, only at the deadline.
    expect(failed.stderr).toMatch(/netbird-dashboard (reported unhealthy by its probe|did not become healthy)/);
    expectNoCanary(b, ok.stdout, ok.stderr, failed.stdout, failed.stderr);
    expect(failed.stderr).not.toContain("rotatedPostgresPassword-canary-0042");
  });

  it("lets a concurrent second run wait for the first instead of interleaving", async () => {
    const b = await bifrost();
    b.double.configure({ delaysMs: { traefik: 400, "authentik-server": 400 } });
    const [first, second] = await Promise.all([b.run(), new Promise((r) => setTimeout(r, 100)).then(() => b.run())]);
    expect(first.code, first.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain("another bootstrap run holds the lock; waiting");
    // The second run's calls all come after the first run's last call.
    const calls = b.double.calls;
    const secondStart = calls.indexOf("compose version", 1);
    expect(secondStart).toBeGreaterThan(0);
    expect(calls.slice(0, secondStart).filter((c) => c === "compose version")).toHaveLength(1);
    expect(calls.slice(0, secondStart).some((c) => composeStep(c) === "up netbird-dashboard")).toBe(true);
  });

  it("refuses after a bounded wait when the lock stays held", async () => {
    const b = await bifrost();
    b.double.configure({ delaysMs: { traefik: 2500 } });
    const first = b.run();
    await new Promise((r) => setTimeout(r, 200));
    const second = await b.run({ env: { BIFROST_LOCK_TIMEOUT: "1" } });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/another bootstrap run still holds .*\.bootstrap\.lock after 1s/);
    expect((await first).code).toBe(0);
    expect(b.double.calls.filter((c) => c === "compose version")).toHaveLength(1);
  });

  it("renders hostile values verbatim and leaves the template untouched", async () => {
    const hostile = ["a&b/c|d\\e$f", "x\\&y$HOME${PATH}|/", "quote'in\"side `tick` #hash", "tail\\"];
    const secrets = canarySecrets();
    const b = await bifrost({
      secrets: { ...secrets, NB_RELAY_SECRET: hostile[0], NB_DATA_STORE_KEY: hostile[1], AUTHENTIK_TOKEN: hostile[2] },
    });
    b.settings = { ...b.settings, domain: hostile[3] };
    b.writeEnvFiles();
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    const config = parseYaml(b.readNetbirdConfig());
    expect(config.server.authSecret).toBe(hostile[0]);
    expect(config.server.store.encryptionKey).toBe(hostile[1]);
    expect(config.server.exposedAddress).toBe(`https://netbird.${hostile[3]}:443`);
    expect(b.read("netbird/config.yaml.tmpl")).toBe(fs.readFileSync(path.join(__dirname, "../../../cloud/bifrost/netbird/config.yaml.tmpl"), "utf8"));
    expect(config.server.auth.issuer).toBe(`https://netbird.${hostile[3]}/oauth2`);
    // A hostile token reads back through Compose's parser unchanged and is minted as it is.
    expect(b.double.containers.get("authentik-server")?.config.environment.AUTHENTIK_BOOTSTRAP_TOKEN).toBe(hostile[2]);
    expect(b.double.tokens.get("authentik-bootstrap-token")?.key).toBe(hostile[2]);
  });
});
