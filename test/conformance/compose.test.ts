/**
 * The bundle against the real Compose v2 the VPS runs (Debian trixie's docker-compose, unpacked
 * by scripts/conformance-tools.sh) and against the compose-spec JSON schema that Compose embeds.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import Ajv, { type ValidateFunction } from "ajv";
import draft07 from "ajv/dist/refs/json-schema-draft-07.json";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { catalog, composeServices, entriesOnVps } from "../../components/secrets/catalog";
import type { SecretValues } from "../../components/secrets/render";
import { canary, canaryValues } from "../helpers/canaries";
import { copyBundle, hostileValues, removeBundle, settings, type Bundle } from "./bundle";
import { composeBinary, repoRoot, unpackedPackages } from "./tools";
import { composeImages, digestOverride, localTag } from "../engine/images";

const fixture = path.join(__dirname, "fixtures/compose-spec.json");
const composeSpec = JSON.parse(fs.readFileSync(fixture, "utf8")) as Record<string, unknown>;

type Environment = Record<string, string | null>;
interface Service {
  image?: string;
  environment?: Environment | string[];
  profiles?: string[];
  command?: string | string[];
}
interface ComposeModel {
  services: Record<string, Service>;
}

const bundles: Bundle[] = [];
function bundleWith(secrets: SecretValues): Bundle {
  const b = copyBundle(secrets);
  bundles.push(b);
  return b;
}
afterEach(() => {
  for (const b of bundles.splice(0)) removeBundle(b);
});

const rawModel = (b: Bundle) => YAML.parse(fs.readFileSync(b.compose, "utf8")) as ComposeModel;

/** Every profile the file declares: `config` then covers the optional services too. */
const profilesOf = (model: ComposeModel) => [...new Set(Object.values(model.services).flatMap((s) => s.profiles ?? []))].sort();

/**
 * `docker compose config` exactly as bootstrap.sh's compose() calls it: from the bundle
 * directory, `--env-file .env --env-file .secrets.env`, plus every profile. The environment
 * is empty but for PATH and a private HOME: Compose lets the process environment win over
 * the env files (compose-go v2.4.8 cli/options.go WithDotEnv merges the files with
 * types/mapping.go Mapping.Merge, which keeps a variable already set), so nothing of ours
 * may leak in.
 */
function composeConfig(b: Bundle, composeFiles?: string[]) {
  const profiles = profilesOf(rawModel(b)).flatMap((p) => ["--profile", p]);
  const r = spawnSync(composeBinary(), ["--env-file", ".env", "--env-file", ".secrets.env", ...profiles, "config", "--format", "json"], {
    cwd: b.dir,
    encoding: "utf8",
    env: { PATH: "/usr/bin:/bin", HOME: b.root, DOCKER_CONFIG: path.join(b.root, ".docker"), ...(composeFiles ? { COMPOSE_FILE: composeFiles.join(":") } : {}) },
  });
  return { ...r, model: r.status === 0 ? (JSON.parse(r.stdout) as ComposeModel) : undefined };
}

/**
 * `config` prints `$` as `$$` so its output can be fed back to Compose (docker/compose v2.26.1
 * cmd/compose/config.go: escapeDollarSign replaces every `$` unless --no-interpolate); the
 * container receives the unescaped value.
 */
const containerValue = (printed: string) => printed.replace(/\$\$/g, "$");

function environmentOf(s: Service): Environment {
  if (!Array.isArray(s.environment)) return s.environment ?? {};
  return Object.fromEntries(s.environment.map((kv) => [kv.split("=")[0], kv.slice(kv.indexOf("=") + 1)]));
}

const vpsSecretKeys = entriesOnVps().map((e) => e.key);
/**
 * `${KEY}`, `${KEY:-default}` or `${KEY:-${OTHER:-}}`: the raw value is exactly one catalog
 * secret, or one in place of another (a key the catalog ships replacedOnVpsBy).
 */
const secretReference = /^\$\{([A-Z][A-Z0-9_]*)(?::-(?:\$\{([A-Z][A-Z0-9_]*)(?::-)?\}|[^}$]*))?\}$/;

/** Where the raw compose file puts a catalog secret, whole, into a container's environment. */
function secretReferences(model: ComposeModel) {
  const refs: { service: string; variable: string; key: string; insteadOf?: string }[] = [];
  for (const [service, s] of Object.entries(model.services)) {
    for (const [variable, raw] of Object.entries(environmentOf(s))) {
      const match = typeof raw === "string" ? raw.match(secretReference) : null;
      const key = match?.[1];
      if (key && vpsSecretKeys.includes(key)) refs.push({ service, variable, key, insteadOf: match?.[2] });
    }
  }
  return refs;
}

