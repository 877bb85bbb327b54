/**
 * The HTTP APIs bootstrap.sh calls, answered as NetBird v0.77.1 and Authentik 2025.10 answer
 * them, behind the loopback ports docker-compose.yml publishes. Each answers only while its
 * container runs and is healthy in the docker double (else the connection is refused, as for
 * a port nobody listens on). Every route cites the upstream handler it imitates; anything
 * else is a 404 that names the unsupported call, so a new call fails loudly.
 *
 * Upstream: netbirdio/netbird v0.77.1 (79a06720b684768b421f0a54f3bb14f22704994f); Authentik
 * 2025.10 (goauthentik/authentik: authentik/blueprints/, authentik/providers/oauth2/api/,
 * authentik/core/api/applications.py, authentik/core/api/tokens.py, authentik/api/authentication.py).
 */
import { randomBytes, randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type * as net from "node:net";
import * as path from "node:path";
import { parseDocument, type ScalarTag, type CollectionTag } from "yaml";

/** What the HTTP doubles need to know of the docker double. */
export interface Containers {
  /** The container's environment when it is up and healthy, else undefined. */
  healthyEnv(name: string): Record<string, string> | undefined;
  /** The host path mounted at `target` in the container, if any. */
  hostPathOf(name: string, target: string): string | undefined;
}

interface Reply {
  status: number;
  body?: unknown;
}

class ApiServer {
  port = 0;
  readonly calls: string[] = [];
  private server?: http.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly container: string,
    private readonly containers: Containers,
    private readonly route: (method: string, url: URL, headers: http.IncomingHttpHeaders, body: unknown) => Reply,
  ) {}

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      // Nobody listens while the container is down or starting: drop the connection.
      if (!this.containers.healthyEnv(this.container)) {
        req.socket.destroy();
        return;
      }
      let raw = "";
      req.on("data", (c) => (raw += c));
      req.on("end", () => {
        const url = new URL(req.url ?? "/", "http://double");
        this.calls.push(`${req.method} ${url.pathname}${url.search}`);
        let reply: Reply;
        try {
          reply = this.route(req.method ?? "GET", url, req.headers, raw ? JSON.parse(raw) : undefined);
        } catch (e) {
          reply = { status: 400, body: { message: `invalid request: ${(e as Error).message}`, code: 400 } };
        }
        res.writeHead(reply.status, { "Content-Type": "application/json" });
        res.end(reply.body === undefined ? "" : JSON.stringify(reply.body));
      });
    });
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

// --- Authentik ---------------------------------------------------------------------------

export interface OAuth2Provider {
  pk: number;
  name: string;
  client_type: string;
  client_id: string;
  client_secret: string;
  redirect_uris: { matching_mode: string; url: string }[];
  authorization_flow: string | null;
  invalidation_flow: string | null;
}
export interface Application {
  pk: string;
  slug: string;
  name: string;
  provider: number | null;
  meta_launch_url: string;
}
export interface OAuthSource {
  slug: string;
  provider_type: string;
  consumer_key: string;
}

/**
 * The objects the NetBird blueprint finds, by the Authentik blueprint instance that makes them
 * (blueprints/default/flow-default-*.yaml, blueprints/system/providers-oauth2.yaml; instance =
 * the file's metadata name).
 */
const objectsMadeBy: Record<string, string> = {
  "authentik_flows.flow slug default-provider-authorization-implicit-consent": "Default - Provider authorization flow (implicit consent)",
  "authentik_flows.flow slug default-provider-invalidation-flow": "Default - Provider invalidation flow",
  "authentik_flows.flow slug default-source-authentication": "Default - Source authentication flow",
  "authentik_flows.flow slug default-source-enrollment": "Default - Source enrollment flow",
  "authentik_providers_oauth2.scopemapping managed goauthentik.io/providers/oauth2/scope-openid": "System - OAuth2 Provider - Scopes",
  "authentik_providers_oauth2.scopemapping managed goauthentik.io/providers/oauth2/scope-email": "System - OAuth2 Provider - Scopes",
  "authentik_providers_oauth2.scopemapping managed goauthentik.io/providers/oauth2/scope-profile": "System - OAuth2 Provider - Scopes",
};

/** The instances of Authentik's own blueprints the NetBird blueprint depends on. */
export const authentikDefaultInstances = [...new Set(Object.values(objectsMadeBy))];

