/**
 * Authentik blueprint conformance: cloud/bifrost/authentik/blueprints/netbird.yaml against
 * Authentik's published blueprint JSON schema (goauthentik/authentik blueprints/schema.json,
 * whole; fixtures/authentik-blueprint-schema.source.txt says which version), with Authentik's YAML tags resolved the way the importer resolves them.
 *
 * Tag semantics imitated here follow authentik/blueprints/v1/common.py (goauthentik/authentik
 * @ 02df9eb95a2336198ebd5bda83ccde411b3ad179):
 * - !Env KEY / !Env [KEY, default]: `getenv(KEY) or default` (empty counts as unset);
 * - !Format [fmt, args...]: `fmt % tuple(args)` (only %s is used here);
 * - !Condition [MODE, args...]: AND/OR/... over bool(arg);
 * - !If [cond, a, b]: a when cond is truthy, else b;
 * - !Context KEY / [KEY, default]: blueprint context, else default;
 * - !Find [model, [field, value]...]: pk of the first match, !KeyOf id: pk of the instance the
 *   entry with that id produced. Neither can be resolved without a database: they become
 *   placeholders of the JSON type the schema wants at that place (uuid strings for flows,
 *   certificates and property mappings; an integer for an application's provider);
 * - an entry is applied only when all of its resolved `conditions` are truthy
 *   (BlueprintEntry.check_all_conditions_match), which is how the GitHub source stays out.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import Ajv, { type ValidateFunction } from "ajv";
import { describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { isTagged, taggedNodes, type Tagged } from "../docker-double/blueprintTags";
import schemaJson from "./fixtures/authentik-blueprint-schema.json";

const repoRoot = path.resolve(__dirname, "../..");
const blueprintPath = path.join(repoRoot, "cloud/bifrost/authentik/blueprints/netbird.yaml");
const blueprintText = fs.readFileSync(blueprintPath, "utf8");
const schema = schemaJson as Record<string, unknown> & { title: string };

/** What a !Find resolves to here: a pk-shaped uuid (the schema's `format: uuid`). */
const FIND_PK = "00000000-0000-4000-8000-000000000001";
/** What a !KeyOf of a provider resolves to here: an integer pk (Provider.pk is an AutoField). */
const KEYOF_PK = 1;
/** What a !KeyOf of a group or an application resolves to: a uuid pk (Group.group_uuid, Application's pbm_uuid). */
const KEYOF_UUID = "00000000-0000-4000-8000-000000000002";
/** The pk type of each model a !KeyOf may name, by the model of the entry with that id. */
const keyOfPkByModel: Record<string, string | number> = {
  "authentik_providers_oauth2.oauth2provider": KEYOF_PK,
  "authentik_core.group": KEYOF_UUID,
  "authentik_core.application": KEYOF_UUID,
  "authentik_policies_reputation.reputationpolicy": KEYOF_UUID,
  // Policy.policy_uuid, Stage.stage_uuid, FlowStageBinding.fsb_uuid: uuid pks.
  "authentik_policies_expression.expressionpolicy": KEYOF_UUID,
  "authentik_stages_authenticator_validate.authenticatorvalidatestage": KEYOF_UUID,
  "authentik_flows.flowstagebinding": KEYOF_UUID,
};
let keyOfModels: Record<string, string> = {};

// Canary values: they must come out of the blueprint only where the blueprint reads them.
const CANARY = {
  BIFROST_DOMAIN: "bifrost.example.test",
  NB_AUTHENTIK_CLIENT_SECRET: "canary-oauth2-secret-7f3c",
  AUTHENTIK_GITHUB_CLIENT_ID: "canary-gh-client-id-51aa",
  AUTHENTIK_GITHUB_SECRET: "canary-gh-secret-9e02",
};

type Env = Record<string, string | undefined>;
/** Authentik's tags, kept as {tag, args} so that resolution can use a test environment. */
const tags = () => taggedNodes(["!Env", "!Context", "!KeyOf"], ["!Env", "!Context", "!Find", "!Format", "!If", "!Condition"]);

