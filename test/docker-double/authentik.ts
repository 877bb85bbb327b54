/**
 * Authentik as the bootstrap meets it, answered as Authentik 2025.10 answers, with the later
 * changes (to the pinned 2026.8) that alter an answer the bootstrap reads: its API on
 * authentik-server's port, the `ak` management commands bootstrap.sh runs (`apply_blueprint`,
 * `shell -c`), and the worker's blueprint discovery. All of it reads and writes Authentik's
 * database through an AuthentikStore: the docker double keeps it in a file on the postgres
 * volume, the engine's stand-ins in the real PostgreSQL of authentik-postgres, so both lose
 * and keep exactly what Authentik's own database loses and keeps.
 *
 * Upstream: goauthentik/authentik 2025.10 (authentik/blueprints/, authentik/providers/oauth2/,
 * authentik/core/api/applications.py, authentik/core/api/tokens.py, authentik/api/authentication.py,
 * authentik/core/management/commands/shell.py, blueprints/system/bootstrap.yaml).
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import type * as http from "node:http";
import { parseDocument } from "yaml";
import { ApiServer, type Containers, type Reply } from "./apis";
import { isTagged, taggedNodes } from "./blueprintTags";

export interface OAuth2Provider {
  pk: number;
  name: string;
  client_type: string;
  client_id: string;
  client_secret: string;
  redirect_uris: { matching_mode: string; url: string }[];
  authorization_flow: string | null;
  invalidation_flow: string | null;
  /**
   * The grants the provider allows: `ArrayField(..., default=list)`, so a provider made by a
   * blueprint or the API without them allows none (authentik/providers/oauth2/models.py, PR
   * #20363 at bce868b8, released with 2026.5); the migration gave providers that existed
   * before all seven (migrations/0032_oauth2provider_grant_types.py).
   */
  grant_types: string[];
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

/** The pk the double gives an object of Authentik's own blueprints: its lookup key. */
const pkOf = (key: string) => `pk:${key}`;

/**
 * The objects the NetBird blueprint finds, by the Authentik blueprint instance that makes them
 * (blueprints/default/flow-default-*.yaml, blueprints/system/providers-oauth2.yaml; instance =
 * the file's metadata name).
 */
const objectsMadeBy: Record<string, string> = {
  "authentik_flows.flow slug default-provider-authorization-implicit-consent": "Default - Provider authorization flow (implicit consent)",
  "authentik_flows.flow slug default-provider-invalidation-flow": "Default - Provider invalidation flow",
  "authentik_flows.flow slug default-authentication-flow": "Default - Authentication flow",
  "authentik_flows.flow slug default-source-authentication": "Default - Source authentication flow",
  "authentik_flows.flow slug default-source-enrollment": "Default - Source enrollment flow",
  // The login flow's own MFA stage and its binding (flow-default-authentication-flow.yaml), and
  // the setup stages an administrator picks from (flow-default-authenticator-*-setup.yaml).
  "authentik_stages_authenticator_validate.authenticatorvalidatestage name default-authentication-mfa-validation": "Default - Authentication flow",
  [`authentik_flows.flowstagebinding target ${pkOf("authentik_flows.flow slug default-authentication-flow")} stage ${pkOf(
    "authentik_stages_authenticator_validate.authenticatorvalidatestage name default-authentication-mfa-validation",
  )}`]: "Default - Authentication flow",
  "authentik_stages_authenticator_totp.authenticatortotpstage name default-authenticator-totp-setup": "Default - TOTP MFA setup flow",
  "authentik_stages_authenticator_webauthn.authenticatorwebauthnstage name default-authenticator-webauthn-setup": "Default - WebAuthn MFA setup flow",
  "authentik_providers_oauth2.scopemapping managed goauthentik.io/providers/oauth2/scope-openid": "System - OAuth2 Provider - Scopes",
  "authentik_providers_oauth2.scopemapping managed goauthentik.io/providers/oauth2/scope-email": "System - OAuth2 Provider - Scopes",
  "authentik_providers_oauth2.scopemapping managed goauthentik.io/providers/oauth2/scope-profile": "System - OAuth2 Provider - Scopes",
};

/** The instances of Authentik's own blueprints the NetBird blueprint depends on. */
export const authentikDefaultInstances = [...new Set(Object.values(objectsMadeBy))];

export interface StoredToken {
  user: string;
  key: string;
  intent: string;
  expiring: boolean;
}

/** Authentik's database as far as the bootstrap touches it. */
export interface AuthentikDb {
  tokens: Record<string, StoredToken>;
  /** akadmin's password; absent until the bootstrap blueprint created akadmin. */
  adminPassword?: string;
  /** Blueprint instances the worker's discovery has created, and those it (or a blueprint's metaapplyblueprint) applied. */
  discovered: string[];
  applied: string[];
  providers: Record<string, OAuth2Provider>;
  applications: Record<string, Application>;
  sources: Record<string, OAuthSource>;
  /** Groups and reputation policies by name; bindings of a group or a policy to a target. */
  groups?: Record<string, { pk: string; name: string }>;
  reputationPolicies?: Record<string, { pk: string; name: string; threshold: number }>;
  bindings?: { target: string; group?: string; policy?: string; negate: boolean; order: number }[];
  expressionPolicies?: Record<string, { pk: string; name: string; expression: string }>;
  validateStages?: Record<string, { pk: string; name: string; notConfiguredAction: string; deviceClasses: string[]; configurationStages: string[] }>;
  stageBindings?: { pk: string; target: string; stage: string; order: number; evaluateOnPlan: boolean; reEvaluatePolicies: boolean }[];
  /** policy_engine_mode a blueprint set on a flow, by slug; unset is the model's default, any (policies/models.py). */
  flowEngineModes?: Record<string, "all" | "any">;
  nextPk: number;
  /** authentik_version_history's versions, oldest first (lifecycle/system_migrations/version_history_*.py). */
  versionHistory?: string[];
}

