/**
 * NetBird's network as v0.77.1 keeps it for an account: peers, groups, policies and setup keys,
 * and how management answers for them. Upstream keeps these per account; the double keeps the
 * owner's (the only account the bootstrap manages). Each function cites what it imitates, in
 * upstream's order of checks, refusals included.
 *
 * Upstream: netbirdio/netbird v0.77.1 (79a06720b684768b421f0a54f3bb14f22704994f).
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { Reply } from "./apis";

export interface MeshGroup {
  id: string;
  name: string;
  peers: string[];
}

export interface MeshRule {
  id: string;
  name: string;
  enabled: boolean;
  action: string;
  bidirectional: boolean;
  protocol: string;
  ports: string[];
  sources: string[];
  destinations: string[];
  sourceResource?: { id: string; type: string };
  destinationResource?: { id: string; type: string };
}

export interface MeshPolicy {
  id: string;
  name: string;
  description: string;
  enabled: boolean;
  rules: MeshRule[];
}

export interface MeshPeer {
  id: string;
  name: string;
  dns_label: string;
  ip: string;
  public_key: string;
}

export interface SetupKey {
  id: string;
  name: string;
  key: string;
  type: string;
  /** 0: never (types/setupkey.go GetExpiresAt zero). */
  expires_at_ms: number;
  auto_groups: string[];
  usage_limit: number;
  used_times: number;
  revoked: boolean;
}

export interface Mesh {
  groups: MeshGroup[];
  policies: MeshPolicy[];
  peers: MeshPeer[];
  setupKeys: SetupKey[];
}

/** rs/xid's form: 20 characters of base32hex (what NetBird gives groups, policies and peers). */
const xid = () => Array.from(randomBytes(20), (b) => "0123456789abcdefghijklmnopqrstuv"[b % 32]).join("");

/**
 * types/account.go AddAllGroup, run when an account is made: the "All" group and, unless the
 * server disables it (combined/cmd/config.go: the combined server's `server:` section has no
 * key for DisableDefaultPolicy, so it is never disabled there), the "Default" policy, one
 * bidirectional rule from All to All for every protocol.
 */
export function addAllGroupAndDefaultPolicy(mesh: Mesh): void {
  if (mesh.groups.length > 0) return;
  const all = { id: xid(), name: "All", peers: mesh.peers.map((p) => p.id) };
  mesh.groups.push(all);
  const id = xid();
  mesh.policies.push({
    id,
    name: "Default",
    description: "This is a default rule that allows connections between all the resources",
    enabled: true,
    rules: [{ id, name: "Default", enabled: true, action: "accept", bidirectional: true, protocol: "all", ports: [], sources: [all.id], destinations: [all.id] }],
  });
}

/** A setup key issued by an operator through the dashboard (what SOPS may hold). */
export function issuedSetupKey(name: string, key: string): SetupKey {
  return { id: xid(), name, key, type: "reusable", expires_at_ms: 0, auto_groups: [], usage_limit: 0, used_times: 0, revoked: false };
}

/** types/setupkey.go IsValid: not revoked, not expired, not used up (a one-off key: once). */
function isValid(k: SetupKey, now: number): boolean {
  const limit = k.type === "one-off" ? 1 : k.usage_limit;
  return !k.revoked && !(k.expires_at_ms !== 0 && now > k.expires_at_ms) && !(limit > 0 && k.used_times >= limit);
}

/**
 * ManagementService.Login (server/peer.go LoginPeer → AddPeer): a known WireGuard key logs in
 * without a setup key; an unknown one needs a valid setup key (handleSetupKeyAddedPeer:
 * unknown or invalid → NotFound "couldn't add peer: setup key is invalid"), which is then used
 * once more; the new peer joins All and the key's auto-groups. Its DNS label is its hostname,
 * with the address appended when the label is taken (peer.go getPeerIPDNSLabel).
 */