/** Parses with the tags kept as {tag, args} nodes (yaml rejects any tag not listed). */
function parseBlueprint(text: string): unknown {
  const doc = parseDocument(text, { customTags: tags(), uniqueKeys: true });
  expect(doc.errors.map(String)).toEqual([]);
  expect(doc.warnings.map(String)).toEqual([]);
  return doc.toJS();
}

/** Resolves the tags the way authentik/blueprints/v1/common.py does (see the file header). */
function resolve(value: unknown, env: Env, context: Record<string, unknown> = {}): unknown {
  if (isTagged(value)) {
    const a = value.args;
    switch (value.tag) {
      case "!Env": {
        const [key, dflt] = a.map((x) => resolve(x, env, context));
        return env[String(key)] || (dflt ?? null);
      }
      case "!Context": {
        const [key, dflt] = a.map((x) => resolve(x, env, context));
        return String(key) in context ? context[String(key)] : (dflt ?? null);
      }
      case "!Format": {
        const [fmt, ...args] = a.map((x) => resolve(x, env, context));
        let i = 0;
        const out = String(fmt).replace(/%s/g, () => String(args[i++]));
        if (i !== args.length) throw new Error(`!Format: ${args.length} args for ${i} placeholders`);
        return out;
      }
      case "!Condition": {
        const [mode, ...args] = a.map((x) => resolve(x, env, context));
        if (!args.length) throw new Error("!Condition: at least one value is required after mode selection");
        const b = args.map(Boolean);
        const m = String(mode).toUpperCase();
        if (m === "AND") return b.every(Boolean);
        if (m === "OR") return b.some(Boolean);
        if (m === "NAND") return !b.every(Boolean);
        if (m === "NOR") return !b.some(Boolean);
        throw new Error(`!Condition mode ${m} not imitated here`);
      }
      case "!If": {
        const cond = resolve(a[0], env, context);
        if (a.length === 1) return Boolean(cond);
        return resolve(cond ? a[1] : a[2], env, context);
      }
      case "!Find":
        return FIND_PK;
      case "!KeyOf": {
        const model = keyOfModels[String(a[0])];
        if (!model) throw new Error(`!KeyOf ${String(a[0])}: no entry has that id`);
        // A model not listed (a misspelt one in a broken copy) gets the integer; the schema judges it.
        return keyOfPkByModel[model] ?? KEYOF_PK;
      }
      default:
        throw new Error(`unhandled tag ${value.tag}`);
    }
  }
  if (Array.isArray(value)) return value.map((v) => resolve(v, env, context));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, env, context)]));
  }
  return value;
}

type Entry = { model: string; id?: string; state?: string; conditions?: unknown[]; identifiers: Record<string, unknown>; attrs: Record<string, unknown> };
type Blueprint = { version: number; metadata?: { name: string }; context?: Record<string, unknown>; entries: Entry[] };

function load(env: Env, text = blueprintText): Blueprint {
  const raw = parseBlueprint(text) as { entries: { id?: string; model: string }[] };
  keyOfModels = Object.fromEntries(raw.entries.filter((e) => e.id).map((e) => [e.id!, e.model]));
  return resolve(raw, env) as Blueprint;
}
/** The entries the importer would apply: all resolved conditions truthy. */
const applied = (bp: Blueprint) => bp.entries.filter((e) => (e.conditions ?? []).every(Boolean));