describe("Compose v2 from Debian trixie (docker compose config)", () => {
  beforeAll(() => {
    composeBinary();
  });

  it("is the Compose v2 the VPS installs (2.26 or newer)", () => {
    const version = unpackedPackages()["docker-compose"];
    const [major, minor] = version.split(/[.-]/).map(Number);
    expect(major === 2 && minor >= 26, `docker-compose ${version}`).toBe(true);
    const r = spawnSync(composeBinary(), ["version", "--short"], { encoding: "utf8" });
    expect(r.stdout.trim()).toMatch(/^2\.\d+\.\d+/);
  });

  it("accepts the bundle with env files from the renderers, every profile enabled, without warnings", () => {
    const b = bundleWith(canaryValues("hetzner", "compose"));
    const r = composeConfig(b);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    // Every service, the optional ones of each profile included.
    expect(Object.keys(r.model!.services).sort()).toEqual(Object.keys(rawModel(b).services).sort());
  });

  it.each(hostileValues)("delivers every secret the file references to the container environment byte for byte: %j", (hostile) => {
    const keys = catalog.filter((e) => e.where.some((w) => w === ".env" || w === ".secrets.env")).map((e) => e.key);
    // Every key carries the hostile value, tagged with the key so that no two are equal.
    const secrets = Object.fromEntries(keys.map((k) => [k, `${hostile}|${k}`]));
    const b = bundleWith(secrets);
    const r = composeConfig(b);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const refs = secretReferences(rawModel(b));
    expect(refs.map((x) => x.key)).toEqual(expect.arrayContaining(["AUTHENTIK_POSTGRESQL_PASSWORD", "CLOUDFLARE_DNS_TOKEN", "AUTHENTIK_SECRET_KEY"]));
    expect(refs.find((x) => x.key === "CLOUDFLARE_DNS_TOKEN")?.insteadOf).toBe("CLOUDFLARE_API_TOKEN");
    for (const { service, variable, key } of refs) {
      const printed = environmentOf(r.model!.services[service])[variable];
      expect(typeof printed, `${service} ${variable}`).toBe("string");
      expect(containerValue(printed as string), `${service} ${variable} from ${key}`).toBe(secrets[key]);
    }
  });

  it("gives Traefik the narrower DNS token when SOPS has one, else the zone token (real Compose resolves the nested default)", () => {
    const values = canaryValues("hetzner", "acme");
    const traefikToken = (secrets: Record<string, string>) => {
      const r = composeConfig(bundleWith(secrets));
      expect(r.stderr).toBe("");
      return containerValue(environmentOf(r.model!.services.traefik).CF_DNS_API_TOKEN as string);
    };
    expect(traefikToken(values)).toBe(values.CLOUDFLARE_DNS_TOKEN);
    const { CLOUDFLARE_DNS_TOKEN: _dns, ...zoneOnly } = values;
    expect(traefikToken(zoneOnly)).toBe(values.CLOUDFLARE_API_TOKEN);
  });

  it("an image pinned by digest (as Renovate pins them) runs the engine tests' stand-in under its tag, through their override", () => {
    const b = bundleWith(canaryValues("hetzner", "digest"));
    const digest = `sha256:${"0123456789abcdef".repeat(4)}`;
    const pinned = fs.readFileSync(b.compose, "utf8").replace(/image: (traefik:\S+)/, `image: $1@${digest}`);
    fs.writeFileSync(b.compose, pinned);
    const images = Object.fromEntries(Object.entries(rawModel(b).services).map(([name, s]) => [name, s.image ?? ""]));
    expect(images.traefik).toMatch(/@sha256:/);
    const override = digestOverride(images)!;
    expect(YAML.parse(override)).toEqual({ services: { traefik: { image: localTag(images.traefik) } } });
    const file = path.join(b.root, "digests-override.yml");
    fs.writeFileSync(file, override);
    const plain = composeConfig(b);
    expect(plain.model!.services.traefik.image).toBe(images.traefik);
    const r = composeConfig(b, [b.compose, file]);
    expect(r.stderr).toBe("");
    expect(r.model!.services.traefik.image).toBe(images.traefik.replace(`@${digest}`, ""));
    expect(digestOverride(composeImages())).toBeUndefined();
  });

  it("pins the network and Traefik's address, and netbird-proxy trusts PROXY headers from that address only (real Compose)", () => {
    const r = composeConfig(bundleWith(canaryValues("hetzner", "pp")));
    expect(r.stderr).toBe("");
    const model = r.model as unknown as {
      networks: Record<string, { ipam?: { config?: { subnet?: string }[] } }>;
      services: Record<string, { networks?: Record<string, { ipv4_address?: string } | null>; environment: Record<string, string> | string[] }>;
    };
    expect(model.networks.bifrost.ipam?.config).toEqual([{ subnet: "198.18.0.0/24" }]);
    expect(model.services.traefik.networks?.bifrost?.ipv4_address).toBe("198.18.0.10");
    const proxy = environmentOf(model.services["netbird-proxy"] as unknown as Service);
    expect(proxy.NB_PROXY_PROXY_PROTOCOL).toBe("true");
    expect(proxy.NB_PROXY_TRUSTED_PROXIES).toBe("198.18.0.10");
  });

  it("Authentik as 2026.8 wants it: its base URL, X-Forwarded-* from Traefik only; Traefik lets netbird-proxy's ACME through (PITFALLS.md)", () => {
    const r = composeConfig(bundleWith(canaryValues("hetzner", "ak")));
    expect(r.stderr).toBe("");
    const model = r.model as unknown as { services: Record<string, Service & { command?: string[] }> };
    for (const service of ["authentik-server", "authentik-worker"]) {
      const env = environmentOf(model.services[service]);
      expect(env.AUTHENTIK_WEB__BASE_URL, service).toBe(`https://auth.${settings.domain}`);
      expect(env.AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS, service).toBe("198.18.0.10/32");
    }
    expect(model.services.traefik.command).toContain("--entryPoints.websecure.allowACMEByPass=true");
    expect(environmentOf(model.services.traefik).BIFROST_AUTHENTIK_ADMIN_SOURCES).toBe(settings.authentikAdminSources.join(" "));
  });

  it("gives Traefik only flags its configuration reference names (fixtures/traefik-static-options.txt)", () => {
    const r = composeConfig(bundleWith(canaryValues("hetzner", "flags")));
    const command = (r.model as unknown as { services: Record<string, { command: string[] }> }).services.traefik.command;
    const options = fs
      .readFileSync(path.join(__dirname, "fixtures/traefik-static-options.txt"), "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((o) => new RegExp(`^${o.replace(/[.]/g, "\\.").replace(/_name_/g, "[^.]+")}$`));
    const names = command.map((flag) => flag.replace(/^--/, "").replace(/=.*$/, "").toLowerCase());
    expect(names.filter((n) => !options.some((o) => o.test(n)))).toEqual([]);
    // Issue 30: every encoded character Traefik can refuse is refused on both entry points.
    for (const entryPoint of ["web", "websecure"])
      for (const character of ["Slash", "BackSlash", "NullCharacter", "Semicolon", "Percent", "QuestionMark", "Hash"])
        expect(command).toContain(`--entryPoints.${entryPoint}.http.encodedCharacters.allowEncoded${character}=false`);
  });

  describe("hardening, as the real Compose resolves it", () => {
    interface Hardened {
      security_opt?: string[];
      cap_drop?: string[];
      cap_add?: string[];
      mem_limit?: string | number;
      pids_limit?: number;
      logging?: { driver?: string; options?: Record<string, string> };
      networks?: Record<string, unknown>;
      command?: string[];
    }
    const resolved = () => {
      const r = composeConfig(bundleWith(canaryValues("hetzner", "hard")));
      expect(r.stderr).toBe("");
      return r.model as unknown as { services: Record<string, Hardened>; networks: Record<string, { internal?: boolean }> };
    };
    /** Images that run as a non-root user (authentik Dockerfile `USER 1000`; netbird proxy/Dockerfile, uid 1000). */
    const runAsUser = ["authentik-server", "authentik-worker", "netbird-proxy"];

    it("every service: no new privileges, a memory and a process limit, json-file logs that rotate", () => {
      const model = resolved();
      expect(Object.keys(model.services).sort()).toEqual([...composeServices].sort());
      for (const [name, service] of Object.entries(model.services)) {
        expect(service.security_opt, name).toEqual(["no-new-privileges:true"]);
        // Compose prints mem_limit in bytes.
        expect(Number(service.mem_limit), name).toBeGreaterThanOrEqual(128 * 2 ** 20);
        expect(Number(service.mem_limit), name).toBeLessThanOrEqual(2 ** 30);
        expect(service.pids_limit, name).toBeGreaterThanOrEqual(256);
        expect(service.logging, name).toEqual({ driver: "json-file", options: { "max-size": "100m", "max-file": "3" } });
      }
    });

    it("drops every capability from the images that run as a non-root user, and adds none back", () => {
      const model = resolved();
      for (const name of runAsUser) {
        expect(model.services[name].cap_drop, name).toEqual(["ALL"]);
        expect(model.services[name].cap_add, name).toBeUndefined();
      }
    });

    it("puts Postgres on an internal network that only Authentik's server and worker share", () => {
      const model = resolved();
      expect(model.networks["bifrost-db"].internal).toBe(true);
      expect(Object.keys(model.services["authentik-postgres"].networks ?? {})).toEqual(["bifrost-db"]);
      const onDb = Object.entries(model.services).filter(([, s]) => Object.keys(s.networks ?? {}).includes("bifrost-db")).map(([n]) => n);
      expect(onDb.sort()).toEqual(["authentik-postgres", "authentik-server", "authentik-worker"]);
    });

    it("writes Traefik's access log without request paths, which carry OAuth2 codes in their query", () => {
      const command = resolved().services.traefik.command ?? [];
      expect(command).toEqual(expect.arrayContaining(["--accesslog=true", "--accesslog.format=json", "--accesslog.fields.names.RequestPath=drop"]));
      expect(command.some((c) => c.startsWith("--accesslog.fields.headers"))).toBe(false);
    });
  });

  it("lets no secret reach a service that is not among its catalog consumers", () => {
    const b = bundleWith(canaryValues("hetzner", "blast"));
    const r = composeConfig(b);
    expect(r.status).toBe(0);
    const markers = Object.fromEntries(Object.keys(canaryValues("hetzner", "blast")).map((k) => [k, canary(k, "blast").marker]));
    for (const e of entriesOnVps()) {
      expect(markers[e.key], e.key).toBeDefined();
      const reached = Object.entries(r.model!.services)
        .filter(([, s]) => JSON.stringify(s).includes(markers[e.key]))
        .map(([name]) => name);
      expect(reached.filter((s) => !(e.consumers as readonly string[]).includes(s)), `${e.key} reaches`).toEqual([]);
    }
  });
});

/**
 * Ajv in strict mode (unknown keywords and formats are errors, so nothing of the schema is
 * silently ignored) except strictTypes, which only lints how a schema is written (e.g. an
 * `additionalProperties` beside a `oneOf` without `"type": "object"`, as compose-spec.json
 * does) and changes nothing it accepts. The file names its meta-schema
 * https://json-schema.org/draft-07/schema (no `#`): the draft-07 meta-schema Ajv ships,
 * registered under that id.
 */
function composeSchemaValidator(): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
  ajv.addMetaSchema({ ...draft07, $id: composeSpec.$schema as string });
  return ajv.compile(composeSpec);
}