export function loginPeer(mesh: Mesh, login: { setupKey: string; publicKey: string; hostname: string }, now: number): Reply {
  const known = mesh.peers.find((p) => p.public_key === login.publicKey);
  if (known) return { status: 200, body: { ip: known.ip } };
  const key = mesh.setupKeys.find((k) => k.key === login.setupKey);
  if (!login.setupKey || !key || !isValid(key, now)) return { status: 404, body: { message: "couldn't add peer: setup key is invalid", code: 5 } };
  key.used_times += 1;
  const ip = `100.64.0.${mesh.peers.length + 1}`;
  const label = mesh.peers.some((p) => p.dns_label === login.hostname) ? `${login.hostname}-${ip.split(".").slice(2).join("-")}` : login.hostname;
  const peer = { id: xid(), name: login.hostname, dns_label: label, ip, public_key: login.publicKey };
  mesh.peers.push(peer);
  for (const group of mesh.groups) if (group.name === "All" || key.auto_groups.includes(group.id)) group.peers.push(peer.id);
  return { status: 200, body: { ip } };
}

const invalid = (message: string): Reply => ({ status: 422, body: { message, code: 422 } });
const notFound = (message: string): Reply => ({ status: 404, body: { message, code: 404 } });

/** The account's DNS domain peers' full names end in. */
export const meshDnsDomain = "netbird.selfhosted";