/** Authentik's database as far as the bootstrap touches it (kept by the docker double on the postgres volume). */
export interface AuthentikDb {
  tokens: Record<string, { user: string; key: string; intent: string; expiring: boolean }>;
  discovered: string[];
  applied: string[];
}

/** Authentik's objects that the blueprint makes, and its API over them. */
export class AuthentikDouble {
  readonly providers = new Map<string, OAuth2Provider>();
  readonly applications = new Map<string, Application>();
  readonly sources = new Map<string, OAuthSource>();
  readonly api: ApiServer;
  /** Authentik's database (tokens, discovered and applied blueprint instances), from the docker double. */
  database: () => AuthentikDb = () => ({ tokens: {}, discovered: [], applied: [] });
  /** A metaapplyblueprint entry: applies the named instance if discovered, false otherwise. */
  applyInstance: (name: string) => boolean = () => false;
  private nextPk = 1;

  constructor(containers: Containers) {
    this.api = new ApiServer("authentik-server", containers, (method, url, headers) => this.route(method, url, headers));
  }

  /**
   * `ak apply_blueprint FILE` (authentik/blueprints/management/commands/apply_blueprint.py):
   * the file is read and its tags resolved in the running container (`!Env` reads that
   * container's environment: authentik/blueprints/v1/common.py EnvTag); entries whose
   * `conditions` are not all truthy are skipped (BlueprintEntry.check_all_conditions);
   * identifiers find the object to update, attrs are set on it (importer.py, state present).
   * Only the models of our blueprint are understood: any other model fails loudly.
   */
  applyBlueprint(file: string, env: Record<string, string>): string {
    if (!fs.existsSync(file)) return `Blueprint invalid: file ${file} not found`;
    const tags = blueprintTags(env);
    const doc = parseDocument(fs.readFileSync(file, "utf8"), { customTags: tags });
    if (doc.errors.length) return `Blueprint invalid: ${doc.errors[0].message}`;
    const blueprint = doc.toJS() as { version: number; entries: BlueprintEntry[] };
    if (blueprint.version !== 1) return "Blueprint invalid: version";
    const ids = new Map<string, number>();
    // authentik/blueprints/v1/importer.py validate(): the whole import runs once in a rolled-back
    // transaction, and any entry's serializer error makes `ak apply_blueprint` print "Blueprint
    // invalid" and exit 1 (management/commands/apply_blueprint.py).
    for (const entry of blueprint.entries) {
      if ((entry.conditions ?? []).some((c) => !truthy(c))) continue;
      const attrs = resolveRefs(entry.attrs ?? {}, ids, (model, field, value) => this.find(model, field, value)) as Record<string, unknown>;
      const identifiers = entry.identifiers ?? {};
      switch (entry.model) {
        case "authentik_blueprints.metaapplyblueprint": {
          const name = String((attrs.identifiers as Record<string, unknown> | undefined)?.name ?? "");
          if (!this.applyInstance(name) && attrs.required !== false)
            return `Blueprint invalid\n\tauthentik.blueprints.v1.importer: entry invalid: {'identifiers': 'Required blueprint does not exist'}: ${name}`;
          break;
        }
        case "authentik_providers_oauth2.oauth2provider": {
          const name = String(identifiers.name);
          const existing = this.providers.get(name);
          // authentik/providers/oauth2/api/providers.py: both flows are required foreign keys.
          for (const flow of ["authorization_flow", "invalidation_flow"])
            if (attrs[flow] === null || attrs[flow] === undefined)
              return `Blueprint invalid\n\tauthentik.blueprints.v1.importer: entry invalid: {'${flow}': ['This field may not be null.']}`;
          const provider: OAuth2Provider = {
            pk: existing?.pk ?? this.nextPk++,
            name,
            client_type: String(attrs.client_type ?? "confidential"),
            client_id: String(attrs.client_id),
            client_secret: String(attrs.client_secret),
            redirect_uris: (attrs.redirect_uris ?? []) as OAuth2Provider["redirect_uris"],
            authorization_flow: String(attrs.authorization_flow),
            invalidation_flow: String(attrs.invalidation_flow),
          };
          this.providers.set(name, provider);
          if (entry.id) ids.set(entry.id, provider.pk);
          break;
        }
        case "authentik_core.application": {
          const slug = String(identifiers.slug);
          this.applications.set(slug, {
            pk: this.applications.get(slug)?.pk ?? randomUUID(),
            slug,
            name: String(attrs.name),
            provider: (attrs.provider as number | undefined) ?? null,
            meta_launch_url: String(attrs.meta_launch_url ?? ""),
          });
          break;
        }
        case "authentik_sources_oauth.oauthsource":
          this.sources.set(String(identifiers.slug), { slug: String(identifiers.slug), provider_type: String(attrs.provider_type), consumer_key: String(attrs.consumer_key) });
          break;
        case "authentik_stages_identification.identificationstage":
          break;
        default:
          return `Blueprint invalid: the docker double does not know model ${entry.model}`;
      }
    }
    return "";
  }

