/**
 * Stack settings (stacks/Pulumi.<stack>.yaml, namespace `core`): read and checked in one
 * pass so every problem is reported at once, beside those of the SOPS environment.
 * No domain, zone or address lives in code; they all come from here.
 */
import { isIP } from "node:net";
import { parseAppRow, tableProblems, type AppRow } from "../cluster/appTable";
import type { Problem } from "../secrets/env";
import type { VpsSettings } from "../secrets/render";

/** Reads one raw config value (`pulumi.Config.get`), undefined when unset. */
export type ConfigGetter = (key: string) => string | undefined;

export interface PublicService {
  readonly name: string;
  readonly upstream: string;
}

export interface FirewallOpening {
  readonly protocol: "tcp" | "udp";
  readonly port: string;
  readonly sourceIps: readonly string[];
  readonly description: string;
}

export interface HetznerSettings {
  readonly name: string;
  readonly domain: string;
  readonly cloudflareZone: string;
  readonly acmeEmail: string;
  /** E-mail of NetBird's local owner, created once by the bootstrap's `/api/setup` (password: NB_OWNER_PASSWORD). */
  readonly netbirdOwnerEmail: string;
  /**
   * Whether a person's first NetBird login (through Authentik) waits, blocked, until an
   * administrator approves it (NetBird's account setting user_approval_required). Default on.
   */
  readonly netbirdUserApproval: boolean;
  /** Only its members get from Authentik to NetBird (the blueprint binds the application to it). */
  readonly netbirdUsersGroup: string;
  /** Client id of the GitHub OAuth app behind Authentik's GitHub login; with AUTHENTIK_GITHUB_SECRET, or unset. */
  readonly authentikGithubClientId?: string;
  /** The GitHub organisation whose active members may sign up and log in through GitHub; unset: no sign-ups through GitHub. */
  readonly authentikGithubOrg?: string;
  readonly serverType: string;
  readonly image: string;
  readonly sshPublicKey: string;
  /** Always root: the bootstrap and the ship step write /etc and run Docker without sudo. */
  readonly sshUser: "root";
  /** Where the private key for the SSH connection lives; ssh-agent is used without it. */
  readonly sshPrivateKeyPath?: string;
  readonly operatorSshSources: readonly string[];
  /**
   * Address ranges that may reach NetBird's dashboard and REST API through Traefik; empty (the
   * default) lets every address through. Peers' gRPC, relay and /oauth2 logins stay open.
   */
  readonly netbirdAdminSources: readonly string[];
  /**
   * Address ranges that reach Authentik's admin interface and every API path its end users do
   * not need (traefik/dynamic/bifrost.yml); empty (the default): nobody from the internet.
   */
  readonly authentikAdminSources: readonly string[];
  readonly publicServices: readonly PublicService[];
  readonly extraFirewallRules: readonly FirewallOpening[];
  readonly dataRoot: string;
  /**
   * The Compose network's IPv4 range. Pinned (as NetBird's getting-started.sh pins 172.30.0.0/24)
   * so Traefik has a fixed address that netbird-proxy trusts for PROXY protocol headers.
   */
  readonly networkSubnet: string;
  /**
   * The internal network of Postgres and its clients. Pinned too: Docker would otherwise draw it
   * from its default pools, which may hold networkSubnet, and refuse the second network with
   * "Pool overlaps" (seen on the real engine, test/engine/).
   */
  readonly databaseSubnet: string;
  /** Fully qualified name of the hetzner-data stack (`org/project/stack`). */
  readonly dataStack: string;
}

export interface HetznerDataSettings {
  readonly name: string;
  readonly location: string;
  readonly volumeSizeGb: number;
  /** Lifts both protections so the data stack can be destroyed on purpose. */
  readonly allowDestroy: boolean;
}