/** The network's routes; undefined for any other call. `changed` is set when the store must be saved. */
export function routeMesh(mesh: Mesh, method: string, p: string, b: Record<string, unknown>, now: number): { reply: Reply; changed: boolean } | undefined {
  const done = (reply: Reply, changed = false) => ({ reply, changed });
  const groupView = (g: MeshGroup) => ({ id: g.id, name: g.name, peers_count: g.peers.length, peers: g.peers.map((id) => ({ id, name: mesh.peers.find((x) => x.id === id)?.name ?? "" })) });
  const groupMinimum = (id: string) => ({ id, name: mesh.groups.find((g) => g.id === id)?.name ?? "" });
  // GET /api/peers (handlers/peers/peers_handler.go getAllPeers, toPeerListItemResponse): each
  // peer with its address, groups, and as `dns_label` its full name: fqdn() appends the
  // account's DNS domain to the label (netbird.selfhosted here: server.go ResolveDomains
  // DefaultSelfHostedDomain), extra_dns_labels likewise (fqdnList), v0.77.1.
  if (method === "GET" && p === "/api/peers")
    return done({
      status: 200,
      body: mesh.peers.map((x) => ({ id: x.id, name: x.name, ip: x.ip, dns_label: `${x.dns_label}.${meshDnsDomain}`, extra_dns_labels: [], groups: mesh.groups.filter((g) => g.peers.includes(x.id)).map((g) => groupMinimum(g.id)) })),
    });

  // --- groups (handlers/groups/groups_handler.go; server/group.go) ---
  if (method === "GET" && p === "/api/groups") return done({ status: 200, body: mesh.groups.map(groupView) });
  if (method === "POST" && p === "/api/groups") {
    if (typeof b.name !== "string" || !b.name) return done(invalid("group name shouldn't be empty"));
    // group.go validateNewGroup: an API group's name is unique (AlreadyExists, 409).
    if (mesh.groups.some((g) => g.name === b.name)) return done({ status: 409, body: { message: `group with name ${b.name} already exists`, code: 409 } });
    const group = { id: xid(), name: b.name, peers: Array.isArray(b.peers) ? b.peers.map(String) : [] };
    mesh.groups.push(group);
    return done({ status: 200, body: groupView(group) }, true);
  }
  const groupPath = /^\/api\/groups\/([^/]+)$/.exec(p);
  if (method === "PUT" && groupPath) {
    const group = mesh.groups.find((g) => g.id === groupPath[1]);
    if (!group) return done(notFound(`group: ${groupPath[1]} not found`));
    if (group.name === "All") return done(invalid("updating group ALL is not allowed"));
    if (typeof b.name !== "string" || !b.name) return done(invalid("group name shouldn't be empty"));
    // updateGroup: the body's peers replace the group's; no peers in the body empties it.
    group.name = b.name;
    group.peers = Array.isArray(b.peers) ? b.peers.map(String) : [];
    return done({ status: 200, body: groupView(group) }, true);
  }

  // --- policies (handlers/policies/policies_handler.go; server/policy.go) ---
  const policyView = (x: MeshPolicy) => ({
    ...x,
    rules: x.rules.map((r) => ({ ...r, sources: r.sources.map(groupMinimum), destinations: r.destinations.map(groupMinimum) })),
  });
  if (method === "GET" && p === "/api/policies") return done({ status: 200, body: mesh.policies.map(policyView) });
  const policyPath = /^\/api\/policies\/([^/]+)$/.exec(p);
  if ((method === "POST" && p === "/api/policies") || (method === "PUT" && policyPath)) {
    const existing = policyPath && mesh.policies.find((x) => x.id === policyPath[1]);
    if (policyPath && !existing) return done(notFound(`policy: ${policyPath[1]} not found`));
    const parsed = parsePolicy(b);
    if ("message" in parsed) return done(invalid(parsed.message));
    // policy.go validatePolicy: a rule id the policy does not have is refused; group ids that do
    // not exist are dropped without a word (getValidGroupIDs).
    for (const rule of parsed.rules) if (rule.id && !existing?.rules.some((r) => r.id === rule.id)) return done(invalid(`invalid rule ID: ${rule.id}`));
    const id = existing?.id ?? xid();
    const known = (ids: string[]) => ids.filter((g) => mesh.groups.some((x) => x.id === g));
    const policy: MeshPolicy = { ...parsed, id, rules: parsed.rules.map((r) => ({ ...r, id: r.id || id, sources: known(r.sources), destinations: known(r.destinations) })) };
    mesh.policies = existing ? mesh.policies.map((x) => (x.id === id ? policy : x)) : [...mesh.policies, policy];
    return done({ status: 200, body: policyView(policy) }, true);
  }
  if (method === "DELETE" && policyPath) {
    if (!mesh.policies.some((x) => x.id === policyPath[1])) return done(notFound(`policy: ${policyPath[1]} not found`));
    mesh.policies = mesh.policies.filter((x) => x.id !== policyPath[1]);
    return done({ status: 200, body: {} }, true);
  }

  // --- setup keys (handlers/setup_keys/setupkeys_handler.go; server/setupkey.go) ---
  const keyView = (k: SetupKey) => ({
    id: k.id,
    name: k.name,
    // ToResponseBody: the key's masked form (KeySecret), never the key after creation.
    key: `${k.key.slice(0, 5)}****`,
    type: k.type,
    valid: isValid(k, now),
    revoked: k.revoked,
    used_times: k.used_times,
    usage_limit: k.usage_limit,
    auto_groups: k.auto_groups,
    expires: k.expires_at_ms ? new Date(k.expires_at_ms).toISOString() : "0001-01-01T00:00:00Z",
  });
  if (method === "GET" && p === "/api/setup-keys") return done({ status: 200, body: mesh.setupKeys.map(keyView) });
  if (method === "POST" && p === "/api/setup-keys") {
    // createSetupKey, in its order: name, type, a one-off key's usage_limit, expires_in (each
    // InvalidArgument, 422); then CreateSetupKey's validateSetupKeyAutoGroups: an unknown group
    // is NotFound, "All" is refused.
    if (typeof b.name !== "string" || b.name === "") return done(invalid("setup key name shouldn't be empty"));
    if (b.type !== "reusable" && b.type !== "one-off") return done(invalid(`unknown setup key type ${String(b.type ?? "")}`));
    if (b.type === "one-off" && Number(b.usage_limit ?? 0) > 1)
      return done(invalid(`usage_limit ${String(b.usage_limit)} is not valid for a one-off setup key, which can be used once; use type reusable for a key that can be used more than once`));
    const expiresIn = Number(b.expires_in ?? 0);
    if (expiresIn < 0) return done(invalid("expiresIn can not be in the past"));
    const autoGroups = Array.isArray(b.auto_groups) ? b.auto_groups.map(String) : [];
    for (const id of autoGroups) {
      const group = mesh.groups.find((g) => g.id === id);
      if (!group) return done(notFound(`group not found: ${id}`));
      if (group.name === "All") return done(invalid("can't add 'All' group to the setup key"));
    }
    // types/setupkey.go GenerateSetupKey: an uppercase UUID; expires_in 0 never expires.
    const key: SetupKey = {
      id: xid(),
      name: b.name,
      key: randomUUID().toUpperCase(),
      type: b.type,
      expires_at_ms: expiresIn === 0 ? 0 : now + expiresIn * 1000,
      auto_groups: autoGroups,
      usage_limit: b.type === "one-off" ? 1 : Number(b.usage_limit ?? 0),
      used_times: 0,
      revoked: false,
    };
    mesh.setupKeys.push(key);
    return done({ status: 200, body: { ...keyView(key), key: key.key } }, true);
  }
  const keyPath = /^\/api\/setup-keys\/([^/]+)$/.exec(p);
  if (method === "DELETE" && keyPath) {
    if (!mesh.setupKeys.some((k) => k.id === keyPath[1])) return done(notFound("setup key not found"));
    mesh.setupKeys = mesh.setupKeys.filter((k) => k.id !== keyPath[1]);
    return done({ status: 200, body: {} }, true);
  }
  return undefined;
}