  /**
   * `!Find [model, [field, value]]`: the pk of the first match, or None (authentik/blueprints/v1/
   * common.py Find). Flows and scope mappings exist once the blueprint instance that makes them
   * was applied; the self-signed certificate from authentik-server's first start on.
   */
  private find(model: string, field: string, value: string): string | null {
    const key = `${model} ${field} ${value}`;
    if (key === "authentik_crypto.certificatekeypair name authentik Self-signed Certificate") return `pk:${key}`;
    const instance = objectsMadeBy[key];
    if (!instance) throw new Error(`docker double: !Find of ${key} is not modelled`);
    return this.database().applied.includes(instance) ? `pk:${key}` : null;
  }

  /** The issuer of a provider's application (per-provider issuer mode: authentik/providers/oauth2/models.py get_issuer). */
  issuerFor(slug: string, domain: string): string | undefined {
    return this.applications.get(slug)?.provider ? `https://auth.${domain}/application/o/${slug}/` : undefined;
  }

  private route(method: string, url: URL, headers: http.IncomingHttpHeaders): Reply {
    // Token auth (authentik/api/authentication.py): no header → 403 "not provided"; a bearer key
    // that no non-expired API-intent token carries → AuthenticationFailed, which DRF answers
    // with 403 (TokenAuthentication has no authenticate_header).
    const auth = headers.authorization ?? "";
    if (!auth) return { status: 403, body: { detail: "Authentication credentials were not provided." } };
    const db = this.database();
    if (!auth.startsWith("Bearer ") || !Object.values(db.tokens).some((t) => t.intent === "api" && t.key === auth.slice(7))) return { status: 403, body: { detail: "Token invalid/expired" } };
    // GET /api/v3/core/users/me/ (authentik/core/api/users.py UserViewSet.me).
    if (method === "GET" && url.pathname === "/api/v3/core/users/me/") return { status: 200, body: { user: { username: "akadmin", is_superuser: true } } };
    // GET /api/v3/core/tokens/?identifier=… (authentik/core/api/tokens.py TokenViewSet: filterset
    // identifier; the key is never listed, only view_key shows it).
    if (method === "GET" && url.pathname === "/api/v3/core/tokens/") {
      const identifier = url.searchParams.get("identifier");
      const results = Object.entries(db.tokens)
        .filter(([id]) => identifier === null || id === identifier)
        .map(([id, t]) => ({ identifier: id, intent: t.intent, user_obj: { username: t.user } }));
      return { status: 200, body: { pagination: { count: results.length }, results } };
    }
    // GET /api/v3/providers/oauth2/?client_id=… (authentik/providers/oauth2/api/providers.py
    // OAuth2ProviderViewSet, filterset client_id; paginated {pagination, results}).
    if (method === "GET" && url.pathname === "/api/v3/providers/oauth2/") {
      const clientId = url.searchParams.get("client_id");
      const results = [...this.providers.values()].filter((p) => clientId === null || p.client_id === clientId);
      return { status: 200, body: { pagination: { count: results.length }, results } };
    }
    // GET /api/v3/core/applications/<slug>/ (authentik/core/api/applications.py, lookup_field slug).
    const app = /^\/api\/v3\/core\/applications\/([^/]+)\/$/.exec(url.pathname);
    if (method === "GET" && app) {
      const found = this.applications.get(app[1]);
      return found ? { status: 200, body: found } : { status: 404, body: { detail: "Not found." } };
    }
    return { status: 404, body: { detail: `docker double: unsupported Authentik call ${method} ${url.pathname}` } };
  }
}

interface BlueprintEntry {
  model: string;
  id?: string;
  identifiers?: Record<string, unknown>;
  attrs?: Record<string, unknown>;
  conditions?: unknown[];
}