function validator(): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
  // Ajv ships no formats. The whole schema names four, from DRF's fields: "uuid" (RFC 4122
  // textual form), checked, since the blueprint's references are uuids; "date-time", "email"
  // and "uri", which no attr of this blueprint carries, are known and not checked.
  ajv.addFormat("uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  for (const unchecked of ["date-time", "email", "uri"]) ajv.addFormat(unchecked, true);
  return ajv.compile(schema);
}
const validate = validator();
const valid = (bp: unknown) => {
  const ok = validate(bp);
  return { ok, errors: ok ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`) };
};

const fullEnv: Env = { ...CANARY };
const noGithubEnv: Env = { BIFROST_DOMAIN: CANARY.BIFROST_DOMAIN, NB_AUTHENTIK_CLIENT_SECRET: CANARY.NB_AUTHENTIK_CLIENT_SECRET };
const byModel = (entries: Entry[], model: string) => entries.filter((e) => e.model === model);
type RawEntry = { model: string; id?: string; attrs: Record<string, unknown> };
const providerEntry = <E extends { model: string }>(bp: { entries: E[] }) => bp.entries.filter((e) => e.model === "authentik_providers_oauth2.oauth2provider")[0];
const applicationEntry = <E extends { model: string }>(bp: { entries: E[] }) => bp.entries.filter((e) => e.model === "authentik_core.application")[0];

describe("Authentik blueprint for NetBird against Authentik's blueprint schema", () => {
  it("the schema is Authentik's, and says which version it is", () => {
    expect(schema.$id).toBe("https://goauthentik.io/blueprints/schema.json");
    // The image is 2026.8.7, whose schema is not readable here; this is 2026.5.0-rc1's with
    // OAuth2Provider.grant_types (see .source.txt), the newest readable.
    expect(schema.title).toMatch(/^authentik 2026\.(5|8)\.\d+(-rc\d+)? Blueprint schema$/);
    const source = fs.readFileSync(path.join(__dirname, "fixtures/authentik-blueprint-schema.source.txt"), "utf8");
    expect(source).toMatch(/Commit:\s+[0-9a-f]{40}/);
    expect(source).toContain(schema.title.replace(/^authentik | Blueprint schema$/g, ""));
  });

  it("validates against the schema with and without the GitHub variables", () => {
    expect(valid(load(fullEnv)).errors).toEqual([]);
    // Without them the GitHub entry's attrs resolve to null and do not validate, which is
    // fine: the importer skips an entry whose conditions fail before it builds a serializer
    // for its attrs (authentik/blueprints/v1/importer.py). What is applied must validate.
    const bp = load(noGithubEnv);
    expect(valid({ ...bp, entries: applied(bp) }).errors).toEqual([]);
    expect(valid(bp).ok).toBe(false);
  });

  it("the provider: confidential, client id netbird, one strict redirect to netbird.<domain>/oauth2/callback", () => {
    const [provider] = byModel(applied(load(fullEnv)), "authentik_providers_oauth2.oauth2provider");
    expect(provider.identifiers).toEqual({ name: "netbird" });
    expect(provider.attrs).toMatchObject({ name: "netbird", client_type: "confidential", client_id: "netbird", issuer_mode: "per_provider" });
    expect(provider.attrs.redirect_uris).toEqual([{ matching_mode: "strict", url: `https://netbird.${CANARY.BIFROST_DOMAIN}/oauth2/callback` }]);
    expect(provider.attrs.authorization_flow).toBe(FIND_PK);
    expect(provider.attrs.invalidation_flow).toBe(FIND_PK);
    expect(provider.attrs.signing_key).toBe(FIND_PK);
    expect(provider.attrs.property_mappings).toEqual([FIND_PK, FIND_PK, FIND_PK]);
  });

  it("the !Find lookups name Authentik's default flows, signing key and openid/email/profile scopes", () => {
    const raw = parseBlueprint(blueprintText) as { entries: RawEntry[] };
    const finds = JSON.stringify(providerEntry(raw).attrs);
    for (const needle of [
      '["slug","default-provider-authorization-implicit-consent"]',
      '["slug","default-provider-invalidation-flow"]',
      '["name","authentik Self-signed Certificate"]',
      '["managed","goauthentik.io/providers/oauth2/scope-openid"]',
      '["managed","goauthentik.io/providers/oauth2/scope-email"]',
      '["managed","goauthentik.io/providers/oauth2/scope-profile"]',
    ]) {
      expect(finds).toContain(needle);
    }
  });

  it("the client secret comes from the environment; no literal secret is in the file", () => {
    const [provider] = byModel(applied(load(fullEnv)), "authentik_providers_oauth2.oauth2provider");
    expect(provider.attrs.client_secret).toBe(CANARY.NB_AUTHENTIK_CLIENT_SECRET);
    const raw = parseBlueprint(blueprintText) as { entries: RawEntry[] };
    expect(providerEntry(raw).attrs.client_secret).toEqual({ tag: "!Env", args: ["NB_AUTHENTIK_CLIENT_SECRET"] });
    for (const canary of Object.values(CANARY)) expect(blueprintText).not.toContain(canary);
    // Every secret-ish attr in the file is a tag, never a scalar.
    for (const e of raw.entries) {
      for (const key of ["client_secret", "consumer_secret", "consumer_key"]) {
        if (key in e.attrs) expect(isTagged(e.attrs[key]), key).toBe(true);
      }
    }
  });

  it("the application: slug netbird, provider = the provider entry, launch URL netbird.<domain>", () => {
    const bp = load(fullEnv);
    const [app] = byModel(applied(bp), "authentik_core.application");
    expect(app.identifiers).toEqual({ slug: "netbird" });
    expect(app.attrs).toEqual({ name: "NetBird", slug: "netbird", provider: KEYOF_PK, meta_launch_url: `https://netbird.${CANARY.BIFROST_DOMAIN}` });
    const raw = parseBlueprint(blueprintText) as { entries: RawEntry[] };
    const keyOf = applicationEntry(raw).attrs.provider as Tagged;
    expect(keyOf).toEqual({ tag: "!KeyOf", args: ["netbird-provider"] });
    expect(raw.entries.find((e) => e.id === "netbird-provider")).toBeDefined();
  });

  it("the GitHub source is applied only when both GitHub variables are non-empty", () => {
    const github = (env: Env) => byModel(applied(load(env)), "authentik_sources_oauth.oauthsource");
    const [source] = github(fullEnv);
    expect(source.identifiers).toEqual({ slug: "github" });
    expect(source.attrs).toMatchObject({
      slug: "github",
      provider_type: "github",
      consumer_key: CANARY.AUTHENTIK_GITHUB_CLIENT_ID,
      consumer_secret: CANARY.AUTHENTIK_GITHUB_SECRET,
      authentication_flow: FIND_PK,
      enrollment_flow: FIND_PK,
    });
    expect(github(noGithubEnv)).toEqual([]);
    expect(github({ ...noGithubEnv, AUTHENTIK_GITHUB_CLIENT_ID: CANARY.AUTHENTIK_GITHUB_CLIENT_ID })).toEqual([]);
    expect(github({ ...noGithubEnv, AUTHENTIK_GITHUB_SECRET: CANARY.AUTHENTIK_GITHUB_SECRET })).toEqual([]);
    // An empty variable is unset for !Env (`getenv(key) or default`).
    expect(github({ ...fullEnv, AUTHENTIK_GITHUB_SECRET: "" })).toEqual([]);
    // Provider and application never depend on GitHub.
    expect(applied(load(noGithubEnv)).map((e) => e.model)).toEqual([
      ...Array(4).fill("authentik_blueprints.metaapplyblueprint"),
      "authentik_providers_oauth2.oauth2provider",
      "authentik_core.application",
      "authentik_core.group",
      "authentik_policies.policybinding",
      "authentik_policies_reputation.reputationpolicy",
      "authentik_policies.policybinding",
      ...Array(2).fill("authentik_blueprints.metaapplyblueprint"),
      "authentik_policies_expression.expressionpolicy",
      "authentik_stages_authenticator_validate.authenticatorvalidatestage",
      "authentik_flows.flowstagebinding",
      "authentik_policies.policybinding",
      "authentik_policies.policybinding",
    ]);
  });

  it("declares the Authentik blueprints whose objects it finds, before the entries that find them; the source flows only with the GitHub login", () => {
    const metas = (env: Env) => byModel(applied(load(env)), "authentik_blueprints.metaapplyblueprint").map((e) => e.attrs);
    const base = [
      { identifiers: { name: "Default - Provider authorization flow (implicit consent)" }, required: true },
      { identifiers: { name: "Default - Provider invalidation flow" }, required: true },
      { identifiers: { name: "System - OAuth2 Provider - Scopes" }, required: true },
      { identifiers: { name: "Default - Authentication flow" }, required: true },
    ];
    const mfa = [
      { identifiers: { name: "Default - TOTP MFA setup flow" }, required: true },
      { identifiers: { name: "Default - WebAuthn MFA setup flow" }, required: true },
    ];
    expect(metas(noGithubEnv)).toEqual([...base, ...mfa]);
    expect(metas(fullEnv)).toEqual([
      ...base,
      { identifiers: { name: "Default - Source authentication flow" }, required: true },
      { identifiers: { name: "Default - Source enrollment flow" }, required: true },
      ...mfa,
    ]);
    const order = applied(load(fullEnv)).map((e) => e.model);
    expect(order.indexOf("authentik_blueprints.metaapplyblueprint")).toBe(0);
    expect(order.lastIndexOf("authentik_blueprints.metaapplyblueprint")).toBeLessThan(order.indexOf("authentik_stages_authenticator_validate.authenticatorvalidatestage"));
  });

  describe("a broken blueprint fails", () => {
    const edit = (from: string, to: string) => {
      expect(blueprintText).toContain(from);
      return load(fullEnv, blueprintText.replace(from, to));
    };

    it("a wrong model name", () => {
      const r = valid(edit("model: authentik_providers_oauth2.oauth2provider", "model: authentik_providers_oauth2.oauth2providerx"));
      expect(r.ok).toBe(false);
    });

    it("a wrong attr type (client_type outside its enum, redirect_uris as a bare string)", () => {
      expect(valid(edit("client_type: confidential", "client_type: secret")).ok).toBe(false);
      const bp = load(fullEnv);
      (providerEntry(bp).attrs as Record<string, unknown>).redirect_uris = `https://netbird.${CANARY.BIFROST_DOMAIN}/oauth2/callback`;
      expect(valid(bp).ok).toBe(false);
      const bad = load(fullEnv);
      (applicationEntry(bad).attrs as Record<string, unknown>).provider = "netbird";
      expect(valid(bad).ok).toBe(false);
    });

    it("an unknown attr: the schema allows it (no additionalProperties), the attr-name check does not", () => {
      const bp = edit("client_id: netbird", "client_id: netbird\n      client_idx: netbird");
      // Upstream's model definitions set no additionalProperties, so the schema alone accepts it...
      expect(valid(bp).ok).toBe(true);
      // ...therefore every attr and identifier name is also checked against the schema's properties.
      expect(unknownAttrs(bp)).toEqual(["authentik_providers_oauth2.oauth2provider: client_idx"]);
    });
  });

  it("every attr and identifier name of the real blueprint is a property the schema knows", () => {
    expect(unknownAttrs(load(fullEnv))).toEqual([]);
  });
});