export const emptyAuthentikDb = (): AuthentikDb => ({ tokens: {}, discovered: [], applied: [], providers: {}, applications: {}, sources: {}, nextPk: 1 });

/** Authentik's release lines, oldest first (website/docs/releases/; quarterly since 2026.2: releases/2026/v2026.2.md "Release frequency change"). */
export const authentikReleaseLines = ["2025.10", "2025.12", "2026.2", "2026.5", "2026.8"];

/** The Authentik version an image reference's tag names (`…/server:2026.8.7`, a digest after it allowed), if any. */
export const authentikImageVersion = (image: string): string | undefined => /:(\d{4}\.\d+\.\d+)(@|$)/.exec(image)?.[1];

/** The release line (YYYY.M) of a version. */
export const releaseLineOf = (version: string): string => version.split(".").slice(0, 2).join(".");

/**
 * What Authentik's server does with its database's version history as it starts
 * (lifecycle/migrate.py run_migrations), given the versions that ran it, oldest first:
 * - since 2026.8, ensure_allowed_version runs first: unless the newest recorded version is
 *   of the server's own line or the line before, it raises "Major version skips are not
 *   allowed…" and nothing is recorded (lifecycle/migrate.py as indexed with 2026.8;
 *   changelog "lifecycle: prevent version skipping upgrades (#24160)");
 * - then the system migration version_history_update records the version unless a row with
 *   it exists (2025.10.4 lifecycle/system_migrations/version_history_update.py);
 * - then Django's migrations: before 2026.8 a skipped line failed there, after the version was
 *   recorded (goauthentik/authentik issues #21617 "upgrading to 2025.12 first is required",
 *   #22688, where 2025.10.2 → 2026.5.0 failed in authentik_core.0058_setup).
 * A database without history (a new one) takes any version.
 */
export function authentikServerStart(version: string, history: readonly string[]): { record: boolean; refusal?: string } {
  const line = releaseLineOf(version);
  const index = authentikReleaseLines.indexOf(line);
  if (index < 0) throw new Error(`authentik double: release line ${line} is not modelled`);
  const last = history.at(-1);
  const allowed = last === undefined || [line, authentikReleaseLines[index - 1]].includes(releaseLineOf(last));
  if (index >= authentikReleaseLines.indexOf("2026.8") && !allowed)
    return { record: false, refusal: "RuntimeError: Major version skips are not allowed. Please upgrade one major version at a time." };
  const record = !history.includes(version);
  if (!allowed) return { record, refusal: `django.db.utils.ProgrammingError: migrations failed: the database skipped from ${last} to ${version}` };
  return { record };
}

/** Where Authentik's database lives. Both throw Authentik's OperationalError while PostgreSQL cannot be reached. */
export interface AuthentikStore {
  read(): AuthentikDb;
  /** Runs `change` on the database and keeps the result; `change` may run more than once (a concurrent writer). */
  transact<T>(change: (db: AuthentikDb) => T): T;
}

/** What the bootstrap changed in Authentik, for tests that count writes. */
export type AuthentikEvent = "blueprint" | "admin-password" | "token-create" | "token-set" | "token-delete";

/**
 * Milliseconds after the worker is healthy until its discovery has made: `bootstrap` (akadmin
 * and authentik-bootstrap-token), `instances` (the default and system blueprint instances),
 * `applied` (the worker has applied them: flows, scope mappings). In no set order upstream
 * (authentik/blueprints/v1/tasks.py blueprints_discovery; docs customize/blueprints "not
 * guaranteed to follow any specific order").
 */
export interface DiscoveryTimeline {
  bootstrap: number;
  instances: number;
  applied: number;
}

/** Authentik's objects that the blueprint makes, and its API over them. */
export class AuthentikDouble {
  readonly api: ApiServer;
  /**
   * How many more `ak apply_blueprint` runs meet an IntegrityError in apply() after a valid
   * validation: upstream validates and applies in two transactions, so a concurrent writer (a
   * unique name taken in between) or a constraint only the commit checks fails the apply alone.
   */
  applyConflicts = 0;

  constructor(
    containers: Containers,
    private readonly store: AuthentikStore,
    private readonly record: (event: AuthentikEvent) => void = () => undefined,
  ) {
    this.api = new ApiServer("authentik-server", containers, (method, url, headers, body) => this.route(method, url, headers, containers, body));
  }

  /** The server of `image` started on the database: why it exited, if it refused (see authentikServerStart). */
  serverStarted(image: string): string | undefined {
    const version = authentikImageVersion(image);
    if (!version) throw new Error(`authentik double: no version in image ${image}`);
    return this.store.transact((db) => {
      const { record, refusal } = authentikServerStart(version, db.versionHistory ?? []);
      if (record) db.versionHistory = [...(db.versionHistory ?? []), version];
      return refusal;
    });
  }