const keyOf = (id: string) => ({ __keyOf: id });

type Finder = (model: string, field: string, value: string) => string | null;

/** Tags that look objects up resolve when their entry is applied (BlueprintEntry.get_attrs), not when the file is read. */
function resolveRefs(value: unknown, ids: Map<string, number>, find: Finder): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveRefs(v, ids, find));
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (typeof o.__keyOf === "string") return ids.get(o.__keyOf) ?? null;
    if (Array.isArray(o.__find)) {
      const [model, [field, v]] = o.__find as [string, [string, string]];
      return find(model, field, v);
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolveRefs(v, ids, find)]));
  }
  return value;
}

const truthy = (v: unknown) => !(v === "" || v === null || v === undefined || v === false || v === 0);

/** The YAML tags of Authentik's blueprints (authentik/blueprints/v1/common.py), as far as the double needs them. */
function blueprintTags(env: Record<string, string>): (ScalarTag | CollectionTag)[] {
  const envValue = (node: unknown) => {
    const [name, fallback] = Array.isArray(node) ? node : [node, ""];
    return env[String(name)] ?? String(fallback ?? "");
  };
  return [
    { tag: "!Env", resolve: (s: string) => envValue(s) } as ScalarTag,
    { tag: "!Env", collection: "seq", resolve: (seq) => envValue((seq as unknown as { toJSON(): unknown[] }).toJSON()) } as CollectionTag,
    // A lookup, resolved when its entry is applied (see resolveRefs).
    { tag: "!Find", collection: "seq", resolve: (seq: unknown) => ({ __find: (seq as { toJSON(): unknown }).toJSON() }) } as unknown as CollectionTag,
    { tag: "!KeyOf", resolve: (s: string) => keyOf(s) } as unknown as ScalarTag,
    // !Condition [MODE, args…]: AND = all(bool(arg)), OR = any (common.py Condition).
    {
      tag: "!Condition",
      collection: "seq",
      resolve: (seq) => {
        const [mode, ...args] = (seq as unknown as { toJSON(): unknown[] }).toJSON();
        if (mode === "AND") return args.every(truthy);
        if (mode === "OR") return args.some(truthy);
        throw new Error(`docker double: !Condition mode ${String(mode)} is not implemented`);
      },
    } as CollectionTag,
    {
      tag: "!Format",
      collection: "seq",
      resolve: (seq) => {
        const [format, ...args] = (seq as unknown as { toJSON(): unknown[] }).toJSON() as string[];
        let i = 0;
        return format.replace(/%s/g, () => String(args[i++]));
      },
    } as CollectionTag,
  ];
}

// --- NetBird -------------------------------------------------------------------------------

interface NetbirdStore {
  owner?: { user_id: string; email: string };
  pats: { token: string; user_id: string; expires_days: number; created_ms?: number }[];
  proxyTokens: string[];
  setupKeys: { name: string; key: string; type: string; expires_in: number }[];
  identityProviders: { id: string; type: string; name: string; issuer: string; client_id: string; client_secret: string }[];
}

const base62 = (n: number) => {
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  return Array.from(randomBytes(n), (b) => alphabet[b % 62]).join("");
};

/**
 * NetBird's management API, its state kept where netbird-server keeps its store: in the
 * directory mounted at /var/lib/netbird, so a new server on the old volume finds it.
 */
export class NetbirdDouble {
  readonly api: ApiServer;
  /** Calls that reached POST /api/setup, whatever their outcome. */
  setupCalls = 0;
  /** Days NetBird's clock runs ahead of the host's, to let PATs expire. */
  clockOffsetDays = 0;
  /** Runs after /api/setup committed the owner and before the answer leaves (a test's interruption point). */
  afterSetupCommit?: () => void;
  /** Set by the docker double: the issuer Authentik serves a discovery document for, when reachable. */
  discoverable: (issuer: string) => boolean = () => false;
  /**
   * How many more IdP create/update calls find the issuer unreachable, as while Traefik still
   * waits for auth.<domain>'s certificate or DNS has not spread (Infinity: never reachable).
   */
  issuerUnreachableCalls = 0;

  constructor(private readonly containers: Containers) {
    this.api = new ApiServer("netbird-server", containers, (method, url, headers, body) => this.route(method, url, headers, body));
  }