/** Attr/identifier names that the model's schema definition does not list. */
function unknownAttrs(bp: Blueprint): string[] {
  // 2026.5's file keeps its definitions under $defs; 2026.8's under draft-07's `definitions`.
  const withDefs = schema as unknown as Record<"$defs" | "definitions", Record<string, { properties?: Record<string, unknown> }> | undefined>;
  const defs = withDefs.$defs ?? withDefs.definitions ?? {};
  const out: string[] = [];
  for (const e of bp.entries) {
    const props = defs[`model_${e.model}`]?.properties;
    if (!props) continue; // an unknown model is the schema's to reject
    for (const key of [...Object.keys(e.attrs ?? {}), ...Object.keys(e.identifiers ?? {})]) {
      if (!(key in props)) out.push(`${e.model}: ${key}`);
    }
  }
  return out;
}

describe("who may use NetBird through Authentik", () => {
  it("only the members of core:netbirdUsersGroup: the application is bound to that group, and to nothing else", () => {
    const bp = load({ ...fullEnv, BIFROST_NETBIRD_USERS_GROUP: "mesh-people" });
    expect(valid({ ...bp, entries: applied(bp) }).errors).toEqual([]);
    const groups = byModel(applied(bp), "authentik_core.group");
    expect(groups.map((g) => [g.identifiers, g.attrs.name])).toEqual([[{ name: "mesh-people" }, "mesh-people"]]);
    const bindings = byModel(applied(bp), "authentik_policies.policybinding").filter((b) => b.attrs.group !== undefined);
    expect(bindings).toHaveLength(1);
    // One of policy, group or user, and only one (authentik/policies/api/bindings.py).
    expect(bindings[0].attrs).toEqual({ target: KEYOF_UUID, group: KEYOF_UUID, order: 0, enabled: true, negate: false, timeout: 30 });
    expect(bindings[0].identifiers).toEqual({ target: KEYOF_UUID, order: 0 });
  });

  it("binds the NetBird application to the group entry, by their ids", () => {
    const raw = parseBlueprint(blueprintText) as { entries: (RawEntry & { identifiers?: Record<string, unknown> })[] };
    const binding = raw.entries.find((e) => e.model === "authentik_policies.policybinding")!;
    const keyOf = (v: unknown) => (isTagged(v) && v.tag === "!KeyOf" ? v.args[0] : undefined);
    const idOf = (model: string) => raw.entries.find((e) => e.model === model)?.id;
    expect(keyOf(binding.attrs.target)).toBe(idOf("authentik_core.application"));
    expect(keyOf(binding.identifiers?.target)).toBe(idOf("authentik_core.application"));
    expect(keyOf(binding.attrs.group)).toBe(idOf("authentik_core.group"));
    // The group entry comes first: !KeyOf names only what an earlier entry produced.
    const index = (model: string) => raw.entries.findIndex((e) => e.model === model);
    expect(index("authentik_core.group")).toBeLessThan(index("authentik_policies.policybinding"));
    expect(index("authentik_core.application")).toBeLessThan(index("authentik_policies.policybinding"));
  });

  it("the group defaults to netbird-users when the variable is empty", () => {
    const groups = byModel(applied(load(fullEnv)), "authentik_core.group");
    expect(groups[0].attrs.name).toBe("netbird-users");
  });
});