  /** The versions that ran the database, oldest first (authentik_version_history). */
  versions(): string[] {
    return this.store.read().versionHistory ?? [];
  }

  get tokens(): Map<string, StoredToken> {
    return new Map(Object.entries(this.store.read().tokens));
  }

  get providers(): Map<string, OAuth2Provider> {
    return new Map(Object.entries(this.store.read().providers));
  }

  get applications(): Map<string, Application> {
    return new Map(Object.entries(this.store.read().applications));
  }

  /**
   * The names of the groups an application's bindings let through. Empty means everyone: an
   * object without bindings passes (authentik/policies/engine.py, `empty_result = True`).
   */
  /** The reputation policies bound to a flow found by slug, with their threshold and whether negated. */
  flowReputationBindings(slug: string): { policy: string; threshold: number; negate: boolean }[] {
    const db = this.store.read();
    const target = `pk:authentik_flows.flow slug ${slug}`;
    const policies = Object.values(db.reputationPolicies ?? {});
    return (db.bindings ?? [])
      .filter((b) => b.target === target && b.policy)
      .map((b) => {
        const policy = policies.find((p) => p.pk === b.policy);
        return { policy: policy?.name ?? `unknown policy ${b.policy}`, threshold: policy?.threshold ?? NaN, negate: b.negate };
      });
  }

  /**
   * The MFA stages bound to a flow found by slug, Authentik's own and ours, with the policies
   * on each binding (name, negated) and the stage's not_configured_action. The login flow's
   * own binding is there once its blueprint was applied (order 30, re-evaluated when reached:
   * flow-default-authentication-flow.yaml; flows/models.py FlowStageBinding defaults).
   */
  flowMfaStages(slug: string): { stage: string; order: number; reEvaluated: boolean; notConfiguredAction: string; configurationStages: string[]; policies: { policy: string; negate: boolean }[] }[] {
    const db = this.store.read();
    const flow = pkOf(`authentik_flows.flow slug ${slug}`);
    const ownStage = "authentik_stages_authenticator_validate.authenticatorvalidatestage name default-authentication-mfa-validation";
    const own =
      slug === "default-authentication-flow" && db.applied.includes("Default - Authentication flow")
        ? [{ pk: pkOf(`authentik_flows.flowstagebinding target ${flow} stage ${pkOf(ownStage)}`), target: flow, stage: pkOf(ownStage), order: 30, evaluateOnPlan: false, reEvaluatePolicies: true }]
        : [];
    const stages = Object.values(db.validateStages ?? {});
    const policies = Object.values(db.expressionPolicies ?? {});
    return [...own, ...(db.stageBindings ?? []).filter((b) => b.target === flow)]
      .sort((a, b) => a.order - b.order)
      .map((b) => {
        const stage = stages.find((st) => st.pk === b.stage);
        return {
          stage: stage?.name ?? "default-authentication-mfa-validation",
          order: b.order,
          reEvaluated: b.reEvaluatePolicies && !b.evaluateOnPlan,
          // The default stage's action is the model's default, skip (stages/authenticator_validate/models.py).
          notConfiguredAction: stage?.notConfiguredAction ?? "skip",
          configurationStages: stage?.configurationStages ?? [],
          policies: (db.bindings ?? [])
            .filter((pb) => pb.target === b.pk && pb.policy)
            .map((pb) => ({ policy: policies.find((p) => p.pk === pb.policy)?.name ?? `unknown policy ${pb.policy}`, negate: pb.negate })),
        };
      });
  }

  /** The expression policies bound to a flow found by slug: name and expression. */
  flowExpressionPolicies(slug: string): { policy: string; expression: string; negate: boolean }[] {
    const db = this.store.read();
    const target = pkOf(`authentik_flows.flow slug ${slug}`);
    const policies = Object.values(db.expressionPolicies ?? {});
    return (db.bindings ?? [])
      .filter((b) => b.target === target && b.policy)
      .flatMap((b) => {
        const policy = policies.find((p) => p.pk === b.policy);
        return policy ? [{ policy: policy.name, expression: policy.expression, negate: b.negate }] : [];
      });
  }

  applicationGroups(slug: string): string[] {
    const db = this.store.read();
    const app = db.applications[slug];
    const groups = Object.values(db.groups ?? {});
    return (db.bindings ?? []).filter((b) => b.target === app?.pk && b.group).map((b) => groups.find((g) => g.pk === b.group)?.name ?? `unknown group ${b.group}`);
  }

  get adminPassword(): string | undefined {
    return this.store.read().adminPassword;
  }

  /** Sets a provider's grants as an older Authentik's migration left them (for upgrade tests). */
  seedGrantTypes(name: string, grants: string[]): void {
    this.store.transact((db) => (db.providers[name].grant_types = grants));
  }

  /** Seeds a token as an older bootstrap left it (for upgrade tests). */
  seedToken(identifier: string, token: StoredToken): void {
    this.store.transact((db) => (db.tokens[identifier] = token));
  }