describe("compose-spec JSON schema (test/conformance/fixtures/compose-spec.json)", () => {
  let validate: ValidateFunction;
  beforeAll(() => {
    validate = composeSchemaValidator();
  });

  it("is the schema embedded in trixie's docker-compose, byte for byte", () => {
    const binary = fs.readFileSync(composeBinary());
    const text = fs.readFileSync(fixture);
    expect(binary.indexOf(text), "fixture not found verbatim in the binary: update it (see compose-spec.SOURCE.md)").toBeGreaterThan(-1);
  });

  it("accepts docker-compose.yml", () => {
    const model = YAML.parse(fs.readFileSync(path.join(repoRoot, "cloud/bifrost/docker-compose.yml"), "utf8"));
    expect(validate(model), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  it("accepts what Compose resolved from it", () => {
    const r = composeConfig(bundleWith(canaryValues("hetzner", "schema")));
    expect(r.status).toBe(0);
    expect(validate(r.model), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });
});

describe("a broken bundle fails the real Compose and the schema", () => {
  /** Text edits of docker-compose.yml, each one invalid per the compose spec. */
  const breakages: [string, (text: string) => string, RegExp][] = [
    ["an unknown service field", (t) => t.replace(/^(  traefik:\n)/m, "$1    restart_policy: always\n"), /restart_policy/],
    ["a wrong type (ports as a string)", (t) => t.replace(/^( {4})ports:\n {6}- "80:80"\n {6}- "443:443"\n/m, '$1ports: "80:80"\n'), /ports/],
    ["an unknown top-level key", (t) => `${t}\nservicez: {}\n`, /servicez/],
  ];

  it.each(breakages)("%s", (_name, edit, mentions) => {
    const b = bundleWith(canaryValues("hetzner", "broken"));
    const original = fs.readFileSync(b.compose, "utf8");
    const broken = edit(original);
    expect(broken, "the edit must apply to the current docker-compose.yml").not.toBe(original);
    fs.writeFileSync(b.compose, broken);
    const r = composeConfig(b);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(mentions);
    expect(composeSchemaValidator()(YAML.parse(broken))).toBe(false);
  });
});