export interface ClusterSettings {
  /** Path of the kubeconfig file; `~/` is the operator's home. */
  readonly kubeconfig: string;
  /** The kubeconfig context to use: always named, never the file's current-context by accident. */
  readonly kubeContext: string;
  /** Where Pulumi reaches OpenBao's API (OPENBAO_ADDR). */
  readonly openbaoAddr: string;
  /** Where pods' CSI provider reaches OpenBao inside the cluster (each SecretProviderClass's openbaoAddress). */
  readonly openbaoClusterAddr: string;
  /** The API server address OpenBao's Kubernetes auth method checks service account tokens against. */
  readonly kubernetesHost: string;
  /** Key of `cert-manager/cloudflare-api-token` that holds the token (what the ClusterIssuer's apiTokenSecretRef names). */
  readonly cloudflareSecretKey: string;
  readonly apps: readonly AppRow[];
}

export interface Checked<T> {
  readonly settings?: T;
  readonly problems: readonly Problem[];
}

const hostnamePattern = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const labelPattern = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Labels the stack itself puts in DNS; a public service may not take one of them. */
export const reservedLabels = ["auth", "netbird", "proxy"] as const;

function isCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split("/");
  const family = isIP(address ?? "");
  if (rest.length > 0 || family === 0 || prefix === undefined || !/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/** A small reader that records what is wrong instead of throwing at the first problem. */
class Reader {
  readonly problems: Problem[] = [];
  constructor(private readonly get: ConfigGetter) {}

  private fail(key: string, problem: string): undefined {
    this.problems.push({ key: `core:${key}`, problem });
    return undefined;
  }

  string(key: string, rule?: { test: (v: string) => boolean; expected: string }, fallback?: string): string | undefined {
    const raw = this.get(key) ?? fallback;
    if (raw === undefined || raw.trim() === "") return this.fail(key, "missing from the stack config");
    if (rule && !rule.test(raw)) return this.fail(key, `expected ${rule.expected}`);
    return raw;
  }

  optionalString(key: string, rule?: { test: (v: string) => boolean; expected: string }): string | undefined {
    const raw = this.get(key);
    if (raw === undefined || raw === "") return undefined;
    if (rule && !rule.test(raw)) return this.fail(key, `expected ${rule.expected}`);
    return raw;
  }

  json(key: string, fallback?: unknown): unknown {
    const raw = this.get(key);
    if (raw === undefined) return fallback === undefined ? this.fail(key, "missing from the stack config") : fallback;
    try {
      return JSON.parse(raw);
    } catch {
      return this.fail(key, "is not a valid list or object");
    }
  }

  list<T>(key: string, item: (value: unknown, where: string) => T | undefined, opts: { nonEmpty?: boolean } = {}): T[] {
    const raw = this.json(key, opts.nonEmpty ? undefined : []);
    if (raw === undefined) return [];
    if (!Array.isArray(raw)) return this.fail(key, "expected a list") ?? [];
    if (opts.nonEmpty && raw.length === 0) return this.fail(key, "expected at least one entry") ?? [];
    return raw.map((v, i) => item(v, `${key}[${i}]`)).filter((v): v is T => v !== undefined);
  }

  cidr(value: unknown, where: string): string | undefined {
    return typeof value === "string" && isCidr(value) ? value : this.fail(where, "expected an address range such as 192.0.2.10/32 or 2001:db8::/64");
  }

  publicService(value: unknown, where: string): PublicService | undefined {
    const v = (value ?? {}) as Record<string, unknown>;
    const name = typeof v.name === "string" ? v.name : "";
    const upstream = typeof v.upstream === "string" ? v.upstream : "";
    const problems = [
      !labelPattern.test(name) && "name: expected one DNS label (a-z, 0-9, -)",
      (reservedLabels as readonly string[]).includes(name) && `name: ${name} is reserved for the stack itself`,
      !/^https?:\/\/[^\s"'$]+$/.test(upstream) && "upstream: expected an http:// or https:// URL",
    ].filter((p): p is string => typeof p === "string");
    for (const p of problems) this.fail(where, p);
    return problems.length === 0 ? { name, upstream } : undefined;
  }

  firewallOpening(value: unknown, where: string): FirewallOpening | undefined {
    const v = (value ?? {}) as Record<string, unknown>;
    const sources = Array.isArray(v.sourceIps) ? v.sourceIps : [];
    const problems = [
      v.protocol !== "tcp" && v.protocol !== "udp" && "protocol: expected tcp or udp",
      !(typeof v.port === "string" && /^\d{1,5}(-\d{1,5})?$/.test(v.port)) && 'port: expected a port or range as a string, such as "8443" or "60000-60100"',
      (sources.length === 0 || !sources.every((s) => typeof s === "string" && isCidr(s))) && "sourceIps: expected a non-empty list of address ranges",
      typeof v.description !== "string" && "description: expected a short text saying why it is open",
    ].filter((p): p is string => typeof p === "string");
    for (const p of problems) this.fail(where, p);
    return problems.length === 0
      ? { protocol: v.protocol as "tcp" | "udp", port: v.port as string, sourceIps: sources as string[], description: v.description as string }
      : undefined;
  }
}

/** A host name or IPv4 address, or an IPv6 address in brackets; then an optional port. */
const url = {
  test: (v: string) => /^https?:\/\/(?:[^\s"'$/:[\]]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?\/?$/.test(v),
  expected: "an http:// or https:// address without a path, such as https://openbao.example.net:8200",
};

const email = { test: (v: string) => /^[^\s@"'$]+@[^\s@"'$]+\.[^\s@"'$]+$/.test(v), expected: "an e-mail address" };

/**
 * A GitHub OAuth app's client id (`Ov23li…`, 20 characters; older apps 20 hex digits) or a
 * GitHub App's (`Iv1.` + 16 hex digits, `Iv23li…`): letters, digits, `.`, `_`, `-`.
 */
const githubClientId = { test: (v: string) => /^[A-Za-z0-9._-]{8,64}$/.test(v), expected: "a GitHub OAuth client id (8 to 64 characters [A-Za-z0-9._-], such as Ov23li…)" };

/** A GitHub account or organisation name: up to 39 letters, digits and single inner hyphens. */
const githubOrg = { test: (v: string) => /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/.test(v), expected: "a GitHub organisation name (up to 39 letters, digits and single hyphens inside)" };

const trueOrFalse = { test: (v: string) => v === "true" || v === "false", expected: "true or false" };

const hostname = { test: (v: string) => hostnamePattern.test(v), expected: "a lower-case DNS name such as example.org" };

export function checkHetznerSettings(get: ConfigGetter): Checked<HetznerSettings> {
  const r = new Reader(get);
  const domain = r.string("domain", hostname);
  const cloudflareZone = r.string("cloudflareZone", hostname);
  if (domain && cloudflareZone && domain !== cloudflareZone && !domain.endsWith(`.${cloudflareZone}`)) {
    r.problems.push({ key: "core:domain", problem: "must be the Cloudflare zone or a name inside it (core:cloudflareZone)" });
  }
  const settings = {
    name: r.string("name", { test: (v) => labelPattern.test(v), expected: "one DNS label (a-z, 0-9, -)" }, "bifrost"),
    domain,
    cloudflareZone,
    acmeEmail: r.string("acmeEmail", email),
    netbirdOwnerEmail: r.string("netbirdOwnerEmail", email),
    netbirdUserApproval: r.string("netbirdUserApproval", trueOrFalse, "true") === "true",
    // Authentik's Group.name is a CharField of 80 (authentik/core/models.py); the blueprint reads
    // it through !Env, so it stays to characters no quoting layer touches.
    netbirdUsersGroup: r.string("netbirdUsersGroup", { test: (v) => /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,79}$/.test(v), expected: "an Authentik group name: 1 to 80 letters, digits, spaces, '.', '_' or '-'" }, "netbird-users"),
    authentikGithubClientId: r.optionalString("authentikGithubClientId", githubClientId),
    authentikGithubOrg: r.optionalString("authentikGithubOrg", githubOrg),
    serverType: r.string("serverType"),
    image: r.string("image"),
    sshPublicKey: r.string("sshPublicKey", {
      test: (v) => /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/.test(v),
      expected: "an OpenSSH public key line (ssh-ed25519 AAAA…)",
    }),
    sshUser: r.string("sshUser", { test: (v) => v === "root", expected: "root: the bootstrap writes /etc/bifrost, mounts the volume and runs Docker as root, and nothing uses sudo" }, "root"),
    sshPrivateKeyPath: r.optionalString("sshPrivateKeyPath"),
    operatorSshSources: r.list("operatorSshSources", (v, w) => r.cidr(v, w), { nonEmpty: true }),
    netbirdAdminSources: r.list("netbirdAdminSources", (v, w) => r.cidr(v, w)),
    authentikAdminSources: r.list("authentikAdminSources", (v, w) => r.cidr(v, w)),
    publicServices: r.list("publicServices", (v, w) => r.publicService(v, w)),
    extraFirewallRules: r.list("extraFirewallRules", (v, w) => r.firewallOpening(v, w)),
    dataRoot: r.string("dataRoot", { test: (v) => /^\/[A-Za-z0-9._/-]+$/.test(v), expected: "an absolute path" }, "/var/lib/bifrost"),
    networkSubnet: r.string(
      "networkSubnet",
      { test: (v) => traefikAddress(v) !== undefined, expected: "an IPv4 network from /16 to /28 written as its first address, such as 172.30.0.0/24, that no other network of the server uses" },
      "172.30.0.0/24",
    ),
    databaseSubnet: r.string(
      "databaseSubnet",
      { test: (v) => ipv4Network(v) !== undefined, expected: "an IPv4 network from /16 to /28 written as its first address, such as 172.30.1.0/24, that no other network of the server uses" },
      "172.30.1.0/24",
    ),
    dataStack: r.string("dataStack", { test: (v) => /^[\w.-]+\/[\w.-]+\/[\w.-]+$/.test(v), expected: "a fully qualified stack name, org/project/stack" }),
  };
  if (settings.networkSubnet !== undefined && settings.databaseSubnet !== undefined && networksOverlap(settings.networkSubnet, settings.databaseSubnet)) {
    r.problems.push({ key: "core:databaseSubnet", problem: "overlaps core:networkSubnet: the two Compose networks need separate ranges" });
  }
  return r.problems.length > 0 ? { problems: r.problems } : { settings: settings as HetznerSettings, problems: [] };
}

export function checkHetznerDataSettings(get: ConfigGetter): Checked<HetznerDataSettings> {
  const r = new Reader(get);
  const settings = {
    name: r.string("name", { test: (v) => labelPattern.test(v), expected: "one DNS label (a-z, 0-9, -)" }, "bifrost"),
    location: r.string("location"),
    volumeSizeGb: Number(r.string("volumeSizeGb", { test: (v) => /^\d+$/.test(v) && Number(v) >= 10 && Number(v) <= 10240, expected: "a whole number of GB from 10 to 10240" })),
    allowDestroy: r.string("allowDestroy", trueOrFalse, "false") === "true",
  };
  return r.problems.length > 0 ? { problems: r.problems } : { settings: settings as HetznerDataSettings, problems: [] };
}

/** The operator's own kubeconfig, when core:kubeconfig is not set. */
export const defaultKubeconfig = "~/.kube/config";

export function checkClusterSettings(get: ConfigGetter): Checked<ClusterSettings> {
  const r = new Reader(get);
  const settings = {
    kubeconfig: r.string("kubeconfig", undefined, defaultKubeconfig),
    kubeContext: r.string("kubeContext"),
    openbaoAddr: r.string("openbaoAddr", url),
    openbaoClusterAddr: r.string("openbaoClusterAddr", url, "http://openbao.openbao.svc:8200"),
    kubernetesHost: r.string("kubernetesHost", url, "https://kubernetes.default.svc"),
    cloudflareSecretKey: r.string("cloudflareSecretKey", { test: (v) => /^[-._a-zA-Z0-9]{1,253}$/.test(v), expected: "a Secret key (letters, digits, '-', '_', '.')" }, "CLOUDFLARE_API_TOKEN"),
    apps: r.list("apps", (value, where) => {
      const parsed = parseAppRow(value);
      for (const p of parsed.problems) r.problems.push({ key: `core:${where}`, problem: p });
      return parsed.row;
    }, { nonEmpty: true }),
  };
  for (const p of tableProblems(settings.apps)) r.problems.push({ key: "core:apps", problem: p });
  return r.problems.length > 0 ? { problems: r.problems } : { settings: settings as ClusterSettings, problems: [] };
}

/**
 * Authentik's GitHub login needs both halves: the client id (stack config) and the client
 * secret (SOPS). One without the other is a mistake, reported with the others; `hasSecret`
 * is whether the environment carries the secret at all (a malformed one is reported by the
 * secret check already).
 */
export function checkGithubLogin(secretKey: string, hasSecret: boolean, clientId: string | undefined, org?: string): Problem[] {
  const idKey = "core:authentikGithubClientId";
  if (org !== undefined && !hasSecret && clientId === undefined) {
    return [{ key: "core:authentikGithubOrg", problem: `set while the GitHub login is off: it needs ${idKey} and ${secretKey}` }];
  }
  if (hasSecret && clientId === undefined) {
    return [{ key: idKey, problem: `missing from the stack config while ${secretKey} is set: the GitHub login needs both, or neither` }];
  }
  if (!hasSecret && clientId !== undefined) {
    return [{ key: secretKey, problem: `missing from secrets/bootstrap.sops.yaml while ${idKey} is set: the GitHub login needs both, or neither` }];
  }
  return [];
}

/**
 * The settings the VPS files carry, from the hetzner stack's checked config and the data
 * stack's volume id (a number from a Pulumi run, or a placeholder naming it offline).
 */
export function vpsSettingsOf(s: HetznerSettings, volumeId: number | string): VpsSettings {
  return {
    domain: s.domain,
    acmeEmail: s.acmeEmail,
    netbirdOwnerEmail: s.netbirdOwnerEmail,
    netbirdUserApproval: s.netbirdUserApproval,
    netbirdUsersGroup: s.netbirdUsersGroup,
    authentikGithubClientId: s.authentikGithubClientId,
    authentikGithubOrg: s.authentikGithubOrg,
    netbirdAdminSources: s.netbirdAdminSources,
    authentikAdminSources: s.authentikAdminSources,
    publicServices: s.publicServices,
    dataRoot: s.dataRoot,
    networkSubnet: s.networkSubnet,
    traefikAddress: traefikAddress(s.networkSubnet) as string,
    databaseSubnet: s.databaseSubnet,
    // Hetzner's stable name for a volume's block device, whatever order the kernel finds it in.
    volumeDevice: `/dev/disk/by-id/scsi-0HC_Volume_${volumeId}`,
  };
}

/**
 * An IPv4 network written as its first address with a prefix from 16 to 28 (no host bits set),
 * as its first address and size; undefined for anything else.
 */
function ipv4Network(subnet: string): { first: number; size: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix < 16 || prefix > 28) return undefined;
  const first = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  return first % size === 0 ? { first, size } : undefined;
}

/** Whether two networks share an address; false when either is not a network (reported on its own). */
export function networksOverlap(a: string, b: string): boolean {
  const x = ipv4Network(a);
  const y = ipv4Network(b);
  if (!x || !y) return false;
  return x.first < y.first + y.size && y.first < x.first + x.size;
}

/**
 * Traefik's fixed address in the Compose network: the subnet's 10th address, as NetBird's
 * getting-started.sh gives Traefik 172.30.0.10. Undefined when `subnet` is not an IPv4 network
 * (prefix 16 to 28, no host bits set).
 */
export function traefikAddress(subnet: string): string | undefined {
  const network = ipv4Network(subnet);
  if (!network) return undefined;
  const address = network.first + 10;
  return [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join(".");
}