/**
 * policies_handler.go savePolicy's checks, in its order: a name, at least one rule; per rule
 * sources or a source resource (not both) and destinations or a destination resource (not
 * both), a known action and protocol, ports or port ranges (not both) within 1..65535, no
 * ports for protocol all or icmp.
 */
function parsePolicy(b: Record<string, unknown>): Omit<MeshPolicy, "id"> | { message: string } {
  if (typeof b.name !== "string" || !b.name) return { message: "policy name shouldn't be empty" };
  if (!Array.isArray(b.rules) || b.rules.length === 0) return { message: "policy rules shouldn't be empty" };
  const rules: MeshRule[] = [];
  for (const raw of b.rules as Record<string, unknown>[]) {
    const sources = Array.isArray(raw.sources) ? raw.sources.map(String) : [];
    const destinations = Array.isArray(raw.destinations) ? raw.destinations.map(String) : [];
    const sourceResource = raw.sourceResource as MeshRule["sourceResource"];
    const destinationResource = raw.destinationResource as MeshRule["destinationResource"];
    if (sources.length && sourceResource) return { message: "specify either sources or  source resources, not both" };
    if (destinations.length && destinationResource) return { message: "specify either destinations or  destination resources, not both" };
    if (!(sources.length || sourceResource) || !(destinations.length || destinationResource))
      return { message: "specify either sources or source resources and destinations or destination resources" };
    if (raw.action !== "accept" && raw.action !== "drop") return { message: "unknown action type" };
    if (!["all", "tcp", "udp", "icmp", "netbird-ssh"].includes(String(raw.protocol))) return { message: `unknown protocol type: ${String(raw.protocol)}` };
    const ports = Array.isArray(raw.ports) ? raw.ports.map(String) : [];
    if (ports.length && Array.isArray(raw.port_ranges) && raw.port_ranges.length) return { message: "specify either individual ports or port ranges, not both" };
    if (ports.some((x) => !/^\d+$/.test(x) || Number(x) < 1 || Number(x) > 65535)) return { message: "valid port value is in 1..65535 range" };
    if ((raw.protocol === "all" || raw.protocol === "icmp") && ports.length) return { message: "for ALL or ICMP protocol ports is not allowed" };
    rules.push({
      id: typeof raw.id === "string" ? raw.id : "",
      name: String(raw.name ?? ""),
      enabled: raw.enabled === true,
      action: String(raw.action),
      bidirectional: raw.bidirectional === true,
      protocol: String(raw.protocol),
      ports,
      sources,
      destinations,
      ...(sourceResource && { sourceResource }),
      ...(destinationResource && { destinationResource }),
    });
  }
  return { name: b.name, description: String(b.description ?? ""), enabled: b.enabled === true, rules };
}