  /**
   * The worker's blueprint discovery, caught up to `sinceHealthyMs` after the worker became
   * healthy. The bootstrap blueprint (blueprints/system/bootstrap.yaml) creates akadmin with
   * AUTHENTIK_BOOTSTRAP_PASSWORD and authentik-bootstrap-token with AUTHENTIK_BOOTSTRAP_TOKEN,
   * both `state: created`: only when absent, never updated.
   */
  discover(workerEnv: Record<string, string>, sinceHealthyMs: number, timeline: DiscoveryTimeline): void {
    const events: AuthentikEvent[] = [];
    this.store.transact((db) => {
      events.length = 0;
      if (sinceHealthyMs >= timeline.bootstrap) {
        if (db.adminPassword === undefined && workerEnv.AUTHENTIK_BOOTSTRAP_PASSWORD !== undefined) db.adminPassword = workerEnv.AUTHENTIK_BOOTSTRAP_PASSWORD;
        if (!db.tokens["authentik-bootstrap-token"] && workerEnv.AUTHENTIK_BOOTSTRAP_TOKEN) {
          db.tokens["authentik-bootstrap-token"] = { user: "akadmin", key: workerEnv.AUTHENTIK_BOOTSTRAP_TOKEN, intent: "api", expiring: false };
          events.push("token-create");
        }
      }
      if (sinceHealthyMs >= timeline.instances && db.discovered.length === 0) db.discovered = [...authentikDefaultInstances];
      if (sinceHealthyMs >= timeline.applied && db.applied.length < authentikDefaultInstances.length) db.applied = [...authentikDefaultInstances];
    });
    events.forEach(this.record);
  }

  /**
   * `ak apply_blueprint FILE` (authentik/blueprints/management/commands/apply_blueprint.py):
   * the file is read and its tags resolved in the running container (`!Env` reads that
   * container's environment: authentik/blueprints/v1/common.py EnvTag); entries whose
   * `conditions` are not all truthy are skipped (BlueprintEntry.check_all_conditions);
   * identifiers find the object to update, attrs are set on it (importer.py, state present).
   * Then, as upstream, two transactions: validate() imports and rolls back (an invalid entry:
   * "Blueprint invalid" on stderr, exit 1), and apply() imports again and commits. apply()
   * turns an IntegrityError into False after rolling back (importer.py apply()), and the
   * command ignores that result: nothing changed, nothing printed, exit 0.
   * Only the models of our blueprint are understood: any other model fails loudly.
   */
  applyBlueprint(file: string, env: Record<string, string>): { invalid: string; stdout: string } {
    if (!fs.existsSync(file)) return { invalid: `Blueprint invalid: file ${file} not found`, stdout: "" };
    const doc = parseDocument(fs.readFileSync(file, "utf8"), { customTags: blueprintTags() });
    if (doc.errors.length) return { invalid: `Blueprint invalid: ${doc.errors[0].message}`, stdout: "" };
    const blueprint = resolveTags(doc.toJS(), env) as { version: number; entries: BlueprintEntry[] };
    if (blueprint.version !== 1) return { invalid: "Blueprint invalid: version", stdout: "" };
    const invalid = this.store.transact((db) => importEntries(structuredClone(db), blueprint.entries));
    if (invalid) return { invalid, stdout: "" };
    if (this.applyConflicts > 0) {
      this.applyConflicts -= 1;
      return { invalid: "", stdout: "" };
    }
    this.store.transact((db) => {
      const draft = structuredClone(db);
      if (!importEntries(draft, blueprint.entries)) Object.assign(db, draft);
    });
    this.record("blueprint");
    return { invalid: "", stdout: "" };
  }

  /**
   * `ak shell -c CODE` running bootstrap.sh's snippets (authentik/core/management/commands/
   * shell.py exec()s CODE with every model in its namespace). Values come from the
   * container's environment; akadmin must exist (User.DoesNotExist otherwise). Returns what
   * the command prints; throws with Authentik's error otherwise.
   */
  shell(snippet: string, env: Record<string, string>): string {
    if (this.adminPassword === undefined) throw new Error("authentik.core.models.User.DoesNotExist: User matching query does not exist.");
    return snippet.includes("set_password") ? this.setAdminPassword(snippet, env) : this.setBootstrapToken(snippet, env);
  }