describe("password guessing at Authentik's login", () => {
  it("a reputation policy, bound negated to the default login flow: the flow does not start for an address ten failures down", () => {
    const bp = load(fullEnv);
    expect(valid({ ...bp, entries: applied(bp) }).errors).toEqual([]);
    const [policy] = byModel(applied(bp), "authentik_policies_reputation.reputationpolicy");
    expect(policy.attrs).toEqual({ name: "homelab-core login reputation", check_ip: true, check_username: true, threshold: -10 });
    const raw = parseBlueprint(blueprintText) as { entries: (RawEntry & { identifiers?: Record<string, unknown> })[] };
    const binding = raw.entries.filter((e) => e.model === "authentik_policies.policybinding").find((e) => JSON.stringify(e.attrs.target).includes("default-authentication-flow"))!;
    expect(binding.attrs).toMatchObject({ negate: true, enabled: true });
    expect(JSON.stringify(binding.attrs.target)).toBe('{"tag":"!Find","args":["authentik_flows.flow",["slug","default-authentication-flow"]]}');
    expect(binding.attrs.policy).toEqual({ tag: "!KeyOf", args: [policy.id] });
    expect(binding.attrs.group).toBeUndefined();
  });

  it("declares the login flow's blueprint, whose flow it finds", () => {
    const metas = byModel(applied(load(noGithubEnv)), "authentik_blueprints.metaapplyblueprint").map((e) => e.attrs);
    expect(metas).toContainEqual({ identifiers: { name: "Default - Authentication flow" }, required: true });
  });
});

