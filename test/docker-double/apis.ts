/**
 * The HTTP server both API doubles answer on, and NetBird's management API as v0.77.1 answers
 * it (Authentik's: authentik.ts), behind the loopback ports docker-compose.yml publishes. Each answers only while its
 * container runs and is healthy in the docker double (else the connection is refused, as for
 * a port nobody listens on). Every route cites the upstream handler it imitates; anything
 * else is a 404 that names the unsupported call, so a new call fails loudly.
 *
 * Upstream: netbirdio/netbird v0.77.1 (79a06720b684768b421f0a54f3bb14f22704994f).
 */
import { randomBytes, randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type * as net from "node:net";
import * as path from "node:path";
import { NetbirdAccounts, singleAccountModeAtStart, type AccountRow, type SingleAccountMode } from "./netbirdAccounts";
import { addAllGroupAndDefaultPolicy, loginPeer, routeMesh, type Mesh } from "./netbirdMesh";

/** What the HTTP doubles need to know of the docker double. */
export interface Containers {
  /** The container's environment when it is up and healthy, else undefined. */
  healthyEnv(name: string): Record<string, string> | undefined;
  /** The host path mounted at `target` in the container, if any. */
  hostPathOf(name: string, target: string): string | undefined;
}

export interface Reply {
  status: number;
  body?: unknown;
  /** Extra response headers, e.g. Location on a redirect. */
  headers?: Record<string, string>;
}

/** A request body as its content type says: a form (OAuth2's token endpoint, RFC 6749 §4.1.3) or JSON. */
function parseBody(raw: string, contentType: string | undefined): unknown {
  if (!raw) return undefined;
  if ((contentType ?? "").startsWith("application/x-www-form-urlencoded")) return Object.fromEntries(new URLSearchParams(raw));
  return JSON.parse(raw);
}

export class ApiServer {
  port = 0;
  readonly calls: string[] = [];
  /** Each call's parsed body beside it, for tests that check what was asked (never a reply). */
  readonly bodies: unknown[] = [];
  /** Told of every answered call as "METHOD /path STATUS" (the engine's stand-ins log it). */
  onCall?: (call: string) => void;
  private server?: http.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly container: string,
    private readonly containers: Containers,
    private readonly route: (method: string, url: URL, headers: http.IncomingHttpHeaders, body: unknown) => Reply | Promise<Reply>,
  ) {}

  /** Listens on an ephemeral loopback port (the docker double) or the port a container publishes (the engine's stand-ins). */
  async start(port = 0, host = "127.0.0.1"): Promise<void> {
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
        const body = parseBody(raw, req.headers["content-type"]);
        this.bodies.push(body);
        void (async (): Promise<Reply> => {
          try {
            return await this.route(req.method ?? "GET", url, req.headers, body);
          } catch (e) {
            return { status: 400, body: { message: `invalid request: ${(e as Error).message}`, code: 400 } };
          }
        })().then((reply) => {
          this.onCall?.(`${req.method} ${url.pathname} ${reply.status}`);
          res.writeHead(reply.status, { "Content-Type": "application/json", ...reply.headers });
          res.end(reply.body === undefined ? "" : JSON.stringify(reply.body));
        });
      });
    });
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(port, host, resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

// --- NetBird -------------------------------------------------------------------------------

export interface ProxyToken {
  id: string;
  name: string;
  token: string;
  /** Epoch milliseconds; none: it never expires (expires_in 0). */
  expiresAt?: number;
  revoked: boolean;
}

/** ProxyAccessToken.IsValid: not revoked and not past its expiry (types/proxy_access_token.go, v0.77.1). */
export const proxyTokenValid = (store: NetbirdStore, token: string, now = Date.now()): boolean =>
  store.proxyTokens.some((t) => t.token === token && !t.revoked && (t.expiresAt === undefined || now <= t.expiresAt));

export interface NetbirdStore extends Mesh {
  owner?: { user_id: string; email: string };
  pats: { token: string; user_id: string; expires_days: number; created_ms?: number; id?: string; name?: string }[];
  /** Proxy access tokens (management/server/types/proxy_access_token.go): revoking marks one, the list keeps it. */
  proxyTokens: ProxyToken[];
  identityProviders: { id: string; type: string; name: string; issuer: string; client_id: string; client_secret: string }[];
}

/** NetBird's store in the directory netbird-server mounts at /var/lib/netbird (empty when absent). */
export function readNetbirdStore(dir: string): NetbirdStore {
  const file = path.join(dir, netbirdStoreFile);
  const empty: NetbirdStore = { pats: [], proxyTokens: [], identityProviders: [], groups: [], policies: [], peers: [], setupKeys: [] };
  return fs.existsSync(file) ? { ...empty, ...JSON.parse(fs.readFileSync(file, "utf8")) } : empty;
}

export function writeNetbirdStore(dir: string, store: NetbirdStore): void {
  fs.writeFileSync(path.join(dir, netbirdStoreFile), JSON.stringify(store, null, 2));
}

const netbirdStoreFile = "store.double.json";

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
  /** Days NetBird's clock runs ahead of the host's, to let PATs and proxy tokens expire. */
  clockOffsetDays = 0;

  /** NetBird's clock, in epoch milliseconds. */
  now(): number {
    return Date.now() + this.clockOffsetDays * 86_400_000;
  }
  /** Runs after /api/setup committed the owner and before the answer leaves (a test's interruption point). */
  afterSetupCommit?: () => void;
  /** Set by the docker double: the issuer Authentik serves a discovery document for, when reachable. */
  discoverable: (issuer: string) => boolean | Promise<boolean> = () => false;
  /**
   * How many more IdP create/update calls find the issuer unreachable, as while Traefik still
   * waits for auth.<domain>'s certificate or DNS has not spread (Infinity: never reachable).
   */
  issuerUnreachableCalls = 0;

  /** Decided by serverStarted(), as netbird-server decides it at its start. */
  private mode: SingleAccountMode = { enabled: true, domain: "" };

  constructor(private readonly containers: Containers) {
    this.api = new ApiServer("netbird-server", containers, (method, url, headers, body) => this.route(method, url, headers, body));
  }

  /** netbird-server (re)started on its store: single account mode is decided now, for the whole run. */
  serverStarted(): void {
    this.mode = singleAccountModeAtStart(this.accounts());
  }

  accounts(): NetbirdAccounts {
    return new NetbirdAccounts(this.storeDir());
  }

  private storeDir(): string {
    const dir = this.containers.hostPathOf("netbird-server", "/var/lib/netbird");
    if (!dir) throw new Error("netbird-server has no /var/lib/netbird mount");
    return dir;
  }

  store(): NetbirdStore {
    return readNetbirdStore(this.storeDir());
  }

  /** A peer's ManagementService.Login (netbirdMesh.ts loginPeer), on NetBird's clock. */
  login(login: { setupKey: string; publicKey: string; hostname: string }): Reply {
    const store = this.store();
    const reply = loginPeer(store, login, Date.now() + this.clockOffsetDays * 86_400_000);
    if (reply.status === 200) this.save(store);
    return reply;
  }

  private save(store: NetbirdStore): void {
    writeNetbirdStore(this.storeDir(), store);
  }

  private async route(method: string, url: URL, headers: http.IncomingHttpHeaders, body: unknown): Promise<Reply> {
    const store = this.store();
    const p = url.pathname;
    // Unauthenticated (management/server/http/handler.go bypass paths).
    if (method === "GET" && p === "/api/instance") return { status: 200, body: { setup_required: !store.owner } };
    if (method === "POST" && p === "/api/setup") return this.setup(store, body as Record<string, unknown>);
    // gRPC shares the port (the combined server serves gRPC and HTTP on one h2c listener); a
    // stand-in's call is a plain POST of the method's path, 401 standing for Unauthenticated and
    // 404 for NotFound. ProxyService: `authorization: Bearer nbx_…` against the stored proxy
    // tokens (internals/shared/grpc/proxy_auth.go doValidateProxyToken).
    if (method === "POST" && p.startsWith("/management.ProxyService/")) {
      const bearer = headers.authorization ?? "";
      if (!bearer) return { status: 401, body: { message: "missing authorization header", code: 16 } };
      if (!bearer.startsWith("Bearer ")) return { status: 401, body: { message: "invalid authorization format", code: 16 } };
      if (!proxyTokenValid(store, bearer.slice(7), this.now())) return { status: 401, body: { message: "invalid token", code: 16 } };
      return { status: 200, body: {} };
    }
    // ManagementService.Login (netbirdMesh.ts loginPeer). Upstream's message is encrypted with the
    // peer's WireGuard key; a stand-in sends the setup key and its public key in the clear over loopback.
    if (method === "POST" && p === "/management.ManagementService/Login") {
      const login = (body ?? {}) as Record<string, unknown>;
      return this.login({ setupKey: String(login.setupKey ?? ""), publicKey: String(login.publicKey ?? ""), hostname: String(login.hostname ?? "") });
    }
    // `Authorization: Bearer <JWT>` from the embedded IdP (Dex) after a person's SSO login. The
    // double takes `Bearer sso:<user id>` for such a token (no Dex here, nothing is signed) and
    // follows what a verified JWT leads to: auth_middleware.go → GetAccountIDFromUserAuth
    // (account.go:1528), which creates the person's NetBird user on first sight; a blocked user
    // is then refused (user.go:1459 GetCurrentUserInfo: status.NewUserBlockedError, 403).
    const accounts = this.accounts();
    const auth = headers.authorization ?? "";
    if (auth.startsWith("Bearer sso:")) {
      const userId = auth.slice("Bearer sso:".length);
      accounts.accountOfSsoUser(userId, this.mode);
      const user = accounts.user(userId)!;
      if (method === "GET" && p === "/api/users/current") {
        if (user.blocked) return { status: 403, body: { message: "user is blocked", code: 403 } };
        return { status: 200, body: userView(user) };
      }
      return { status: 404, body: { message: `docker double: unsupported NetBird call with an SSO token ${method} ${p}`, code: 404 } };
    }
    // `Authorization: Token nbp_…` (management/server/http/middleware/auth_middleware.go).
    // An expired PAT is refused like an unknown one (middleware/auth_middleware.go
    // checkPATFromRequest: "token expired" is no status error, so it becomes 401 "token invalid").
    const now = this.now();
    const pat = store.pats.find((t) => `Token ${t.token}` === auth && (t.created_ms ?? 0) + t.expires_days * 86_400_000 > now);
    if (!pat) return { status: 401, body: { message: "token invalid", code: 401 } };
    const b = (body ?? {}) as Record<string, unknown>;
    const caller = accounts.user(pat.user_id);
    if (!caller) return { status: 404, body: { message: `user ${pat.user_id} not found`, code: 404 } };
    // GET /api/accounts: the caller's own account, as a one-element list (handlers/accounts/accounts_handler.go getAllAccounts, toAccountResponse).
    if (method === "GET" && p === "/api/accounts") return { status: 200, body: [accountView(accounts.account(caller.account_id)!)] };
    // PUT /api/accounts/{id}: settings rebuilt from the body (accounts_handler.go
    // updateAccountRequestSettings); a body without settings.extra keeps the old extra
    // settings (account.go UpdateAccountSettings: `if newSettings.Extra == nil`).
    const account = /^\/api\/accounts\/([^/]+)$/.exec(p);
    if (method === "PUT" && account) {
      if (account[1] !== caller.account_id) return { status: 403, body: { message: "user is not part of the account", code: 403 } };
      const settings = (b.settings ?? {}) as Record<string, unknown>;
      const extra = settings.extra as Record<string, unknown> | undefined;
      accounts.updateAccount(account[1], {
        settings_peer_login_expiration_enabled: settings.peer_login_expiration_enabled ? 1 : 0,
        settings_peer_login_expiration: Number(settings.peer_login_expiration ?? 0) * 1_000_000_000,
        settings_regular_users_view_blocked: settings.regular_users_view_blocked ? 1 : 0,
        settings_groups_propagation_enabled: settings.groups_propagation_enabled ? 1 : 0,
        ...(extra && { settings_extra_peer_approval_enabled: extra.peer_approval_enabled ? 1 : 0, settings_extra_user_approval_required: extra.user_approval_required ? 1 : 0 }),
      });
      return { status: 200, body: accountView(accounts.account(account[1])!) };
    }
    // GET /api/users (handlers/users/users_handler.go getAllUsers): the caller's account.
    if (method === "GET" && p === "/api/users") return { status: 200, body: accounts.users(caller.account_id).map((u) => userView(u)) };
    // POST /api/users/{id}/approve (users_handler.go approveUser → user.go:1496 ApproveUser: another
    // account's user is not found; a user not pending is refused, 422).
    const approve = /^\/api\/users\/([^/]+)\/approve$/.exec(p);
    if (method === "POST" && approve) {
      const target = accounts.user(approve[1]);
      if (!target || target.account_id !== caller.account_id) return { status: 404, body: { message: `user: ${approve[1]} not found`, code: 404 } };
      if (!target.pending_approval) return { status: 422, body: { message: `user ${approve[1]} is not pending approval`, code: 422 } };
      accounts.approve(target.id);
      return { status: 200, body: userView(accounts.user(target.id)!) };
    }
    // POST /api/users/{id}/tokens (management/server/http/handlers/users/pat_handler.go).
    const tokens = /^\/api\/users\/([^/]+)\/tokens$/.exec(p);
    if (method === "POST" && tokens) {
      if (tokens[1] !== pat.user_id) return { status: 403, body: { message: "permission denied", code: 403 } };
      const token = `nbp_${base62(36)}`;
      const id = randomUUID();
      store.pats.push({ token, user_id: pat.user_id, expires_days: Number(b.expires_in), created_ms: now, id, name: String(b.name) });
      this.save(store);
      return { status: 200, body: { plain_token: token, personal_access_token: { id, name: b.name } } };
    }
    // GET /api/users/{id}/tokens: the user's PATs as api.PersonalAccessToken, never the token
    // itself (pat_handler.go getAllTokens, toPATResponse).
    if (method === "GET" && tokens) {
      if (tokens[1] !== pat.user_id) return { status: 403, body: { message: "permission denied", code: 403 } };
      return { status: 200, body: store.pats.filter((t) => t.user_id === tokens[1]).map((t) => ({ id: t.id, name: t.name, created_by: t.user_id })) };
    }
    // DELETE /api/users/{id}/tokens/{tokenId} (pat_handler.go deleteToken): 200 with {}; an
    // unknown id is NotFound from the store, 404.
    const oneToken = /^\/api\/users\/([^/]+)\/tokens\/([^/]+)$/.exec(p);
    if (method === "DELETE" && oneToken) {
      if (oneToken[1] !== pat.user_id) return { status: 403, body: { message: "permission denied", code: 403 } };
      const before = store.pats.length;
      store.pats = store.pats.filter((t) => !(t.user_id === oneToken[1] && t.id === oneToken[2]));
      if (store.pats.length === before) return { status: 404, body: { message: "PAT not found", code: 404 } };
      this.save(store);
      return { status: 200, body: {} };
    }
    // Proxy tokens (internals/modules/reverseproxy/proxytoken/handler.go, v0.77.1): create
    // (nbx_ + 36 base62; expires_in seconds, 0 or absent: never, negative refused), list (every
    // token of the account, revoked ones too, without the token), revoke (marks it; 404 unknown).
    const proxyTokenView = (t: ProxyToken) => ({ id: t.id, name: t.name, revoked: t.revoked, ...(t.expiresAt === undefined ? {} : { expires_at: new Date(t.expiresAt).toISOString() }) });
    if (method === "POST" && p === "/api/reverse-proxies/proxy-tokens") {
      if (typeof b.name !== "string" || !b.name) return { status: 400, body: { message: "name is required", code: 400 } };
      const seconds = b.expires_in === undefined ? 0 : Number(b.expires_in);
      if (seconds < 0) return { status: 400, body: { message: "expires_in must be non-negative", code: 400 } };
      const created: ProxyToken = { id: randomUUID(), name: b.name, token: `nbx_${base62(36)}`, revoked: false, ...(seconds > 0 ? { expiresAt: now + seconds * 1000 } : {}) };
      store.proxyTokens.push(created);
      this.save(store);
      return { status: 200, body: { ...proxyTokenView(created), plain_token: created.token } };
    }
    if (method === "GET" && p === "/api/reverse-proxies/proxy-tokens") return { status: 200, body: store.proxyTokens.map(proxyTokenView) };
    const proxyToken = /^\/api\/reverse-proxies\/proxy-tokens\/([^/]+)$/.exec(p);
    if (method === "DELETE" && proxyToken) {
      const found = store.proxyTokens.find((t) => t.id === proxyToken[1]);
      if (!found) return { status: 404, body: { message: "token not found", code: 404 } };
      found.revoked = true;
      this.save(store);
      return { status: 200, body: {} };
    }
    // Peers, groups, policies and setup keys (netbirdMesh.ts).
    const mesh = routeMesh(store, method, p, b, now);
    if (mesh) {
      if (mesh.changed) this.save(store);
      return mesh.reply;
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
      if (this.issuerUnreachableCalls > 0 || !(await this.discoverable(String(b.issuer)))) {
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
      // setup_service.go:114 GetAccountIDByUserID → user.go:990 GetOrCreateAccountByUser with the
      // setup's UserAuth, which carries no domain: an account with an empty domain, not the
      // private primary account a first SSO login makes (upstream PR #6416, not in v0.77.1).
      this.accounts().getOrCreateAccountByUser(owner.user_id, "");
      addAllGroupAndDefaultPolicy(store);
      const token = `nbp_${base62(36)}`;
      // The setup PAT's name: instance/setup_service.go setupPATTokenName.
      store.pats.push({ token, user_id: owner.user_id, expires_days: days, created_ms: Date.now() + this.clockOffsetDays * 86_400_000, id: randomUUID(), name: "setup-token" });
      reply.personal_access_token = token;
    }
    this.save(store);
    this.afterSetupCommit?.();
    return { status: 200, body: reply };
  }
}

/** toAccountResponse (accounts_handler.go): domain and category as stored, settings in the API's names. */
function accountView(a: AccountRow): Record<string, unknown> {
  return {
    id: a.id,
    domain: a.domain,
    domain_category: a.domain_category,
    settings: {
      peer_login_expiration_enabled: !!a.settings_peer_login_expiration_enabled,
      peer_login_expiration: a.settings_peer_login_expiration / 1_000_000_000,
      regular_users_view_blocked: !!a.settings_regular_users_view_blocked,
      groups_propagation_enabled: !!a.settings_groups_propagation_enabled,
      extra: { peer_approval_enabled: !!a.settings_extra_peer_approval_enabled, user_approval_required: !!a.settings_extra_user_approval_required },
    },
  };
}

/** users_handler.go toUserResponse: status "blocked" for a blocked user, pending_approval beside it. */
function userView(u: { id: string; role: string; blocked: number; pending_approval: number }): Record<string, unknown> {
  return { id: u.id, role: u.role, status: u.blocked ? "blocked" : "active", is_blocked: !!u.blocked, pending_approval: !!u.pending_approval };
}