  private storeFile(): string {
    const dir = this.containers.hostPathOf("netbird-server", "/var/lib/netbird");
    if (!dir) throw new Error("netbird-server has no /var/lib/netbird mount");
    return path.join(dir, "store.double.json");
  }

  store(): NetbirdStore {
    const file = this.storeFile();
    return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : { pats: [], proxyTokens: [], setupKeys: [], identityProviders: [] };
  }

  private save(store: NetbirdStore): void {
    fs.writeFileSync(this.storeFile(), JSON.stringify(store, null, 2));
  }

  private route(method: string, url: URL, headers: http.IncomingHttpHeaders, body: unknown): Reply {
    const store = this.store();
    const p = url.pathname;
    // Unauthenticated (management/server/http/handler.go bypass paths).
    if (method === "GET" && p === "/api/instance") return { status: 200, body: { setup_required: !store.owner } };
    if (method === "POST" && p === "/api/setup") return this.setup(store, body as Record<string, unknown>);
    // `Authorization: Token nbp_…` (management/server/http/middleware/auth_middleware.go).
    const auth = headers.authorization ?? "";
    // An expired PAT is refused like an unknown one (middleware/auth_middleware.go
    // checkPATFromRequest: "token expired" is no status error, so it becomes 401 "token invalid").
    const now = Date.now() + this.clockOffsetDays * 86_400_000;
    const pat = store.pats.find((t) => `Token ${t.token}` === auth && (t.created_ms ?? 0) + t.expires_days * 86_400_000 > now);
    if (!pat) return { status: 401, body: { message: "token invalid", code: 401 } };
    const b = (body ?? {}) as Record<string, unknown>;
    // POST /api/users/{id}/tokens (management/server/http/handlers/users/pat_handler.go).
    const tokens = /^\/api\/users\/([^/]+)\/tokens$/.exec(p);
    if (method === "POST" && tokens) {
      if (tokens[1] !== pat.user_id) return { status: 403, body: { message: "permission denied", code: 403 } };
      const token = `nbp_${base62(36)}`;
      store.pats.push({ token, user_id: pat.user_id, expires_days: Number(b.expires_in), created_ms: now });
      this.save(store);
      return { status: 200, body: { plain_token: token, personal_access_token: { id: randomUUID(), name: b.name } } };
    }
    // POST /api/reverse-proxies/proxy-tokens (reverseproxy/proxytoken/handler.go; nbx_ + 36 base62).
    if (method === "POST" && p === "/api/reverse-proxies/proxy-tokens") {
      if (typeof b.name !== "string" || !b.name) return { status: 400, body: { message: "name is required", code: 400 } };
      const token = `nbx_${base62(36)}`;
      store.proxyTokens.push(token);
      this.save(store);
      return { status: 200, body: { id: randomUUID(), name: b.name, revoked: false, plain_token: token } };
    }
    // POST /api/setup-keys (handlers/setup_keys/setupkeys_handler.go createSetupKey, in its order:
    // name required, type reusable|one-off, a one-off key's usage_limit at most 1, expires_in not
    // negative, each 422; auto_groups and expires_in default to [] and 0). The plain key only here.
    if (method === "POST" && p === "/api/setup-keys") {
      if (typeof b.name !== "string" || b.name === "") return { status: 422, body: { message: "setup key name shouldn't be empty", code: 422 } };
      if (b.type !== "reusable" && b.type !== "one-off") return { status: 422, body: { message: `unknown setup key type ${String(b.type ?? "")}`, code: 422 } };
      if (b.type === "one-off" && Number(b.usage_limit ?? 0) > 1)
        return { status: 422, body: { message: `usage_limit ${String(b.usage_limit)} is not valid for a one-off setup key, which can be used once; use type reusable for a key that can be used more than once`, code: 422 } };
      const expiresIn = Number(b.expires_in ?? 0);
      if (expiresIn < 0) return { status: 422, body: { message: "expiresin can not be in the past", code: 422 } };
      const key = randomUUID().toUpperCase();
      store.setupKeys.push({ name: b.name, key, type: b.type, expires_in: expiresIn });
      this.save(store);
      return { status: 200, body: { id: randomUUID(), name: b.name, type: b.type, key, valid: true, auto_groups: Array.isArray(b.auto_groups) ? b.auto_groups : [] } };
    }
    // /api/identity-providers (handlers/idp/idp_handler.go): the secret is never returned.
    const view = ({ client_secret: _hidden, ...idp }: NetbirdStore["identityProviders"][number]) => idp;
    if (method === "GET" && p === "/api/identity-providers") return { status: 200, body: store.identityProviders.map(view) };
    const one = /^\/api\/identity-providers\/([^/]+)$/.exec(p);
    if ((method === "POST" && p === "/api/identity-providers") || (method === "PUT" && one)) {
      for (const field of ["type", "name", "issuer", "client_id"])
        if (typeof b[field] !== "string" || !b[field]) return { status: 422, body: { message: `${field} is required`, code: 422 } };
      // management/server/identity_provider.go validateIdentityProviderConfig: a live fetch of
      // the issuer's discovery document whose issuer must equal the one sent.
      if (this.issuerUnreachableCalls > 0 || !this.discoverable(String(b.issuer))) {
        this.issuerUnreachableCalls -= 1;
        return { status: 422, body: { message: "issuer is unreachable", code: 422 } };
      }
      if (one) {
        const existing = store.identityProviders.find((i) => i.id === one[1]);
        // identity_provider.go UpdateIdentityProvider: no lookup first; Dex's UpdateConnector fails
        // for an unknown id and the error becomes status.Internal, a 500.
        if (!existing) return { status: 500, body: { message: "failed to update identity provider: connector not found", code: 500 } };
        // idp/dex/connector.go: non-empty fields overlay the stored connector.
        existing.issuer = String(b.issuer);
        existing.client_id = String(b.client_id);
        if (b.client_secret) existing.client_secret = String(b.client_secret);
        this.save(store);
        return { status: 200, body: view(existing) };
      }
      const idp = { id: `${b.type === "authentik" ? "authentik-" : ""}${base62(20).toLowerCase()}`, type: String(b.type), name: String(b.name), issuer: String(b.issuer), client_id: String(b.client_id), client_secret: String(b.client_secret ?? "") };
      store.identityProviders.push(idp);
      this.save(store);
      return { status: 200, body: view(idp) };
    }
    return { status: 404, body: { message: `docker double: unsupported NetBird call ${method} ${p}`, code: 404 } };
  }