/**
 * Runs a policy's expression as Authentik runs it (test/conformance/authentik_expression.py:
 * authentik/lib/expression/evaluator.py, with GitHub's membership API answering as upstream).
 */
function evaluate(expression: string, context: Record<string, unknown>, github: { token?: string; memberships?: Record<string, string> } = {}) {
  const run = spawnSync("python3", [path.join(repoRoot, "test/conformance/authentik_expression.py")], {
    input: JSON.stringify({ expression, context, github }),
    encoding: "utf8",
  });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { passing: boolean; messages: string[]; requests: { url: string; accept: string; bearer_ok: boolean; timeout: number }[] };
}
const object = (attrs: Record<string, unknown>) => ({ __object__: attrs });
const rawEntries = () => (parseBlueprint(blueprintText) as { entries: (RawEntry & { identifiers?: Record<string, unknown> })[] }).entries;
const findOf = (model: string, field: string, value: unknown) => ({ tag: "!Find", args: [model, [field, value]] });
const loginFlow = findOf("authentik_flows.flow", "slug", "default-authentication-flow");

describe("a second factor for administrators", () => {
  const entries = () => applied(load(noGithubEnv));
  const policy = () => byModel(entries(), "authentik_policies_expression.expressionpolicy").find((e) => e.identifiers.name === "homelab-core administrators")!;

  it("validates against the schema, the new models included", () => {
    const bp = load(noGithubEnv);
    expect(valid({ ...bp, entries: applied(bp) }).errors).toEqual([]);
    const broken = load(noGithubEnv, blueprintText.replace("not_configured_action: configure", "not_configured_action: enroll"));
    expect(valid({ ...broken, entries: applied(broken) }).ok).toBe(false);
  });

  it("administrators meet a stage that makes them set up TOTP or WebAuthn, after the password and before the login", () => {
    const raw = rawEntries();
    const stage = raw.find((e) => e.model === "authentik_stages_authenticator_validate.authenticatorvalidatestage")!;
    expect(stage.attrs).toMatchObject({ not_configured_action: "configure", device_classes: ["totp", "webauthn", "static"] });
    expect(stage.attrs.configuration_stages).toEqual([
      findOf("authentik_stages_authenticator_totp.authenticatortotpstage", "name", "default-authenticator-totp-setup"),
      findOf("authentik_stages_authenticator_webauthn.authenticatorwebauthnstage", "name", "default-authenticator-webauthn-setup"),
    ]);
    const binding = raw.find((e) => e.model === "authentik_flows.flowstagebinding")!;
    expect(binding.attrs).toEqual({ target: loginFlow, stage: { tag: "!KeyOf", args: [stage.id] }, order: 31, evaluate_on_plan: false, re_evaluate_policies: true });
    // flow-default-authentication-flow.yaml: password at 20, the optional MFA stage at 30, login at 100.
    expect(binding.attrs.order).toBeGreaterThan(30);
    expect(binding.attrs.order).toBeLessThan(100);
  });

  it("the stage is bound to administrators only, and the login flow's optional MFA stage to everyone else", () => {
    const raw = rawEntries();
    const admins = raw.find((e) => e.model === "authentik_policies_expression.expressionpolicy" && e.attrs.name === "homelab-core administrators")!;
    const ours = raw.find((e) => e.model === "authentik_flows.flowstagebinding")!;
    const bindings = raw.filter((e) => e.model === "authentik_policies.policybinding" && isTagged(e.attrs.policy) && e.attrs.policy.args[0] === admins.id);
    expect(bindings.map((b) => [b.attrs.target, b.attrs.negate])).toEqual([
      [{ tag: "!KeyOf", args: [ours.id] }, false],
      [
        {
          tag: "!Find",
          args: [
            "authentik_flows.flowstagebinding",
            ["target", loginFlow],
            ["stage", findOf("authentik_stages_authenticator_validate.authenticatorvalidatestage", "name", "default-authentication-mfa-validation")],
          ],
        },
        true,
      ],
      // The same stage on the GitHub source's authentication flow (issue 35; the flow-level
      // outcome: test/bifrost/authentikFlows.test.ts).
      [{ tag: "!KeyOf", args: ["admin-mfa-source-binding"] }, false],
    ]);
    // Each fails closed: a policy that raises yields failure_result (policies/process.py).
    expect(bindings.map((b) => b.attrs.failure_result)).toEqual([true, true, true]);
  });

  it("the policy, run as Authentik runs it, passes for a superuser being logged in and for no one else", () => {
    const { expression } = policy().attrs as { expression: string };
    expect(evaluate(expression, { pending_user: object({ username: "akadmin", is_superuser: true }) }).passing).toBe(true);
    expect(evaluate(expression, { pending_user: object({ username: "alice", is_superuser: false }) }).passing).toBe(false);
    // Before identification there is no pending user: not an administrator (yet).
    expect(evaluate(expression, {}).passing).toBe(false);
  });
});

