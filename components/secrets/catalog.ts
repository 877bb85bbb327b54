/**
 * The secret catalog: the one place that lists secrets. Validation, rendering, triggers,
 * the `just` tooling, the README's "what lives where" table and the tests all derive from
 * this table; nothing else may name a secret.
 */

/** Stack kinds that read bootstrap-tier secrets from the SOPS environment. */
export type StackKind = "hetzner" | "hetzner-data" | "cluster";
/** Every stack kind, for tools that read a kind from a stack file. */
export const stackKinds: readonly StackKind[] = ["hetzner", "hetzner-data", "cluster"];

/** The two files the program renders onto the VPS. */
export type VpsFile = ".secrets.env" | ".env";

/**
 * Where a secret ends up. `program` means it is only used by Pulumi providers; `elsewhere`
 * means it sits in the SOPS file for a tool outside this program, which never delivers it;
 * `state backend` means the Pulumi CLI itself reads it from the environment (no resource does);
 * `user data` means the server's cloud-init user data, a secret input of the server;
 * `SOPS only` means it is kept for the operator and delivered nowhere (a stack may check it is there).
 */
export type Destination = VpsFile | "program" | "cluster" | "elsewhere" | "state backend" | "user data" | "SOPS only";

/** Services of cloud/bifrost/docker-compose.yml. */
export const composeServices = [
  "traefik",
  "authentik-postgres",
  "authentik-server",
  "authentik-worker",
  "netbird-server",
  "netbird-dashboard",
  "netbird-proxy",
  "netbird-agent",
] as const;
export type ComposeService = (typeof composeServices)[number];

export type Rotation =
  | { kind: "yes"; note?: string }
  /** The value here is used once (e.g. to create an account); changing it means changing it in that system. */
  | { kind: "only through"; system: string; note: string }
  | { kind: "with care"; note: string }
  | { kind: "never"; note: string };

export interface Format {
  /** What the value must look like, as shown to the operator. Never mentions a value. */
  readonly rule: string;
  readonly test: (value: string) => boolean;
  /** The parts of the rule a value breaks, each named without the value (a rule of several parts). */
  readonly failed?: (value: string) => readonly string[];
}

export type Generator =
  | { readonly kind: "password"; readonly length: number; readonly alphabet: "alphanumeric" }
  /** @pulumi/tls's PrivateKey: a key pair, the private half as the secret. */
  | { readonly kind: "ssh key"; readonly algorithm: "ED25519" }
  | { readonly kind: "random bytes"; readonly bytes: number; readonly encoding: "base64" | "hex" };

export interface CatalogEntry {
  /** Key in secrets/bootstrap.sops.yaml (and so the environment variable `sops exec-env` sets). */
  readonly key: string;
  /** How consumers receive it, as shown in the README. */
  readonly deliveredAs: string;
  /** Where it ends up. */
  readonly where: readonly Destination[];
  /**
   * Stacks that refuse to run without it. Empty for optional entries; for a
   * generated entry, the stack that generates it (so it is always there).
   */
  readonly requiredFor: readonly StackKind[];
  /** Set on optional entries: the stacks that use it when present, and what happens without it. */
  readonly optional?: { readonly for: readonly StackKind[]; readonly without: string };
  /**
   * `sops`: read from the SOPS environment and validated.
   * `generated`: made by the stack itself with @pulumi/random or @pulumi/tls (a secret in
   * Pulumi state), so never in SOPS and never validated; rendered, documented and
   * fingerprinted like the rest.
   */
  readonly source: "sops" | "generated";
  /**
   * How a value is made, as data. `password`: what @pulumi/random's RandomPassword is asked
   * for (generated entries). `random bytes`: what `just secrets new|rotate` draws from the
   * operating system's CSPRNG and how it encodes them (SOPS entries nobody has to obtain elsewhere).
   */
  readonly generator?: Generator;
  /** Absent for entries kept for others (never read here). For generated ones, what the generator guarantees. */
  readonly format?: Format;
  /** How an operator obtains a value that no generator makes (a shell command or where to click). */
  readonly generate?: string;
  readonly rotation: Rotation;
  /** Compose services whose configuration references this secret (environment or a mounted rendered file). */
  readonly consumers: readonly ComposeService[];
  /**
   * A narrower key that, when the SOPS file has it, goes to the VPS in this one's place: this
   * one then stays off the VPS (its other destinations unchanged).
   */
  readonly replacedOnVpsBy?: string;
}