  /**
   * POST /api/setup, checked in upstream's order (netbird v0.77.1): the handler decodes the body
   * (handlers/instance/instance_handler.go setup: 400), SetupService normalises the PAT options
   * (instance/setup_service.go normalizeSetupOptions: create_pat is silently dropped without
   * NB_SETUP_PAT_ENABLED=true, pat_expire_in defaults to 1 and must be 1..365: 422), then
   * CreateOwnerUser validates email, name and password (manager.go validateSetupInfo: 422) and
   * only then refuses a second setup (412, "setup already completed").
   */
  private setup(store: NetbirdStore, body: Record<string, unknown>): Reply {
    this.setupCalls += 1;
    if (!body || typeof body !== "object") return { status: 400, body: { message: "invalid request body", code: 400 } };
    const env = this.containers.healthyEnv("netbird-server") ?? {};
    const createPat = body.create_pat === true && env.NB_SETUP_PAT_ENABLED === "true";
    const days = Number(body.pat_expire_in ?? 1);
    if (createPat && (days < 1 || days > 365)) return { status: 422, body: { message: "pat_expire_in must be between 1 and 365", code: 422 } };
    const password = String(body.password ?? "");
    const invalid =
      (!body.email && "email is required") ||
      (!/^[^@\s]+@[^@\s]+$/.test(String(body.email)) && "invalid email format") ||
      (!body.name && "name is required") ||
      (!password && "password is required") ||
      (password.length < 8 && "password must be at least 8 characters") ||
      (password.length > 72 && "password must be at most 72 characters");
    if (invalid) return { status: 422, body: { message: invalid, code: 422 } };
    if (store.owner) return { status: 412, body: { message: "setup already completed", code: 412 } };
    const owner = { user_id: randomUUID(), email: String(body.email) };
    store.owner = owner;
    const reply: Record<string, unknown> = { user_id: owner.user_id, email: owner.email };
    if (createPat) {
      const token = `nbp_${base62(36)}`;
      store.pats.push({ token, user_id: owner.user_id, expires_days: days, created_ms: Date.now() + this.clockOffsetDays * 86_400_000 });
      reply.personal_access_token = token;
    }
    this.save(store);
    this.afterSetupCommit?.();
    return { status: 200, body: reply };
  }
}