describe("who may come in through GitHub", () => {
  const githubContext = (token = "gho_user") => ({
    source: object({ slug: "github", provider_type: "github" }),
    "goauthentik.io/sources/connection": object({ access_token: token }),
    oauth_userinfo: { login: "alice" },
  });
  const expressions = (env: Env) =>
    Object.fromEntries(byModel(applied(load(env)), "authentik_policies_expression.expressionpolicy").map((e) => [e.identifiers.name, e.attrs.expression as string]));
  const withOrg = { ...fullEnv, AUTHENTIK_GITHUB_ORG: "homelab-people" };

  it("a sign-up policy on the source's enrollment flow and a login policy on its authentication flow, only with the GitHub login on", () => {
    const bp = load(withOrg);
    expect(valid({ ...bp, entries: applied(bp) }).errors).toEqual([]);
    const raw = rawEntries();
    const id = (name: string) => raw.find((e) => e.attrs.name === name)!.id;
    const boundTo = (slug: string) =>
      raw.filter((e) => e.model === "authentik_policies.policybinding" && JSON.stringify(e.attrs.target) === JSON.stringify(findOf("authentik_flows.flow", "slug", slug)));
    expect(boundTo("default-source-enrollment").map((b) => [b.attrs.policy, b.attrs.negate])).toEqual([[{ tag: "!KeyOf", args: [id("homelab-core GitHub sign-up")] }, false]]);
    expect(boundTo("default-source-authentication").map((b) => [b.attrs.policy, b.attrs.negate])).toEqual([[{ tag: "!KeyOf", args: [id("homelab-core GitHub login")] }, false]]);
    expect(Object.keys(expressions(noGithubEnv))).toEqual(["homelab-core administrators"]);
    expect(Object.keys(expressions(withOrg)).sort()).toEqual(["homelab-core GitHub login", "homelab-core GitHub sign-up", "homelab-core administrators"]);
  });

  it("with an organisation: an active member signs up and logs in; an invited, a non-member and a wrong token do not", () => {
    const policies = expressions(withOrg);
    for (const name of ["homelab-core GitHub sign-up", "homelab-core GitHub login"]) {
      const expression = policies[name];
      const member = evaluate(expression, githubContext(), { token: "gho_user", memberships: { "homelab-people": "active" } });
      expect(member.passing, name).toBe(true);
      expect(member.requests).toEqual([{ url: "https://api.github.com/user/memberships/orgs/homelab-people", accept: "application/vnd.github+json", bearer_ok: true, timeout: 10 }]);
      const refusals: { token: string; memberships: Record<string, string> }[] = [
        { token: "gho_user", memberships: { "homelab-people": "pending" } },
        { token: "gho_user", memberships: { "other-org": "active" } },
        { token: "gho_other", memberships: { "homelab-people": "active" } },
      ];
      for (const github of refusals) {
        const refused = evaluate(expression, githubContext(), github);
        expect(refused.passing, `${name} ${JSON.stringify(github)}`).toBe(false);
        expect(refused.messages).toEqual(["Only members of the GitHub organisation homelab-people can sign in with GitHub here."]);
      }
    }
  });

  it("without an organisation: nobody signs up through GitHub, linked accounts still log in, and GitHub is not asked", () => {
    const policies = expressions(fullEnv);
    const signup = evaluate(policies["homelab-core GitHub sign-up"], githubContext(), { token: "gho_user", memberships: {} });
    expect(signup).toMatchObject({ passing: false, messages: ["Accounts cannot be created through GitHub here; ask an administrator."], requests: [] });
    const login = evaluate(policies["homelab-core GitHub login"], githubContext(), { token: "gho_user" });
    expect(login).toMatchObject({ passing: true, requests: [] });
  });

  it("refuses a flow no GitHub source started, and fails closed when the GitHub connection is missing", () => {
    const policies = expressions(withOrg);
    const other = evaluate(policies["homelab-core GitHub sign-up"], { source: object({ slug: "ldap", provider_type: "ldap" }) });
    expect(other).toMatchObject({ passing: false, messages: ["These flows are for signing in with GitHub."], requests: [] });
    expect(evaluate(policies["homelab-core GitHub login"], {})).toMatchObject({ passing: false, requests: [] });
    const { "goauthentik.io/sources/connection": _c, ...broken } = githubContext();
    expect(evaluate(policies["homelab-core GitHub sign-up"], broken, { token: "gho_user", memberships: { "homelab-people": "active" } }).passing).toBe(false);
  });

  it("asks GitHub for read:org only when an organisation is checked", () => {
    const scopes = (env: Env) => byModel(applied(load(env)), "authentik_sources_oauth.oauthsource")[0].attrs.additional_scopes;
    expect(scopes(withOrg)).toBe("read:org");
    expect(scopes(fullEnv)).toBe("");
  });
});