  private setBootstrapToken(snippet: string, env: Record<string, string>): string {
    requireSnippet(snippet, [
      /os\.environ\["AUTHENTIK_BOOTSTRAP_TOKEN"\]/,
      /User\.objects\.get\(username="akadmin"\)/,
      /Token\.objects\.update_or_create\(\s*identifier="authentik-bootstrap-token"/,
      /"intent": TokenIntents\.INTENT_API/,
      /"expiring": False/,
      /"key": key/,
      /Token\.objects\.filter\(identifier__in=\["netbird-mgmt-token"\]\)\.delete\(\)/,
      /print\("TOKEN:set REMOVED:" \+ str\(removed\)\)/,
    ]);
    const key = env.AUTHENTIK_BOOTSTRAP_TOKEN;
    if (!key) throw new Error("KeyError: 'AUTHENTIK_BOOTSTRAP_TOKEN'");
    const removed = this.store.transact((db) => {
      db.tokens["authentik-bootstrap-token"] = { user: "akadmin", key, intent: "api", expiring: false };
      const had = db.tokens["netbird-mgmt-token"] ? 1 : 0;
      delete db.tokens["netbird-mgmt-token"];
      return had;
    });
    this.record("token-set");
    if (removed) this.record("token-delete");
    // Authentik logs through structlog on stdout before the snippet's own output.
    return `{"event": "Booting authentik", "level": "info", "logger": "authentik.lib.config"}\nTOKEN:set REMOVED:${removed}\n`;
  }

  /** bootstrap.sh's password snippet: check_password, else set_password + save (authentik/core/models.py User). */
  private setAdminPassword(snippet: string, env: Record<string, string>): string {
    requireSnippet(snippet, [/os\.environ\["AUTHENTIK_BOOTSTRAP_PASSWORD"\]/, /User\.objects\.get\(username="akadmin"\)/, /user\.check_password\(password\)/, /user\.set_password\(password\)\s*\n\s*user\.save\(\)/]);
    const password = env.AUTHENTIK_BOOTSTRAP_PASSWORD;
    if (password === undefined) throw new Error("KeyError: 'AUTHENTIK_BOOTSTRAP_PASSWORD'");
    const changed = this.store.transact((db) => {
      if (db.adminPassword === password) return false;
      db.adminPassword = password;
      return true;
    });
    if (!changed) return "PASSWORD:unchanged\n";
    this.record("admin-password");
    return "PASSWORD:set\n";
  }

  /** The issuer of a provider's application (per-provider issuer mode: authentik/providers/oauth2/models.py get_issuer). */
  issuerFor(slug: string, domain: string): string | undefined {
    return this.store.read().applications[slug]?.provider ? `https://auth.${domain}/application/o/${slug}/` : undefined;
  }

  /** The engine mode a flow evaluates its policies with (policies/models.py: default any). */
  flowEngineMode(slug: string): "all" | "any" {
    return this.store.read().flowEngineModes?.[slug] ?? "any";
  }

  /**
   * GET /application/o/authorize/ (authentik/providers/oauth2/views/authorize.py, PR #20363 at
   * bce868b8), its checks in upstream's order: the client (an error page), the redirect URI
   * (an error page), the response type mapped to a grant (unsupported_response_type) and that
   * grant against the provider's list, then PKCE's method; errors after the redirect URI is
   * known go back to it (AuthorizeError: `?error=…&error_description=…&state=…`, 302). A valid
   * request from someone not logged in is sent to the authentication flow with the request
   * as `next` (the provider's authentication_flow, else the brand's: default-authentication-flow).
   */
  private authorize(url: URL): Reply {
    const q = url.searchParams;
    const provider = Object.values(this.store.read().providers).find((p) => p.client_id === q.get("client_id"));
    if (!provider) return { status: 400, body: { title: "Client ID Error", detail: "The client identifier (client_id) is missing or invalid." } };
    const redirect = q.get("redirect_uri") ?? "";
    if (!provider.redirect_uris.some((r) => (r.matching_mode === "strict" ? r.url === redirect : new RegExp(r.url).test(redirect))))
      return { status: 400, body: { title: "Redirect URI Error", detail: "The request fails due to a missing, invalid, or mismatching redirection URI (redirect_uri)." } };
    const back = (error: string, description: string): Reply => {
      const to = new URL(redirect);
      to.searchParams.set("error", error);
      to.searchParams.set("error_description", description);
      if (q.get("state")) to.searchParams.set("state", q.get("state")!);
      return { status: 302, headers: { Location: to.toString() } };
    };
    // constants.py RESPONSE_TYPE_*: code → authorization_code; id_token / id_token token → implicit; code with either → hybrid.
    const types = (q.get("response_type") ?? "").split(" ").sort().join(" ");
    const grant = { code: "authorization_code", id_token: "implicit", "id_token token": "implicit", "code id_token": "hybrid", "code token": "hybrid", "code id_token token": "hybrid" }[types];
    if (!grant) return back("unsupported_response_type", "The authorization server does not support obtaining an authorization code using this method.");
    // "Invalid grant_type for provider" in Authentik's log.
    if (!provider.grant_types.includes(grant)) return back("invalid_request", "The request is otherwise malformed");
    const method = q.get("code_challenge_method");
    if (q.get("code_challenge") && method && !["S256", "plain"].includes(method)) return back("invalid_request", "The request is otherwise malformed");
    const next = `${url.pathname}${url.search}`;
    return { status: 302, headers: { Location: `/if/flow/default-authentication-flow/?${new URLSearchParams({ next }).toString()}` } };
  }

  /**
   * POST /application/o/token/ (views/token.py, PR #20363 at bce868b8): the client
   * authenticates first (invalid_client, 401), then the grant must be in the provider's list
   * (TokenError("invalid_grant").with_cause("grant_type_not_configured"), 400).
   */
  private token(headers: http.IncomingHttpHeaders, body: unknown): Reply {
    const form = (body ?? {}) as Record<string, string>;
    let [clientId, secret] = [form.client_id, form.client_secret];
    const basic = /^Basic (.+)$/.exec(headers.authorization ?? "");
    if (basic) [clientId, secret] = Buffer.from(basic[1], "base64").toString().split(":");
    const provider = Object.values(this.store.read().providers).find((p) => p.client_id === clientId);
    if (!provider || (provider.client_type === "confidential" && provider.client_secret !== secret))
      return { status: 401, body: { error: "invalid_client", error_description: "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)" } };
    const invalidGrant = { error: "invalid_grant", error_description: "The provided authorization grant or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client" };
    // A grant not listed is refused before its own checks; the double issues no codes or
    // refresh tokens, so a listed grant meets an unknown one: the same answer either way.
    return { status: 400, body: invalidGrant };
  }

  private route(method: string, url: URL, headers: http.IncomingHttpHeaders, containers: Containers, body?: unknown): Reply {
    // The liveness probe, unauthenticated (authentik/root/monitoring.py LiveView), which
    // `ak healthcheck` asks with HEAD (cmd/server/healthcheck.go) through a route that takes
    // every method (internal/web/proxy.go: a HandlerFunc with no Methods matcher), 2025.10.4.
    if ((method === "GET" || method === "HEAD") && url.pathname === "/-/health/live/") return { status: 200 };
    if (method === "GET" && url.pathname === "/application/o/authorize/") return this.authorize(url);
    if (method === "POST" && url.pathname === "/application/o/token/") return this.token(headers, body);
    // GET /application/o/<slug>/.well-known/openid-configuration, unauthenticated
    // (authentik/providers/oauth2/views/provider.py ProviderInfoView: 404 without a provider).
    const wellKnown = /^\/application\/o\/([^/]+)\/\.well-known\/openid-configuration$/.exec(url.pathname);
    if (method === "GET" && wellKnown) {
      const issuer = this.issuerFor(wellKnown[1], containers.healthyEnv("authentik-server")?.BIFROST_DOMAIN ?? "");
      return issuer ? { status: 200, body: { issuer } } : { status: 404, body: { detail: "Not found." } };
    }
    // Token auth (authentik/api/authentication.py): no header → 403 "not provided"; a bearer key
    // that no non-expired API-intent token carries → AuthenticationFailed, which DRF answers
    // with 403 (TokenAuthentication has no authenticate_header).
    const auth = headers.authorization ?? "";
    if (!auth) return { status: 403, body: { detail: "Authentication credentials were not provided." } };
    const db = this.store.read();
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
    // OAuth2ProviderViewSet, filterset client_id; paginated {pagination, results}). Since
    // 2026.5 each redirect URI also carries redirect_uri_type, "authorization" unless set
    // (RedirectURISerializer, commit 8c3d5f126 "providers/oauth: post_logout_redirect_uri
    // support", in the fork's main at addbf5a2f).
    if (method === "GET" && url.pathname === "/api/v3/providers/oauth2/") {
      const clientId = url.searchParams.get("client_id");
      const results = Object.values(db.providers)
        .filter((p) => clientId === null || p.client_id === clientId)
        .map((p) => ({ ...p, redirect_uris: p.redirect_uris.map((r) => ({ redirect_uri_type: "authorization", ...r })) }));
      return { status: 200, body: { pagination: { count: results.length }, results } };
    }
    // GET /api/v3/core/applications/<slug>/ (authentik/core/api/applications.py, lookup_field slug).
    const app = /^\/api\/v3\/core\/applications\/([^/]+)\/$/.exec(url.pathname);
    if (method === "GET" && app) {
      const found = db.applications[app[1]];
      return found ? { status: 200, body: found } : { status: 404, body: { detail: "Not found." } };
    }
    return { status: 404, body: { detail: `docker double: unsupported Authentik call ${method} ${url.pathname}` } };
  }
}

function requireSnippet(snippet: string, required: RegExp[]): void {
  const missing = required.filter((re) => !re.test(snippet));
  if (missing.length) throw new Error(`docker double: ak shell snippet does not do what Authentik needs: ${missing.join(", ")}`);
}

/** Applies a blueprint's entries to `db` in order; returns the first entry's error ("Blueprint invalid …") or "". */
function importEntries(db: AuthentikDb, entries: BlueprintEntry[]): string {
  const ids = new Map<string, number | string>();
  for (const entry of entries) {
    if ((entry.conditions ?? []).some((c) => !truthy(c))) continue;
    const attrs = resolveRefs(entry.attrs ?? {}, ids, (model, conditions) => find(db, model, conditions)) as Record<string, unknown>;
    const identifiers = entry.identifiers ?? {};
    switch (entry.model) {
      // A blueprint's metaapplyblueprint of an instance: applied now if discovered
      // (authentik/blueprints/v1/meta/apply_blueprint.py); a required one that is not → invalid.
      case "authentik_blueprints.metaapplyblueprint": {
        const name = String((attrs.identifiers as Record<string, unknown> | undefined)?.name ?? "");
        if (db.discovered.includes(name)) {
          if (!db.applied.includes(name)) db.applied.push(name);
        } else if (attrs.required !== false) {
          return `Blueprint invalid\n\tauthentik.blueprints.v1.importer: entry invalid: {'identifiers': 'Required blueprint does not exist'}: ${name}`;
        }
        break;
      }
      case "authentik_providers_oauth2.oauth2provider": {
        const name = String(identifiers.name);
        // authentik/providers/oauth2/api/providers.py: both flows are required foreign keys.
        for (const flow of ["authorization_flow", "invalidation_flow"])
          if (attrs[flow] === null || attrs[flow] === undefined)
            return `Blueprint invalid\n\tauthentik.blueprints.v1.importer: entry invalid: {'${flow}': ['This field may not be null.']}`;
        const provider: OAuth2Provider = {
          pk: db.providers[name]?.pk ?? db.nextPk++,
          name,
          client_type: String(attrs.client_type ?? "confidential"),
          client_id: String(attrs.client_id),
          client_secret: String(attrs.client_secret),
          redirect_uris: (attrs.redirect_uris ?? []) as OAuth2Provider["redirect_uris"],
          authorization_flow: String(attrs.authorization_flow),
          invalidation_flow: String(attrs.invalidation_flow),
          // An update sets only the attrs given (importer.py: partial serializer on an existing object).
          grant_types: (attrs.grant_types as string[] | undefined) ?? db.providers[name]?.grant_types ?? [],
        };
        db.providers[name] = provider;
        if (entry.id) ids.set(entry.id, provider.pk);
        break;
      }
      case "authentik_core.application": {
        const slug = String(identifiers.slug);
        db.applications[slug] = {
          pk: db.applications[slug]?.pk ?? randomUUID(),
          slug,
          name: String(attrs.name),
          provider: (attrs.provider as number | undefined) ?? null,
          meta_launch_url: String(attrs.meta_launch_url ?? ""),
        };
        if (entry.id) ids.set(entry.id, db.applications[slug].pk);
        break;
      }
      case "authentik_core.group": {
        const name = String(identifiers.name);
        db.groups ??= {};
        db.groups[name] = { pk: db.groups[name]?.pk ?? randomUUID(), name: String(attrs.name ?? name) };
        if (entry.id) ids.set(entry.id, db.groups[name].pk);
        break;
      }
      // authentik/policies/api/bindings.py PolicyBindingSerializer.validate: exactly one of
      // policy, group or user, refused otherwise; the target must be an existing object.
      case "authentik_policies.policybinding": {
        const set = ["policy", "group", "user"].filter((k) => attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== "");
        if (set.length > 1) return "Blueprint invalid\n\tauthentik.blueprints.v1.importer: entry invalid: {'non_field_errors': [\"Only one of 'policy', 'group' or 'user' can be set.\"]}";
        if (set.length < 1) return "Blueprint invalid\n\tauthentik.blueprints.v1.importer: entry invalid: {'non_field_errors': [\"One of 'policy', 'group' or 'user' must be set.\"]}";
        if (set[0] === "user") return "Blueprint invalid: the docker double does not model user bindings";
        // A target is an application (by its pk) or a flow !Find found; null when not found.
        if (attrs.target === null || attrs.target === undefined) return "Blueprint invalid\n\tauthentik.blueprints.v1.importer: entry invalid: {'target': ['This field may not be null.']}";
        const target = String(attrs.target);
        db.bindings ??= [];
        const order = Number(attrs.order ?? 0);
        const binding = { target, [set[0]]: String(attrs[set[0]]), negate: attrs.negate === true, order };
        db.bindings = [...db.bindings.filter((b) => !(b.target === target && b.order === order)), binding];
        break;
      }
      case "authentik_policies_reputation.reputationpolicy": {
        const name = String(identifiers.name);
        db.reputationPolicies ??= {};
        db.reputationPolicies[name] = { pk: db.reputationPolicies[name]?.pk ?? randomUUID(), name, threshold: Number(attrs.threshold ?? -5) };
        if (entry.id) ids.set(entry.id, db.reputationPolicies[name].pk);
        break;
      }
      case "authentik_policies_expression.expressionpolicy": {
        const name = String(identifiers.name);
        db.expressionPolicies ??= {};
        db.expressionPolicies[name] = { pk: db.expressionPolicies[name]?.pk ?? randomUUID(), name, expression: String(attrs.expression ?? "") };
        if (entry.id) ids.set(entry.id, db.expressionPolicies[name].pk);
        break;
      }
      // A many-to-many of stage pks: DRF's PrimaryKeyRelatedField refuses a None in the list
      // ("Incorrect type. Expected pk value, received NoneType.", rest_framework/relations.py).
      case "authentik_stages_authenticator_validate.authenticatorvalidatestage": {
        const name = String(identifiers.name);
        const configurationStages = (attrs.configuration_stages ?? []) as (string | null)[];
        if (configurationStages.some((st) => st === null))
          return "Blueprint invalid\n\tauthentik.blueprints.v1.importer: entry invalid: {'configuration_stages': ['Incorrect type. Expected pk value, received NoneType.']}";
        db.validateStages ??= {};
        db.validateStages[name] = {
          pk: db.validateStages[name]?.pk ?? randomUUID(),
          name,
          notConfiguredAction: String(attrs.not_configured_action ?? "skip"),
          deviceClasses: (attrs.device_classes ?? []) as string[],
          configurationStages: configurationStages as string[],
        };
        if (entry.id) ids.set(entry.id, db.validateStages[name].pk);
        break;
      }
      // flows/api/bindings.py FlowStageBindingSerializer: target and stage are required foreign
      // keys; (target, stage, order) is unique (flows/models.py).
      case "authentik_flows.flowstagebinding": {
        for (const field of ["target", "stage"])
          if (attrs[field] === null || attrs[field] === undefined)
            return `Blueprint invalid\n\tauthentik.blueprints.v1.importer: entry invalid: {'${field}': ['This field may not be null.']}`;
        const target = String(attrs.target);
        const stage = String(attrs.stage);
        db.stageBindings ??= [];
        const existing = db.stageBindings.find((b) => b.target === target && b.stage === stage);
        const binding = {
          pk: existing?.pk ?? randomUUID(),
          target,
          stage,
          order: Number(attrs.order ?? 0),
          evaluateOnPlan: attrs.evaluate_on_plan === true,
          reEvaluatePolicies: attrs.re_evaluate_policies !== false,
        };
        db.stageBindings = [...db.stageBindings.filter((b) => b !== existing), binding];
        if (entry.id) ids.set(entry.id, binding.pk);
        break;
      }
      // An existing flow found by its slug, updated partially (importer.py); the double models
      // only the flows of Authentik's default blueprints, and only their engine mode.
      case "authentik_flows.flow": {
        const slug = String(identifiers.slug);
        if (!find(db, "authentik_flows.flow", [["slug", slug]]))
          return `Blueprint invalid\n\tauthentik.blueprints.v1.importer: entry invalid: {'name': ['This field is required.']}: flow ${slug}`;
        db.flowEngineModes ??= {};
        if (attrs.policy_engine_mode === "all" || attrs.policy_engine_mode === "any") db.flowEngineModes[slug] = attrs.policy_engine_mode;
        break;
      }
      case "authentik_sources_oauth.oauthsource":
        db.sources[String(identifiers.slug)] = { slug: String(identifiers.slug), provider_type: String(attrs.provider_type), consumer_key: String(attrs.consumer_key) };
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
 * `!Find [model, [field, value], …]`: the pk of the first object matching every condition, or
 * None (authentik/blueprints/v1/common.py Find: the conditions AND-ed into one Q; a value may
 * itself be a tag, resolved first). Flows, stages and scope mappings exist once the blueprint
 * instance that makes them was applied; the self-signed certificate from authentik-server's
 * first start on.
 */
function find(db: AuthentikDb, model: string, conditions: [string, string | null][]): string | null {
  if (conditions.some(([, value]) => value === null)) return null;
  const key = [model, ...conditions.map(([field, value]) => `${field} ${value}`)].join(" ");
  if (key === "authentik_crypto.certificatekeypair name authentik Self-signed Certificate") return pkOf(key);
  const instance = objectsMadeBy[key];
  if (!instance) throw new Error(`docker double: !Find of ${key} is not modelled`);
  return db.applied.includes(instance) ? pkOf(key) : null;
}

export interface BlueprintEntry {
  model: string;
  id?: string;
  identifiers?: Record<string, unknown>;
  attrs?: Record<string, unknown>;
  conditions?: unknown[];
}

const keyOf = (id: string) => ({ __keyOf: id });

type Finder = (model: string, conditions: [string, string | null][]) => string | null;

/** Tags that look objects up resolve when their entry is applied (BlueprintEntry.get_attrs), not when the file is read. */
function resolveRefs(value: unknown, ids: Map<string, number | string>, find: Finder): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveRefs(v, ids, find));
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (typeof o.__keyOf === "string") return ids.get(o.__keyOf) ?? null;
    if (Array.isArray(o.__find)) {
      const [model, ...conditions] = o.__find as [string, ...[string, unknown][]];
      return find(
        model,
        conditions.map(([field, v]) => [field, resolveRefs(v, ids, find) as string | null]),
      );
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolveRefs(v, ids, find)]));
  }
  return value;
}

