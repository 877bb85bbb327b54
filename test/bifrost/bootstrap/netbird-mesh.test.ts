/**
 * The edge's place in the mesh (issue 17, item 2): its own group, a policy that lets it open
 * connections only to the peers behind BIFROST_PUBLIC_SERVICES on their ports, nothing that
 * lets a peer open one to it, Default replaced by the same all-to-all policy over a group that
 * leaves the edge out, and an enrolment key made for one use that is gone afterwards. The
 * NetBird double (test/docker-double/netbirdMesh.ts) answers as v0.77.1 does, refusals included.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Bifrost, canarySecrets } from "../../docker-double/harness";
import { bundleDir } from "../../../components/stack/paths";
import { vpsBin } from "../../conformance/tools";

interface Policy {
  name: string;
  enabled: boolean;
  rules: { enabled: boolean; bidirectional: boolean; protocol: string; ports?: string[]; sources: { id: string }[]; destinations: { id: string }[] }[];
}
interface Group {
  id: string;
  name: string;
  peers: { id: string }[];
}

describe("the edge's place in the NetBird mesh", () => {
  let b: Bifrost | undefined;
  afterEach(async () => {
    await b?.stop();
    b = undefined;
  });

  const call = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${b!.double.netbird.api.port}${route}`, {
      method,
      headers: { Authorization: `Token ${b!.state().netbird?.pat}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as never };
  };
  const groups = async () => (await call("GET", "/api/groups")).body as Group[];
  const policies = async () => (await call("GET", "/api/policies")).body as Policy[];
  const peerNamed = (name: string) => b!.double.netbird.store().peers.find((p) => p.name === name)!;
  /** A machine of the homelab joining with a key the owner made in the dashboard (no groups). */
  const join = async (hostname: string) => {
    const key = ((await call("POST", "/api/setup-keys", { name: `${hostname}-key`, type: "one-off", expires_in: 86400 })).body as { key: string }).key;
    expect(b!.double.netbird.login({ setupKey: key, publicKey: `${hostname}-wireguard-key`, hostname }).status).toBe(200);
    return peerNamed(hostname).id;
  };

  /**
   * Whether `from` may open a connection to `to` on a TCP port, as NetBird's policies decide it
   * (types/account.go GetPeerConnectionResources → policy rules: an enabled rule of an enabled
   * policy whose sources hold `from` and destinations hold `to`, or the reverse when it is
   * bidirectional; protocol all, or tcp on a listed port or on every port when none is listed).
   */
  const mayConnect = (ps: Policy[], gs: Group[], from: string, to: string, port: string) => {
    const holds = (refs: { id: string }[], peer: string) => refs.some((r) => gs.find((g) => g.id === r.id)?.peers.some((p) => p.id === peer));
    return ps.some(
      (p) =>
        p.enabled &&
        p.rules.some(
          (r) =>
            r.enabled &&
            (r.protocol === "all" || (r.protocol === "tcp" && (!r.ports?.length || r.ports.includes(port)))) &&
            ((holds(r.sources, from) && holds(r.destinations, to)) || (r.bidirectional && holds(r.sources, to) && holds(r.destinations, from))),
        ),
    );
  };

  it("enrols the edge with a one-off, expiring key into bifrost-edge, then deletes the key and empties its file; a rerun makes none", async () => {
    b = await new Bifrost({ secrets: canarySecrets() }).start();
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/step netbird-groups: ok, made bifrost-edge bifrost-upstreams homelab \(/);
    expect(r.stdout).toMatch(/step netbird-agent: ok, enrolled with a one-off setup key, deleted after use \(/);
    const api = b.double.netbird.api;
    const made = api.bodies[api.calls.indexOf("POST /api/setup-keys")] as Record<string, unknown>;
    const edgeGroup = (await groups()).find((g) => g.name === "bifrost-edge")!;
    expect(made).toEqual({ name: "bifrost-edge-enrolment", type: "one-off", usage_limit: 1, expires_in: 86400, auto_groups: [edgeGroup.id], ephemeral: false });
    expect(api.calls.filter((c) => c.startsWith("DELETE /api/setup-keys/"))).toHaveLength(1);
    expect(b.double.netbird.store().setupKeys).toEqual([]);
    // The key went in through a file the agent reads once at start, emptied afterwards; the
    // container's environment never held it.
    const keyFile = path.join(b.data, "netbird-agent", "setup-key");
    expect(fs.readFileSync(keyFile, "utf8")).toBe("");
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const agent = b.double.containers.get("netbird-agent")!.config.environment;
    expect(agent.NB_SETUP_KEY_FILE).toBe("/var/lib/netbird/setup-key");
    expect(agent.NB_SETUP_KEY).toBeUndefined();
    // The edge's peer is in its group (the key's auto-group) and in no other but All.
    const edge = peerNamed("bifrost").id;
    expect((await groups()).filter((g) => g.peers.some((p) => p.id === edge)).map((g) => g.name).sort()).toEqual(["All", "bifrost-edge"]);

    const calls = api.calls.length;
    const again = await b.run();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/step netbird-agent: ok, enrolled before \(/);
    expect(again.stdout).toMatch(/step netbird-groups: ok, unchanged \(/);
    expect(api.calls.slice(calls).filter((c) => !c.startsWith("GET "))).toEqual([]);
  }, 90_000);

  it("a new server on the kept volume: the agent logs in with the WireGuard key it kept there, no key is made", async () => {
    b = await new Bifrost({ secrets: canarySecrets() }).start();
    expect((await b.run()).code).toBe(0);
    const fresh = await new Bifrost({ secrets: b.secrets, dataFrom: b }).start();
    try {
      const r = await fresh.run();
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/step netbird-agent: ok, enrolled before \(/);
      expect(fresh.double.netbird.api.calls.filter((c) => !c.startsWith("GET "))).toEqual([]);
      expect(fresh.double.netbird.store().peers.map((p) => p.name)).toEqual(["bifrost"]);
    } finally {
      await fresh.stop();
    }
  }, 90_000);

  it("a run cut off after the agent enrolled and before the key was deleted: the next run empties the file and deletes the key", async () => {
    b = await new Bifrost({ secrets: canarySecrets() }).start();
    expect((await b.run()).code).toBe(0);
    // What the step had when it was cut off: NetBird's answer recorded (lib/state.sh mint_once),
    // the key in the agent's file, the key in NetBird.
    const answer = (await call("POST", "/api/setup-keys", { name: "bifrost-edge-enrolment", type: "one-off", usage_limit: 1, expires_in: 86400 })).body as { key: string };
    fs.writeFileSync(path.join(b.data, ".minted-agent-setup-key.json"), JSON.stringify(answer), { mode: 0o600 });
    fs.writeFileSync(path.join(b.data, "netbird-agent", "setup-key"), answer.key, { mode: 0o600 });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(b.data, "netbird-agent", "setup-key"), "utf8")).toBe("");
    expect(b.double.netbird.store().setupKeys).toEqual([]);
    expect(fs.existsSync(path.join(b.data, ".minted-agent-setup-key.json"))).toBe(false);
    expect(r.stdout + r.stderr).not.toContain(answer.key);
  }, 90_000);

  it("lets the edge open connections only to its upstreams' ports, lets no peer open one to it, and keeps the homelab all-to-all", async () => {
    b = await new Bifrost({
      secrets: canarySecrets(),
      publicServices: [
        { name: "grafana", upstream: "http://nas.netbird.selfhosted:3000" },
        { name: "photos", upstream: "https://nas.netbird.selfhosted" },
        { name: "wiki", upstream: "http://wiki-host.netbird.selfhosted:8080" },
      ],
    }).start();
    const first = await b.run();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("the edge reaches no peer (no upstream in NetBird)");
    expect(first.stdout).toContain("warning: no NetBird peer yet for grafana, photos, wiki (run up again once it has joined)");
    expect(first.stdout).toContain("Default replaced by homelab (0 peer(s))");

    const nas = await join("nas");
    const laptop = await join("laptop");
    // The owner grants access as the README says: the machines into the homelab group.
    const homelab = (await groups()).find((g) => g.name === "homelab")!;
    expect((await call("PUT", `/api/groups/${homelab.id}`, { name: "homelab", peers: [nas, laptop] })).status).toBe(200);

    const second = await b.run();
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain("the edge reaches its upstreams on tcp 3000,443");
    expect(second.stdout).toContain("warning: no NetBird peer yet for wiki");
    expect(second.stdout).toContain("Default replaced before");

    const edge = peerNamed("bifrost").id;
    const [ps, gs] = [await policies(), await groups()];
    expect(ps.map((p) => p.name).sort()).toEqual(["bifrost-edge to its upstreams", "homelab"]);
    expect(mayConnect(ps, gs, edge, nas, "3000")).toBe(true);
    expect(mayConnect(ps, gs, edge, nas, "443")).toBe(true);
    expect(mayConnect(ps, gs, edge, nas, "22")).toBe(false);
    expect(mayConnect(ps, gs, edge, laptop, "3000")).toBe(false);
    for (const port of ["22", "80", "443", "3000"]) {
      expect(mayConnect(ps, gs, nas, edge, port)).toBe(false);
      expect(mayConnect(ps, gs, laptop, edge, port)).toBe(false);
    }
    expect(mayConnect(ps, gs, laptop, nas, "22")).toBe(true);
    expect(mayConnect(ps, gs, nas, laptop, "5900")).toBe(true);

    // A third run with the same services changes nothing in NetBird.
    const calls = b.double.netbird.api.calls.length;
    expect((await b.run()).code).toBe(0);
    expect(b.double.netbird.api.calls.slice(calls).filter((c) => !c.startsWith("GET "))).toEqual([]);
  }, 120_000);

  it("the edge never joins under Default: its policies are in place before the agent starts, even when the agent then fails (issue 30)", async () => {
    b = await new Bifrost({ secrets: canarySecrets(), publicServices: [{ name: "grafana", upstream: "http://nas.netbird.selfhosted:3000" }] }).start();
    b.double.configure({ neverHealthy: ["netbird-agent"] });
    const r = await b.run({ env: { BIFROST_WAIT_TIMEOUT: "2" } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("step netbird-agent: FAILED");
    expect(r.stdout).toMatch(/step netbird-policies: ok, .*Default replaced by homelab \(0 peer\(s\)\)/);
    // With the policies after the agent, a failed agent left Default (All to All) in place.
    expect((await policies()).map((p) => p.name)).toEqual(["homelab"]);
  });

  it("on an edge deployed before: peers keep reaching each other, the edge leaves the flat mesh, the reusable key is deleted", async () => {
    b = await new Bifrost({ secrets: canarySecrets(), publicServices: [{ name: "grafana", upstream: "http://nas.netbird.selfhosted:3000" }] }).start();
    expect((await b.run()).code).toBe(0);
    // What the bootstrap before this change left: Default over All, the edge in no group of its
    // own, a reusable never-expiring key named "bifrost" recorded in the state file.
    const all = (await groups()).find((g) => g.name === "All")!;
    const edgeGroup = (await groups()).find((g) => g.name === "bifrost-edge")!;
    for (const p of await policies()) await call("DELETE", `/api/policies/${(p as unknown as { id: string }).id}`);
    await call("POST", "/api/policies", {
      name: "Default",
      enabled: true,
      rules: [{ name: "Default", enabled: true, action: "accept", bidirectional: true, protocol: "all", sources: [all.id], destinations: [all.id] }],
    });
    await call("PUT", `/api/groups/${edgeGroup.id}`, { name: "bifrost-edge", peers: [] });
    const old = ((await call("POST", "/api/setup-keys", { name: "bifrost", type: "reusable", expires_in: 0 })).body as { key: string }).key;
    const state = b.state();
    delete state.netbird.default_policy_replaced;
    state.netbird.setup_key = old;
    fs.writeFileSync(path.join(b.data, "bootstrap-state.json"), JSON.stringify(state));
    const nas = await join("nas");
    const laptop = await join("laptop");
    const edge = peerNamed("bifrost").id;
    expect(mayConnect(await policies(), await groups(), laptop, edge, "22")).toBe(true);

    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/step netbird-agent: ok, enrolled before, the old reusable setup key deleted \(/);
    expect(r.stdout).toContain("Default replaced by homelab (2 peer(s))");
    expect(b.double.netbird.store().setupKeys.map((k) => k.name)).not.toContain("bifrost");
    expect(b.state().netbird.setup_key).toBeUndefined();
    const [ps, gs] = [await policies(), await groups()];
    expect(ps.map((p) => p.name).sort()).toEqual(["bifrost-edge to its upstreams", "homelab"]);
    expect(gs.find((g) => g.name === "bifrost-edge")!.peers.map((p) => p.id)).toEqual([edge]);
    expect(mayConnect(ps, gs, laptop, nas, "22")).toBe(true);
    expect(mayConnect(ps, gs, laptop, edge, "22")).toBe(false);
    expect(mayConnect(ps, gs, edge, nas, "3000")).toBe(true);
    expect(r.stdout + r.stderr).not.toContain(old);
  }, 120_000);

  it("a setup key from SOPS enrols the edge through the file and stays the operator's: emptied from the file, not deleted", async () => {
    b = await new Bifrost({ secrets: { ...canarySecrets(), NB_BIFROST_SETUP_KEY: "5F1A9D3C-0B7E-4C2A-9E61-3D8B7A0C4F25" } }).start();
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/step netbird-agent: ok, enrolled with the setup key from SOPS \(/);
    expect(fs.readFileSync(path.join(b.data, "netbird-agent", "setup-key"), "utf8")).toBe("");
    expect(b.double.netbird.store().setupKeys.map((k) => k.name)).toEqual(["issued-by-the-operator"]);
    expect(b.double.netbird.api.calls.filter((c) => c.includes("/api/setup-keys"))).toEqual([]);
    expect(r.stdout + r.stderr).not.toContain("5F1A9D3C-0B7E-4C2A-9E61-3D8B7A0C4F25");
  }, 90_000);
});