const base64Bytes = (value: string): number | undefined => {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value)) return undefined;
  return Buffer.from(value, "base64").length;
};

/** GitHub's login through Authentik: AUTHENTIK_GITHUB_SECRET here, its client id in stack config (core:authentikGithubClientId). */
export const githubSecretKey = "AUTHENTIK_GITHUB_SECRET";

/**
 * A password the env files carry between quotes: printable ASCII without a quote, a length
 * range, and for Postgres not shaped like a verifier. `failed` names the parts a value breaks.
 */
function passwordFormat(min: number, max?: number, notPostgresHash = false): Format {
  const parts: readonly { rule: string; broken: (v: string) => boolean }[] = [
    max === undefined
      ? { rule: `at least ${min} characters`, broken: (v) => v.length < min }
      : { rule: `${min} to ${max} characters`, broken: (v) => v.length < min || v.length > max },
    { rule: "printable ASCII only", broken: (v) => !/^[\x20-\x7e]*$/.test(v) },
    { rule: "no quote (' or \")", broken: (v) => /["']/.test(v) },
    ...(notPostgresHash
      ? [
          { rule: "not shaped like an MD5 verifier (md5 + 32 hex)", broken: (v: string) => /^md5[0-9a-f]{32}$/.test(v) },
          { rule: "not shaped like a SCRAM verifier (SCRAM-SHA-256$…)", broken: (v: string) => v.startsWith("SCRAM-SHA-256$") },
        ]
      : []),
  ];
  const failed = (v: string) => parts.filter((p) => p.broken(v)).map((p) => p.rule);
  return { rule: parts.map((p) => p.rule).join(", "), test: (v) => failed(v).length === 0, failed };
}

export const catalog: readonly CatalogEntry[] = [
  {
    key: "HCLOUD_TOKEN",
    deliveredAs: "hcloud provider token",
    where: ["program"],
    requiredFor: ["hetzner", "hetzner-data"],
    source: "sops",
    format: { rule: "exactly 64 characters [A-Za-z0-9]", test: (v) => /^[A-Za-z0-9]{64}$/.test(v) },
    generate: "Hetzner Cloud console → project → Security → API tokens → Generate (Read & Write)",
    rotation: { kind: "yes" },
    consumers: [],
  },
  {
    key: "CLOUDFLARE_API_TOKEN",
    deliveredAs: "cloudflare provider; k8s `cert-manager/cloudflare-api-token`; Traefik's CF_DNS_API_TOKEN (ACME DNS-01) unless CLOUDFLARE_DNS_TOKEN is set",
    where: [".secrets.env", "program", "cluster"],
    requiredFor: ["hetzner", "cluster"],
    source: "sops",
    format: { rule: "at least 40 characters [A-Za-z0-9_-]", test: (v) => /^[A-Za-z0-9_-]{40,}$/.test(v) },
    generate: "Cloudflare dashboard → My Profile → API Tokens → Create (Zone:Zone:Read + Zone:DNS:Edit on the zone)",
    rotation: { kind: "yes" },
    consumers: ["traefik"],
    replacedOnVpsBy: "CLOUDFLARE_DNS_TOKEN",
  },
  {
    // The internet-facing VPS then holds a token that can only edit DNS records, not the one
    // Pulumi uses to manage the zone (and, for the cluster, cert-manager's). Traefik's ACME
    // client is lego: CF_DNS_API_TOKEN "with DNS:Edit permission", CF_ZONE_API_TOKEN "with
    // Zone:Read" defaulting to the same token (go-acme/lego docs/content/dns/zz_gen_cloudflare.md),
    // so one token with both permissions on this zone serves.
    key: "CLOUDFLARE_DNS_TOKEN",
    deliveredAs: "Traefik's CF_DNS_API_TOKEN (ACME DNS-01), in place of CLOUDFLARE_API_TOKEN, which then stays off the VPS",
    where: [".secrets.env"],
    requiredFor: [],
    optional: { for: ["hetzner"], without: "Traefik uses CLOUDFLARE_API_TOKEN, which then goes to the VPS" },
    source: "sops",
    format: { rule: "at least 40 characters [A-Za-z0-9_-]", test: (v) => /^[A-Za-z0-9_-]{40,}$/.test(v) },
    generate: "Cloudflare dashboard → My Profile → API Tokens → Create (Zone:Zone:Read + Zone:DNS:Edit, this zone only)",
    rotation: { kind: "yes" },
    consumers: ["traefik"],
  },
  {
    key: "AUTHENTIK_TOKEN",
    deliveredAs: "AUTHENTIK_BOOTSTRAP_TOKEN; the key of Authentik's own `authentik-bootstrap-token`, which Authentik creates at its first start; the bootstrap's only API token",
    where: [".secrets.env"],
    requiredFor: ["hetzner"],
    source: "sops",
    format: { rule: "at least 32 characters [A-Za-z0-9]", test: (v) => /^[A-Za-z0-9]{32,}$/.test(v) },
    generator: { kind: "random bytes", bytes: 32, encoding: "hex" },
    rotation: { kind: "yes", note: "the bootstrap sets the new key on that same token and removes any other token it made: the old key stops working" },
    consumers: ["authentik-server", "authentik-worker"],
  },
  {
    // Authentik's bootstrap blueprint (blueprints/system/bootstrap.yaml) sets akadmin's
    // password from this variable when it creates the user, so the initial-setup flow is
    // closed from the first start; without it whoever reaches auth.<domain> first becomes
    // admin. Authentik reads it only at first start (website/docs/install-config/
    // automated-install.mdx), so the bootstrap sets akadmin's password itself when it changed.
    key: "AUTHENTIK_BOOTSTRAP_PASSWORD",
    deliveredAs: "akadmin's password, as AUTHENTIK_BOOTSTRAP_PASSWORD (closes Authentik's first-run setup)",
    where: [".secrets.env"],
    requiredFor: ["hetzner"],
    source: "sops",
    format: passwordFormat(16),
    generator: { kind: "random bytes", bytes: 24, encoding: "base64" },
    rotation: { kind: "yes", note: "the bootstrap sets akadmin's password (ak shell)" },
    consumers: ["authentik-server", "authentik-worker"],
  },
  {
    // NetBird's /api/setup creates the owner with this password and refuses one longer than
    // 72 bytes, bcrypt's limit (netbirdio/netbird management/server/instance/manager.go).
    // The bootstrap uses it once; after that NetBird alone knows the owner's password.
    key: "NB_OWNER_PASSWORD",
    deliveredAs: "NetBird's local owner (break-glass login, e-mail core:netbirdOwnerEmail), set once by the bootstrap through `/api/setup`",
    where: [".secrets.env"],
    requiredFor: ["hetzner"],
    source: "sops",
    format: passwordFormat(12, 72),
    generator: { kind: "random bytes", bytes: 24, encoding: "base64" },
    rotation: { kind: "only through", system: "NetBird", note: "`/api/setup` uses it once; change the owner's password in NetBird" },
    consumers: [],
  },
  {
    key: "AUTHENTIK_SECRET_KEY",
    deliveredAs: "AUTHENTIK_SECRET_KEY",
    where: [".env"],
    requiredFor: ["hetzner"],
    source: "sops",
    format: passwordFormat(50),
    generator: { kind: "random bytes", bytes: 60, encoding: "base64" },
    rotation: { kind: "with care", note: "sessions end" },
    consumers: ["authentik-server", "authentik-worker"],
  },
  {
    key: "AUTHENTIK_POSTGRESQL_PASSWORD",
    deliveredAs: "AUTHENTIK_POSTGRESQL_PASSWORD (also POSTGRES_PASSWORD)",
    where: [".env"],
    requiredFor: ["hetzner"],
    source: "sops",
    // PostgreSQL stores a password that already looks like an MD5 or SCRAM verifier as that
    // verifier (postgres src/backend/libpq/crypt.c, get_password_type): nobody could log in.
    format: passwordFormat(16, undefined, true),
    generator: { kind: "random bytes", bytes: 36, encoding: "base64" },
    rotation: {
      kind: "with care",
      note: "Postgres only reads it at first init; the bootstrap changes the role's password in the database",
    },
    consumers: ["authentik-postgres", "authentik-server", "authentik-worker"],
  },
  {
    key: "NB_DATA_STORE_KEY",
    deliveredAs: "store.encryptionKey in NetBird config",
    where: [".secrets.env"],
    requiredFor: ["hetzner"],
    source: "sops",
    format: { rule: "base64 of exactly 32 bytes", test: (v) => base64Bytes(v) === 32 },
    generator: { kind: "random bytes", bytes: 32, encoding: "base64" },
    rotation: { kind: "never", note: "NetBird's database is encrypted with it" },
    consumers: ["netbird-server"],
  },
  {
    key: "NB_RELAY_SECRET",
    deliveredAs: "authSecret in NetBird config",
    where: [".secrets.env"],
    requiredFor: ["hetzner"],
    source: "sops",
    format: { rule: "base64 of at least 32 bytes", test: (v) => (base64Bytes(v) ?? 0) >= 32 },
    generator: { kind: "random bytes", bytes: 32, encoding: "base64" },
    rotation: { kind: "yes", note: "all peers reconnect" },
    consumers: ["netbird-server"],
  },
  {
    // Machine to machine: nobody types it, so the hetzner stack generates it (secret in
    // state) instead of asking for a SOPS key. Alphanumeric only, so it survives every
    // quoting layer between .secrets.env, Compose, the blueprint's !Env and NetBird's API.
    key: "NB_AUTHENTIK_CLIENT_SECRET",
    deliveredAs: "client secret of NetBird's OAuth2 client in Authentik (the blueprint reads it with `!Env`; the bootstrap registers it in NetBird)",
    where: [".secrets.env"],
    requiredFor: ["hetzner"],
    source: "generated",
    generator: { kind: "password", length: 64, alphabet: "alphanumeric" },
    format: { rule: "exactly 64 characters [A-Za-z0-9] (generated)", test: (v) => /^[A-Za-z0-9]{64}$/.test(v) },
    generate: "generated by the hetzner stack (@pulumi/random RandomPassword)",
    rotation: { kind: "yes", note: "replace the random resource (`pulumi up --replace <urn>`); the bootstrap updates Authentik and NetBird" },
    consumers: ["authentik-server", "authentik-worker"],
  },
  {
    // The key NetBird's embedded IdP (Dex) encrypts its session cookies with (netbird v0.77.1
    // management/server/idp/embedded.go resolveSessionCookieEncryptionKey: 16, 24 or 32 bytes,
    // raw or base64; unset, Dex keeps sessions without that encryption). Upstream's
    // infrastructure_files/getting-started.sh makes one with `openssl rand -base64 32`; here the
    // stack generates it: 32 alphanumerics are 32 raw bytes and need no quoting anywhere.
    key: "NB_SESSION_COOKIE_KEY",
    deliveredAs: "sessionCookieEncryptionKey in NetBird config (the embedded IdP's session cookies)",
    where: [".secrets.env"],
    requiredFor: ["hetzner"],
    source: "generated",
    generator: { kind: "password", length: 32, alphabet: "alphanumeric" },
    format: { rule: "exactly 32 characters [A-Za-z0-9] (generated)", test: (v) => /^[A-Za-z0-9]{32}$/.test(v) },
    generate: "generated by the hetzner stack (@pulumi/random RandomPassword)",
    rotation: { kind: "yes", note: "replace the random resource (`pulumi up --replace <urn>`); every login session of NetBird's embedded IdP ends and users sign in again" },
    consumers: ["netbird-server"],
  },
  {
    // Made by the stack so the first SSH session can already check the server: pulumi-command
    // accepts any host key when it is given none (v1.2.1 provider/pkg/provider/remote/
    // connection.go, SSHConfig), and .env/.secrets.env travel over those sessions.
    key: "BIFROST_SSH_HOST_KEY",
    deliveredAs: "the server's SSH host key (cloud-init `ssh_keys`); its public half is pinned on every SSH connection Pulumi makes and exported as `knownHosts`",
    where: ["user data"],
    requiredFor: ["hetzner"],
    source: "generated",
    generator: { kind: "ssh key", algorithm: "ED25519" },
    format: { rule: "an OpenSSH Ed25519 private key (generated)", test: (v) => /^-----BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END OPENSSH PRIVATE KEY-----\n?$/.test(v) },
    generate: "generated by the hetzner stack (@pulumi/tls PrivateKey)",
    rotation: { kind: "yes", note: "replace the key resource (`pulumi up --replace <urn>`): the user data changes, so the server is replaced (README: Destroy and reprovision); update known_hosts from `knownHosts`" },
    consumers: [],
  },
  {
    key: "NB_PROXY_TOKEN",
    deliveredAs: "netbird-proxy token",
    where: [".secrets.env"],
    requiredFor: [],
    optional: { for: ["hetzner"], without: "the bootstrap mints a proxy token through NetBird's API" },
    source: "sops",
    // A proxy access token, not a PAT: "nbx_" + 30 random base62 characters + a 6-character
    // base62 checksum (management/server/types/proxy_access_token.go, ProxyTokenPrefix and
    // ProxyTokenLength = 40, netbirdio/netbird v0.77.1). `admin token create` is how NetBird's
    // getting-started.sh mints it (combined/cmd/admin.go; management/cmd/token/token.go).
    format: { rule: "a NetBird proxy access token (nbx_ and 36 characters [A-Za-z0-9])", test: (v) => /^nbx_[A-Za-z0-9]{36}$/.test(v) },
    generate: "docker exec netbird-server /go/bin/netbird-server admin token create --name bifrost-proxy --config /etc/netbird/config.yaml (the Token: line)",
    rotation: { kind: "yes" },
    consumers: ["netbird-proxy"],
  },
  {
    key: "NB_BIFROST_SETUP_KEY",
    deliveredAs: "the setup key netbird-agent enrols with, once",
    where: [".secrets.env"],
    requiredFor: [],
    optional: { for: ["hetzner"], without: "the bootstrap makes a one-off setup key for each enrolment and deletes it once the edge's peer is in" },
    source: "sops",
    format: {
      rule: "a NetBird setup key (UUID, 8-4-4-4-12 hex digits)",
      test: (v) => /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/.test(v),
    },
    generate: "NetBird dashboard → Setup Keys → Create Setup Key (one-off, auto-assigned group bifrost-edge)",
    rotation: { kind: "yes" },
    // Read by the bootstrap, which hands it to the agent through a file only while it enrols.
    consumers: [],
  },
  {
    key: githubSecretKey,
    deliveredAs: "client secret of the GitHub OAuth source in Authentik (with its client id in core:authentikGithubClientId)",
    where: [".secrets.env"],
    requiredFor: [],
    optional: { for: ["hetzner"], without: "no GitHub login in Authentik" },
    source: "sops",
    // GitHub shows an OAuth app's client secret once: 40 hex characters today; the rule
    // leaves room for a longer token alphabet rather than lock an operator out.
    format: { rule: "a GitHub OAuth app client secret (at least 40 characters [A-Za-z0-9_])", test: (v) => /^[A-Za-z0-9_]{40,}$/.test(v) },
    generate: "GitHub → Settings → Developer settings → OAuth Apps → New OAuth App → Generate a new client secret",
    rotation: { kind: "yes" },
    consumers: ["authentik-server", "authentik-worker"],
  },
  {
    key: "OPENBAO_UNSEAL_KEY",
    deliveredAs: "k8s `openbao/openbao-unseal-key` (key `unseal-key`), OpenBao's static seal key (cloud/cluster/openbao-values.yaml)",
    where: ["cluster"],
    requiredFor: ["cluster"],
    source: "sops",
    // OpenBao's static seal reads an AES-256 key and picks its encoding by length: 44
    // characters is standard base64 of 32 bytes; 45 (a newline) or 43 fail the server's
    // start ("unknown encoding for AES-256 key") — openbao/go-kms-wrapping
    // wrappers/static/v2.2.0 static.go SetConfig; file:// values are not trimmed (options.go
    // ParsePaths, WithNoTrimSpaces).
    format: {
      rule: "standard base64 of exactly 32 bytes (44 characters, as OpenBao's static seal reads it)",
      test: (v) => v.length === 44 && base64Bytes(v) === 32,
    },
    generator: { kind: "random bytes", bytes: 32, encoding: "base64" },
    rotation: {
      kind: "with care",
      note: "OpenBao must read the old key as its previous_key while it re-wraps its root key: README, The cluster stack, rotating the unseal key",
    },
    consumers: [],
  },
  {
    key: "OPENBAO_RECOVERY_KEY",
    deliveredAs: "kept for `bao operator generate-root` and seal migration; the cluster stack only checks it is there (OpenBao is initialised)",
    where: ["SOPS only"],
    requiredFor: [],
    optional: { for: ["cluster"], without: "OpenBao is not initialised yet: `up` may run without OPENBAO_TOKEN" },
    source: "sops",
    // recovery_keys_b64 of `bao operator init -recovery-shares=1` (openbao v2.6.2
    // command/operator_init.go machineInit): the recovery key itself, base64.
    format: { rule: "base64", test: (v) => (base64Bytes(v) ?? 0) > 0 },
    generate: "just openbao-init",
    rotation: { kind: "with care", note: "bao operator rekey -target=recovery, then store the new key" },
    consumers: [],
  },
  {
    key: "OPENBAO_TOKEN",
    deliveredAs: "@pulumi/vault provider token (cluster stack); `just openbao-init` writes the root token here, replace it with a scoped admin token",
    where: ["program"],
    requiredFor: [],
    optional: {
      for: ["cluster"],
      without: "the stack writes the namespaces, service accounts and bootstrap Secrets and leaves OpenBao unconfigured (the first `up`, before `just openbao-init`); refused once OPENBAO_RECOVERY_KEY is stored",
    },
    source: "sops",
    format: {
      // OpenBao mints service tokens as "hvs." (or "s." with server-side consistent tokens
      // disabled) around 24 base62 characters, longer and base64url when SSC tokens are on
      // (openbao v2.6.2 vault/token_store.go, sdk/helper/consts/token_consts.go, vault/request_handling.go).
      rule: "an OpenBao service token (hvs. or s. and at least 24 characters [A-Za-z0-9_.-])",
      test: (v) => /^(?:hvs|s)\.[A-Za-z0-9_.-]{24,}$/.test(v),
    },
    generate: "just openbao-init",
    rotation: { kind: "yes", note: "create a new token, `just secrets-edit`, revoke the old one" },
    consumers: [],
  },
  {
    // Pulumi's passphrase secrets provider reads it from the environment (pulumi/pulumi
    // pkg/secrets/passphrase/manager.go), which `sops exec-env` sets: scripts/core.sh needs it
    // only when it falls back to the local file backend (no PULUMI_BACKEND_URL, no login).
    key: "PULUMI_CONFIG_PASSPHRASE",
    deliveredAs: "passphrase of the local state backend's secrets provider (Pulumi reads it from the environment)",
    where: ["state backend"],
    requiredFor: [],
    optional: { for: ["hetzner", "hetzner-data", "cluster"], without: "the local state backend is not used" },
    source: "sops",
    format: { rule: "at least 16 printable ASCII characters", test: (v) => v.length >= 16 && /^[\x20-\x7e]*$/.test(v) },
    generator: { kind: "random bytes", bytes: 32, encoding: "base64" },
    rotation: {
      kind: "with care",
      note: "it encrypts every stack's secrets in the local state: re-encrypt each stack with `pulumi stack change-secrets-provider passphrase` (old passphrase in the environment, new one at the prompt), then store the new one",
    },
    consumers: [],
  },
  {
    // Kept in the same SOPS file by the cluster's provisioning, which reads it itself. Listed
    // so `just secrets-check` knows it: it is never validated, rendered or delivered here.
    key: "PROXMOX_PASSWORD",
    deliveredAs: "used elsewhere (cluster provisioning), known so checks do not flag it",
    where: ["elsewhere"],
    requiredFor: [],
    source: "sops",
    rotation: { kind: "only through", system: "cluster provisioning", note: "this program never reads it; rotate it where it is used" },
    consumers: [],
  },
];

/** An entry kept in the SOPS file for a tool outside this program: known, never delivered. */
export const usedElsewhere = (e: CatalogEntry): boolean => e.where.includes("elsewhere");

/** Kept in SOPS for the operator: a stack may check it is there, nothing delivers it. */
export const keptInSopsOnly = (e: CatalogEntry): boolean => e.where.includes("SOPS only");

/** Read by the Pulumi CLI from the environment, never handed to a resource. */
export const forStateBackendOnly = (e: CatalogEntry): boolean => e.where.length === 1 && e.where[0] === "state backend";

/** Every key the SOPS file may hold: what the program reads and what is kept there for others. */
export function sopsKeys(): string[] {
  return catalog.filter((e) => e.source === "sops").map((e) => e.key);
}

export function entry(key: string): CatalogEntry {
  const found = catalog.find((e) => e.key === key);
  if (!found) throw new Error(`${key} is not in the secret catalog`);
  return found;
}

/** Entries a stack handles: read from the SOPS environment (required and optional) or generated by the stack itself. */
export function entriesFor(stack: StackKind): CatalogEntry[] {
  return catalog.filter((e) => e.requiredFor.includes(stack) || e.optional?.for.includes(stack));
}

/** Entries the program reads from the SOPS environment for a stack, and so validates: required and optional. */
export function sopsEntriesFor(stack: StackKind): CatalogEntry[] {
  return entriesFor(stack).filter((e) => e.source === "sops");
}

/** Entries a stack generates itself (@pulumi/random); never in the environment. */
export function generatedEntriesFor(stack: StackKind): CatalogEntry[] {
  return entriesFor(stack).filter((e) => e.source === "generated");
}

/** Entries written into one of the rendered VPS files by the program, SOPS or generated. */
export function entriesIn(file: VpsFile): CatalogEntry[] {
  return catalog.filter((e) => e.where.includes(file));
}

/** Entries the program ships to the VPS in either env file, SOPS or generated, in catalog order. */
export function entriesOnVps(): CatalogEntry[] {
  return catalog.filter((e) => e.where.includes(".env") || e.where.includes(".secrets.env"));
}

/**
 * Entries the VPS receives given which keys the SOPS file has: those on the VPS, less any whose
 * `replacedOnVpsBy` key is present.
 */
export function entriesShipped(present: (key: string) => boolean): CatalogEntry[] {
  return entriesOnVps().filter((e) => !(e.replacedOnVpsBy && present(e.replacedOnVpsBy)));
}

/** Services that are recreated or restarted when `key` changes: its consumers, in compose order. */
export function blastRadius(key: string): ComposeService[] {
  const consumers = new Set<ComposeService>(entry(key).consumers);
  return composeServices.filter((s) => consumers.has(s));
}