const truthy = (v: unknown) => !(v === "" || v === null || v === undefined || v === false || v === 0);

/**
 * The tags of Authentik's blueprints, read as {tag, args} (blueprintTags.ts) and resolved by
 * resolveTags once the whole document is built.
 */
const blueprintTags = () => taggedNodes(["!Env", "!KeyOf"], ["!Env", "!Find", "!Condition", "!If", "!Format"]);

/** A blueprint's text with its tags resolved against `env` (!Find and !KeyOf stay markers: `{__find}`, `{__keyOf}`). */
export function resolveBlueprint(text: string, env: Record<string, string>): { version: number; metadata?: { name?: string }; entries: BlueprintEntry[] } {
  const doc = parseDocument(text, { customTags: blueprintTags() });
  if (doc.errors.length) throw new Error(`blueprint: ${doc.errors[0].message}`);
  return resolveTags(doc.toJS(), env) as { version: number; entries: BlueprintEntry[] };
}

/**
 * !Env [KEY, default] = getenv(KEY) or default; !Format = fmt % args; !Condition AND/OR over
 * bool(arg); !If [cond, a, b] (common.py Env, Format, Condition, If). !Find and !KeyOf look
 * objects up, so they stay markers until their entry is applied (see resolveRefs).
 */
function resolveTags(value: unknown, env: Record<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveTags(v, env));
  if (!value || typeof value !== "object") return value;
  if (!isTagged(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveTags(v, env)]));
  const args = value.args.map((v) => resolveTags(v, env));
  switch (value.tag) {
    case "!Env": {
      const [name, fallback] = args;
      return env[String(name)] || String(fallback ?? "");
    }
    case "!KeyOf":
      return keyOf(String(args[0]));
    case "!Find":
      return { __find: args };
    case "!Condition": {
      const [mode, ...rest] = args;
      if (mode === "AND") return rest.every(truthy);
      if (mode === "OR") return rest.some(truthy);
      throw new Error(`docker double: !Condition mode ${String(mode)} is not implemented`);
    }
    case "!If":
      return truthy(args[0]) ? args[1] : args[2];
    case "!Format": {
      const [format, ...rest] = args as string[];
      let i = 0;
      return format.replace(/%s/g, () => String(rest[i++]));
    }
    default:
      throw new Error(`docker double: tag ${value.tag} is not implemented`);
  }
}