/**
 * lib/mesh.sh resolve_upstreams on the VPS's jq (issue 30, item 5): a host names a peer only
 * exactly — its address or a full DNS name as NetBird's API gives it (peers_handler.go fqdn(),
 * v0.77.1; a bare label only where the account has no DNS domain).
 */
describe("which peer an upstream names", () => {
  const resolve = (services: string, peers: unknown[]) => {
    const script = 'declare -A CONF=([BIFROST_PUBLIC_SERVICES]="$1"); source "$2"; resolve_upstreams "$3"';
    const r = spawnSync("bash", ["-c", script, "_", services, path.join(bundleDir, "lib/mesh.sh"), JSON.stringify(peers)], {
      encoding: "utf8",
      env: { PATH: `${vpsBin()}:${process.env.PATH}` },
    });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { resolved: { peer: string; port: string }[]; unresolved: string[]; ambiguous: string[] };
  };
  const peers = [
    { id: "peer-100", ip: "100.64.0.9", dns_label: "100" },
    { id: "peer-nas", ip: "100.64.0.10", dns_label: "nas.netbird.selfhosted", extra_dns_labels: ["files.netbird.selfhosted"] },
    { id: "peer-a", ip: "100.64.0.11", dns_label: "a.netbird.selfhosted", extra_dns_labels: ["shared.netbird.selfhosted"] },
    { id: "peer-b", ip: "100.64.0.12", dns_label: "b.netbird.selfhosted", extra_dns_labels: ["shared.netbird.selfhosted"] },
  ];

  it("an address names the peer that has it, never a peer whose label begins it", () => {
    expect(resolve("grafana=http://100.64.0.10:3000", peers)).toEqual({ resolved: [{ peer: "peer-nas", port: "3000" }], unresolved: [], ambiguous: [] });
  });

  it("a full DNS name or an extra label names its peer; a bare label or a longer name does not", () => {
    const r = resolve("photos=https://nas.netbird.selfhosted files=http://files.netbird.selfhosted:8080 bare=http://nas longer=http://nas.netbird.selfhosted.example.net", peers);
    expect(r.resolved).toEqual([
      { peer: "peer-nas", port: "443" },
      { peer: "peer-nas", port: "8080" },
    ]);
    expect(r.unresolved).toEqual(["bare", "longer"]);
  });

  it("a name two peers answer to is ambiguous and names neither", () => {
    expect(resolve("wiki=http://shared.netbird.selfhosted", peers)).toEqual({ resolved: [], unresolved: [], ambiguous: ["wiki"] });
  });
});
