/**
 * No exposure window for NetBird's first-boot setup: POST /api/setup needs no login, so the
 * router that would carry it from the internet must refuse it, before and after the bootstrap
 * has called it (over the loopback port). Routing is decided as Traefik v3 decides it: among
 * the routers of the entry point whose rule matches, the highest priority wins, and a router
 * without one has its rule's length as priority (Traefik docs, routing/routers "priority").
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { bundleDir } from "../../components/stack/paths";

const domain = "edge.example.test";

interface Router {
  rule: string;
  entryPoints: string[];
  service: string;
  priority?: number;
  middlewares?: string[];
}

/**
 * The template's static part with the domain filled in: the `range` blocks over public
 * services are dropped (this test is about NetBird's routes), as is every other action.
 */
function dynamicConfig(adminSources = "", authentikAdminSources = ""): { http: { routers: Record<string, Router>; middlewares: Record<string, Record<string, { sourceRange?: string[] }>> } } {
  const template = fs.readFileSync(path.join(bundleDir, "traefik/dynamic/bifrost.yml"), "utf8");
  const withoutRanges = template.replace(/\{\{- range[\s\S]*?\{\{- end \}\}\s*\{\{- end \}\}/g, "");
  // The allow list's one action, evaluated as Go's text/template with sprig would: a non-empty
  // BIFROST_NETBIRD_ADMIN_SOURCES split at spaces, empty parts dropped, as JSON; else everyone.
  const adminSourceRange = adminSources ? JSON.stringify(adminSources.split(" ").filter((s) => s !== "")) : '["0.0.0.0/0", "::/0"]';
  // The same for Authentik's admin side, whose unset value is closed: Traefik's loopback only.
  const authentikSourceRange = authentikAdminSources ? JSON.stringify(authentikAdminSources.split(" ").filter((s) => s !== "")) : '["127.0.0.1/32"]';
  const text = withoutRanges
    .replace(/\{\{ if env "BIFROST_NETBIRD_ADMIN_SOURCES" \}\}.*\{\{ end \}\}/, adminSourceRange)
    .replace(/\{\{ if env "BIFROST_AUTHENTIK_ADMIN_SOURCES" \}\}.*\{\{ end \}\}/, authentikSourceRange)
    .replace(/\{\{ \$domain \}\}/g, domain)
    .replace(/\{\{ regexQuoteMeta \$domain \}\}/g, domain.replace(/\./g, "\\."))
    .replace(/\{\{ \$authentikOutpost \}\}/g, "http://authentik-server:9000")
    .replace(/^\s*\{\{-.*\}\}\s*$/gm, "");
  expect(text).not.toContain("{{");
  return parseYaml(text);
}

/** Evaluates the rule matchers the file uses: Host, Path, PathPrefix, joined by &&, || and parentheses. */
function matches(rule: string, host: string, requestPath: string): boolean {
  const tokens = rule.match(/\w+\(`[^`]*`\)|&&|\|\||\(|\)/g) ?? [];
  let i = 0;
  const primary = (): boolean => {
    const t = tokens[i++];
    if (t === "(") {
      const v = or();
      i++; // ")"
      return v;
    }
    const m = /^(\w+)\(`([^`]*)`\)$/.exec(t)!;
    switch (m[1]) {
      case "Host":
        return host === m[2];
      case "Path":
        return requestPath === m[2];
      case "PathPrefix":
        return requestPath.startsWith(m[2]);
      default:
        throw new Error(`matcher ${m[1]} is not evaluated by this test`);
    }
  };
  const and = (): boolean => {
    let v = primary();
    while (tokens[i] === "&&") {
      i++;
      v = primary() && v;
    }
    return v;
  };
  const or = (): boolean => {
    let v = and();
    while (tokens[i] === "||") {
      i++;
      v = and() || v;
    }
    return v;
  };
  return or();
}

function route(host: string, requestPath: string, adminSources = "", authentikAdminSources = ""): [string, Router] {
  const routers = Object.entries(dynamicConfig(adminSources, authentikAdminSources).http.routers).filter(([, r]) => r.entryPoints.includes("websecure") && matches(r.rule, host, requestPath));
  routers.sort(([, a], [, b]) => (b.priority ?? b.rule.length) - (a.priority ?? a.rule.length));
  expect(routers.length, `${host}${requestPath}`).toBeGreaterThan(0);
  return routers[0];
}

/** Whether an IPv4 client lies in an IPv4 range (an IPv6 range holds no IPv4 client). */
function inRange(client: string, range: string): boolean {
  const [base, bits = "32"] = range.split("/");
  const toNumber = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
  if (base.includes(":") || client.includes(":")) return base.includes(":") && client.includes(":") && Number(bits) === 0;
  const size = 2 ** (32 - Number(bits));
  return Math.floor(toNumber(client) / size) === Math.floor(toNumber(base) / size);
}

/** Whether a request from `client` gets through the router's middlewares (ipAllowList only). */
function admits(router: Router, client: string, adminSources = "", authentikAdminSources = ""): boolean {
  const middlewares = dynamicConfig(adminSources, authentikAdminSources).http.middlewares;
  return (router.middlewares ?? []).every((name) => {
    const allow = middlewares[name]?.ipAllowList;
    if (!allow) return true;
    return (allow.sourceRange ?? []).some((range) => inRange(client, range));
  });
}

describe("Traefik and NetBird's first-boot setup", () => {
  it.each(["/api/setup", "/api/setup/"])("refuses %s from any internet address", (requestPath) => {
    const [name, router] = route(`netbird.${domain}`, requestPath);
    expect(name).toBe("netbird-setup-blocked");
    for (const client of ["203.0.113.50", "198.51.100.7", "10.0.0.5", "172.18.0.1"]) expect(admits(router, client)).toBe(false);
  });

  it("admits nothing but the loopback address, which no request from outside has", () => {
    const middleware = dynamicConfig().http.middlewares["refuse-external"];
    expect(middleware.ipAllowList.sourceRange).toEqual(["127.0.0.1/32"]);
  });

  it("still routes the rest of the API, the IdP and the dashboard", () => {
    expect(route(`netbird.${domain}`, "/api/users")[0]).toBe("netbird-api");
    expect(route(`netbird.${domain}`, "/api/instance")[0]).toBe("netbird-api");
    expect(route(`netbird.${domain}`, "/oauth2/.well-known/openid-configuration")[0]).toBe("netbird-oauth2");
    expect(route(`netbird.${domain}`, "/peers")[0]).toBe("netbird-dashboard");
    expect(admits(route(`netbird.${domain}`, "/api/users")[1], "203.0.113.50")).toBe(true);
  });

  // A prefix rule would swallow a sibling path: the dashboard's setup-key calls must pass.
  it.each(["/api/setup-keys", "/api/setup-keys/", "/api/setup-keys/d2b5a5c0-1f9e-4c53-9a0f-3f1d2c4b5a6e", "/api/setupx", "/api/users"])(
    "routes %s to NetBird's API for any internet address",
    (requestPath) => {
      const [name, router] = route(`netbird.${domain}`, requestPath);
      expect(name).toBe("netbird-api");
      expect(admits(router, "203.0.113.50")).toBe(true);
    },
  );

  it("the bootstrap calls /api/setup on the loopback port netbird-server publishes, not through Traefik", () => {
    const runner = fs.readFileSync(path.join(bundleDir, "bootstrap.sh"), "utf8");
    expect(runner).toMatch(/NETBIRD_API="\$\{BIFROST_NETBIRD_API:-http:\/\/127\.0\.0\.1:8081\}"/);
    const steps = fs.readFileSync(path.join(bundleDir, "steps", "netbird.sh"), "utf8");
    expect(steps).toContain('POST "$NETBIRD_API/api/setup" ""');
    const compose = parseYaml(fs.readFileSync(path.join(bundleDir, "docker-compose.yml"), "utf8"));
    expect(compose.services["netbird-server"].ports).toContain("127.0.0.1:8081:80");
  });
});

describe("Traefik and netbird-proxy's client addresses", () => {
  it("sends a PROXY protocol v2 header on the TLS passthrough to netbird-proxy (a TCP serversTransport, Traefik >= 3.5.2)", () => {
    const tcp = (dynamicConfig() as unknown as { tcp: { serversTransports: Record<string, { proxyProtocol?: { version?: number } }>; services: Record<string, { loadBalancer: { serversTransport?: string } }> } }).tcp;
    const transport = tcp.services["netbird-proxy"].loadBalancer.serversTransport;
    expect(transport).toBeDefined();
    expect(tcp.serversTransports[transport!].proxyProtocol).toEqual({ version: 2 });
  });
});

describe("Traefik and Authentik's code-executing APIs (Authentik hardening guide, 'Expressions')", () => {
  it.each([
    "/api/v3/policies/expression/",
    "/api/v3/policies/expression/5f1c3c9e-0d7e-4a55-9a8f-1b2c3d4e5f60/",
    "/api/v3/propertymappings/all/",
    "/api/v3/propertymappings/provider/scope/",
    "/api/v3/propertymappings/source/oauth/",
    "/api/v3/managed/blueprints/",
    "/api/v3/managed/blueprints/available/",
  ])("refuses %s from any internet address", (requestPath) => {
    const [name, router] = route(`auth.${domain}`, requestPath);
    expect(name).toBe("authentik-code-apis-blocked");
    for (const client of ["203.0.113.50", "198.51.100.7", "10.0.0.5"]) expect(admits(router, client)).toBe(false);
  });

  it("refuses them from the admin sources too", () => {
    const [name, router] = route(`auth.${domain}`, "/api/v3/policies/expression/", "", "198.51.100.0/24");
    expect(name).toBe("authentik-code-apis-blocked");
    expect(admits(router, "198.51.100.7", "", "198.51.100.0/24")).toBe(false);
  });
  it("the bootstrap reaches Authentik's API on the loopback port, not through Traefik", () => {
    const runner = fs.readFileSync(path.join(bundleDir, "bootstrap.sh"), "utf8");
    expect(runner).toMatch(/AUTHENTIK_API="\$\{BIFROST_AUTHENTIK_API:-http:\/\/127\.0\.0\.1:9000\}"/);
    const compose = parseYaml(fs.readFileSync(path.join(bundleDir, "docker-compose.yml"), "utf8"));
    expect(compose.services["authentik-server"].ports).toEqual(["127.0.0.1:9000:9000"]);
  });
});

/**
 * Issue 35: from the internet Authentik serves what its end users need, an allow list read in
 * upstream's routing (traefik/dynamic/bifrost.yml cites it); everything else only from
 * core:authentikAdminSources, and from nowhere outside when that is unset.
 */
describe("Authentik's public surface is an allow list", () => {
  const endUser = [
    "/",
    "/if/flow/default-authentication-flow/",
    "/flows/-/default/authentication/",
    "/static/dist/flow/FlowInterface-2026.8.7.js",
    "/ws/client/",
    "/api/v3/flows/executor/default-authentication-flow/",
    "/api/v3/root/config/",
    "/api/v3/core/brands/current/",
    "/application/o/authorize/",
    "/application/o/token/",
    "/application/o/netbird/.well-known/openid-configuration",
    "/source/oauth/login/github/",
    "/source/oauth/callback/github/",
    "/if/user/",
    "/api/v3/core/users/me/",
    "/api/v3/authenticators/all/",
    "/api/v3/authenticators/totp/3/",
    "/api/v3/stages/all/user_settings/",
    "/-/health/live/",
  ];
  const adminOnly = [
    "/if/admin/",
    "/api/v3/core/users/",
    "/api/v3/core/users/7/set_password/",
    "/api/v3/core/tokens/",
    "/api/v3/core/tokens/authentik-bootstrap-token/view_key/",
    "/api/v3/core/applications/netbird/",
    "/api/v3/policies/bindings/",
    "/api/v3/policies/all/5f1c3c9e-0d7e-4a55-9a8f-1b2c3d4e5f60/test/",
    "/api/v3/stages/prompt/prompts/preview/",
    "/api/v3/stages/prompt/prompts/",
    "/api/v3/events/transports/",
    "/api/v3/authenticators/admin/totp/",
    "/api/v3/flows/inspector/",
    "/api/v3/flows/instances/",
    "/api/v3/rbac/roles/",
    "/api/v3/admin/settings/",
    "/api/v3/schema/",
    "/ws/outpost/5f1c3c9e-0d7e-4a55-9a8f-1b2c3d4e5f60/",
    "/-/health/ready/",
    "/files/reports/x",
    "/if/admin",
    "/API/v3/core/users/",
  ];

  it.each(endUser)("%s is served to any internet address", (requestPath) => {
    const [name, router] = route(`auth.${domain}`, requestPath);
    expect(name).toBe("authentik");
    expect(admits(router, "203.0.113.50")).toBe(true);
  });

  it.each(adminOnly)("%s is refused from the internet when core:authentikAdminSources is unset", (requestPath) => {
    const [name, router] = route(`auth.${domain}`, requestPath);
    expect(name).toBe("authentik-admin");
    for (const client of ["203.0.113.50", "198.51.100.7", "10.0.0.5", "172.18.0.1"]) expect(admits(router, client)).toBe(false);
  });

  it.each(adminOnly)("%s is served to an admin source, and refused to any other address", (requestPath) => {
    const [name, router] = route(`auth.${domain}`, requestPath, "", "198.51.100.0/24");
    expect(name).toBe("authentik-admin");
    expect(admits(router, "198.51.100.7", "", "198.51.100.0/24")).toBe(true);
    expect(admits(router, "203.0.113.50", "", "198.51.100.0/24")).toBe(false);
  });
});

describe("Traefik's TLS and browser headers", () => {
  it("answers TLS only for the names it serves (sniStrict), from TLS 1.2 up", () => {
    const tls = (dynamicConfig() as unknown as { tls: { options: { default: Record<string, unknown> } } }).tls;
    expect(tls.options.default).toEqual({ sniStrict: true, minVersion: "VersionTLS12" });
  });

  it("sends HSTS and nosniff on every router a browser uses; NetBird's gRPC and relay streams go untouched", () => {
    const config = dynamicConfig() as unknown as { http: { routers: Record<string, Router>; middlewares: Record<string, { headers?: Record<string, unknown> }> } };
    expect(config.http.middlewares["security-headers"].headers).toEqual({ stsSeconds: 31536000, stsIncludeSubdomains: true, contentTypeNosniff: true });
    const streams = ["netbird-grpc", "netbird-relay"];
    const refused = Object.entries(config.http.routers).filter(([, r]) => r.middlewares?.includes("refuse-external")).map(([n]) => n);
    expect(refused.sort()).toEqual(["authentik-code-apis-blocked", "netbird-proxy-service-blocked", "netbird-setup-blocked"]);
    for (const [name, router] of Object.entries(config.http.routers)) {
      if (streams.includes(name) || refused.includes(name)) continue;
      expect(router.middlewares?.[0], name).toBe("security-headers");
    }
    // The public services' routers come from a template range this parser drops: read them as text.
    const template = fs.readFileSync(path.join(bundleDir, "traefik/dynamic/bifrost.yml"), "utf8");
    const publicBlock = template.slice(template.indexOf("public-{{ $name }}:"), template.indexOf("  middlewares:\n"));
    expect(publicBlock.match(/middlewares: \[.*\]/g)).toEqual(["middlewares: [security-headers, authentik-forward-auth]", "middlewares: [security-headers]"]);
  });
});

describe("Traefik and NetBird's proxy management service", () => {
  it("refuses ProxyService from any internet address: only netbird-proxy uses it, inside the Compose network", () => {
    const [name, router] = route(`netbird.${domain}`, "/management.ProxyService/CreateProxyPeer");
    expect(name).toBe("netbird-proxy-service-blocked");
    expect(admits(router, "203.0.113.50")).toBe(false);
    const compose = parseYaml(fs.readFileSync(path.join(bundleDir, "docker-compose.yml"), "utf8"));
    expect(compose.services["netbird-proxy"].environment.NB_PROXY_MANAGEMENT_ADDRESS).toBe("http://netbird-server:80");
  });

  it("still carries the peers' management and signal streams", () => {
    expect(route(`netbird.${domain}`, "/management.ManagementService/Login")[0]).toBe("netbird-grpc");
    expect(route(`netbird.${domain}`, "/signalexchange.SignalExchange/ConnectStream")[0]).toBe("netbird-grpc");
  });
});

describe("Traefik's rate limits", () => {
  const config = () => dynamicConfig() as unknown as { http: { routers: Record<string, Router>; middlewares: Record<string, Record<string, unknown>> } };

  it("limits each client address on Authentik, NetBird's /api and /oauth2, and nowhere a peer streams", () => {
    const limited = (host: string, requestPath: string) => {
      const [, router] = route(host, requestPath);
      return ["per-client-rate", "per-client-in-flight"].every((m) => router.middlewares?.includes(m));
    };
    for (const p of ["/", "/if/flow/default-authentication-flow/", "/api/v3/flows/executor/x/", "/application/o/token/"]) expect(limited(`auth.${domain}`, p), p).toBe(true);
    for (const p of ["/api/users", "/api/peers", "/oauth2/token", "/oauth2/auth"]) expect(limited(`netbird.${domain}`, p), p).toBe(true);
    for (const p of ["/management.ManagementService/Sync", "/signalexchange.SignalExchange/ConnectStream", "/relay", "/ws-proxy/signal"]) expect(limited(`netbird.${domain}`, p), p).toBe(false);
  });

  it("sizes them as a token bucket of 100 at once and 20 a second, 50 open requests, per client address", () => {
    const m = config().http.middlewares;
    expect(m["per-client-rate"]).toEqual({ rateLimit: { average: 20, period: "1s", burst: 100 } });
    expect(m["per-client-in-flight"]).toEqual({ inFlightReq: { amount: 50 } });
  });
});

describe("Traefik's timeouts towards the services (issue 17, item 7)", () => {
  type Services = Record<string, { loadBalancer: { serversTransport?: string } }>;
  type Transports = Record<string, { forwardingTimeouts?: Record<string, string> }>;
  const http = () => (dynamicConfig() as unknown as { http: { services: Services; serversTransports: Transports } }).http;
  const seconds = (d: string | undefined) => (d && /^\d+s$/.test(d) ? Number(d.slice(0, -1)) : 0);

  it.each(["authentik", "netbird-dashboard"])("%s, answering request by request, gets finite dial, response-header and idle timeouts", (service) => {
    const { services, serversTransports } = http();
    const timeouts = serversTransports[services[service].loadBalancer.serversTransport ?? ""]?.forwardingTimeouts ?? {};
    for (const field of ["dialTimeout", "responseHeaderTimeout", "idleConnTimeout"]) expect(seconds(timeouts[field]), field).toBeGreaterThan(0);
  });

  it("each public service gets the same transport (the template's range block)", () => {
    const template = fs.readFileSync(path.join(bundleDir, "traefik/dynamic/bifrost.yml"), "utf8");
    expect(template).toMatch(/public-\{\{ \$parts\._0 \}\}:\n\s+loadBalancer:\n\s+serversTransport: bounded\n/);
  });

  it.each(["netbird-grpc", "netbird-http"])("%s keeps no response-header limit: NetBird's gRPC streams and relay websockets are long-lived", (service) => {
    const { services, serversTransports } = http();
    const transport = services[service].loadBalancer.serversTransport;
    expect(transport === undefined || !serversTransports[transport]?.forwardingTimeouts?.responseHeaderTimeout).toBe(true);
  });
});

describe("core:netbirdAdminSources: NetBird's dashboard and REST API for chosen addresses only (issue 17, item 5)", () => {
  const routed = (requestPath: string, adminSources: string) => {
    const [, router] = route(`netbird.${domain}`, requestPath, adminSources);
    const allow = dynamicConfig(adminSources).http.middlewares["netbird-admin-sources"]?.ipAllowList;
    return { router, sourceRange: router.middlewares?.includes("netbird-admin-sources") ? allow?.sourceRange : undefined };
  };

  it.each(["/", "/peers", "/api/users", "/api/setup-keys"])("%s goes through the allow list, which holds exactly the setting's ranges", (requestPath) => {
    expect(routed(requestPath, "198.51.100.0/24 2001:db8::/64").sourceRange).toEqual(["198.51.100.0/24", "2001:db8::/64"]);
  });

  it("a client outside the ranges is refused, one inside admitted", () => {
    const [, router] = route(`netbird.${domain}`, "/api/users", "198.51.100.0/24");
    expect(admits(router, "203.0.113.50", "198.51.100.0/24")).toBe(false);
    expect(admits(router, "198.51.100.7", "198.51.100.0/24")).toBe(true);
  });

  it("unset, the allow list lets every address through", () => {
    expect(routed("/api/users", "").sourceRange).toEqual(["0.0.0.0/0", "::/0"]);
  });

  it.each(["/oauth2/auth", "/management.ManagementService/Login", "/relay", "/signalexchange.SignalExchange/Send"])("%s, which every peer uses from wherever it is, stays open", (requestPath) => {
    expect(routed(requestPath, "198.51.100.0/24").sourceRange).toBeUndefined();
  });
});

/**
 * Issue 30: a request path as Traefik v3.7.9 handles it before and after choosing a router
 * (traefik/traefik, read at tag v3.7.9):
 * 1. pkg/server/server_entrypoint_tcp.go normalizePath: unreserved characters percent-encoded
 *    in the raw path are decoded (RFC 3986 §2.3), other encodings upper-cased;
 * 2. sanitizePath (sanitizePath defaults to true): url.URL.JoinPath, i.e. Go's path.Join over
 *    the escaped path — ".", ".." and repeated slashes removed, one trailing slash kept;
 * 3. pkg/muxer/http/mux.go withRoutingPath: rules match that escaped path, reserved characters
 *    still encoded; Path and PathPrefix compare case-sensitively;
 * 4. pkg/server/router/deny.go, on the chosen router: 400 when the escaped path holds an
 *    encoding the entry point does not allow (pkg/config/dynamic/http_config.go Map: %2F %2f
 *    %5C %5c %00 %3B %3b %25 %3F %3f %23).
 */
const unreservedCharacter = /^[A-Za-z0-9\-._~]$/;

function normalizedPath(raw: string): string {
  return raw.replace(/%[0-9A-Fa-f]{2}/g, (enc) => {
    const c = String.fromCharCode(parseInt(enc.slice(1), 16));
    return unreservedCharacter.test(c) ? c : enc.toUpperCase();
  });
}

/** Go's path.Join (path.Clean) on an absolute path, keeping a trailing slash as url.JoinPath does. */
function sanitizedPath(p: string): string {
  const out: string[] = [];
  for (const segment of p.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  const cleaned = `/${out.join("/")}`;
  return p.endsWith("/") && !cleaned.endsWith("/") ? `${cleaned}/` : cleaned;
}

/** The encodings the websecure entry point refuses, from docker-compose.yml's Traefik flags. */
function deniedEncodings(): string[] {
  const compose = parseYaml(fs.readFileSync(path.join(bundleDir, "docker-compose.yml"), "utf8")) as { services: { traefik: { command: string[] } } };
  const encodings: Record<string, string[]> = { Slash: ["%2F"], BackSlash: ["%5C"], NullCharacter: ["%00"], Semicolon: ["%3B"], Percent: ["%25"], QuestionMark: ["%3F"], Hash: ["%23"] };
  return compose.services.traefik.command.flatMap((flag) => {
    const m = /^--entryPoints\.websecure\.http\.encodedCharacters\.allowEncoded(\w+)=false$/.exec(flag);
    return m ? encodings[m[1]] : [];
  });
}

/** What becomes of a request for `raw`: the router chosen for the path Traefik sees, then refused (400) or passed on. */
function traefikHandles(host: string, raw: string): { seen: string; router: string; refused: boolean } {
  const seen = sanitizedPath(normalizedPath(raw));
  const [router] = route(host, seen);
  const denied = deniedEncodings();
  const refused = (seen.match(/%[0-9A-F]{2}/g) ?? []).some((enc) => denied.includes(enc));
  return { seen, router, refused };
}

describe("paths as Traefik sees them: encoded characters, dot segments, double slashes, case (issue 30)", () => {
  const netbird = `netbird.${domain}`;
  const auth = `auth.${domain}`;
  it.each([
    // [host, path as sent, path Traefik routes on, router, refused with 400]
    [netbird, "/api%2Fsetup", "/api%2Fsetup", "netbird-api", true],
    [netbird, "/api%2fsetup", "/api%2Fsetup", "netbird-api", true],
    [netbird, "/api%5Csetup", "/api%5Csetup", "netbird-api", true],
    [netbird, "/api/setup%00", "/api/setup%00", "netbird-api", true],
    [netbird, "/api/setup%3B", "/api/setup%3B", "netbird-api", true],
    [netbird, "/api/setup%3F", "/api/setup%3F", "netbird-api", true],
    [netbird, "/api/setup%23", "/api/setup%23", "netbird-api", true],
    [netbird, "/api%252Fsetup", "/api%252Fsetup", "netbird-api", true],
    [netbird, "/api/users/%2e%2e/setup", "/api/setup", "netbird-setup-blocked", false],
    [netbird, "/api/%2E%2E/api/setup", "/api/setup", "netbird-setup-blocked", false],
    [netbird, "//api/setup", "/api/setup", "netbird-setup-blocked", false],
    [netbird, "/api//setup/", "/api/setup/", "netbird-setup-blocked", false],
    [netbird, "/%61pi/setup", "/api/setup", "netbird-setup-blocked", false],
    [netbird, "/API/setup", "/API/setup", "netbird-dashboard", false],
    [auth, "/api/v3/flows/executor/x/..%2F..%2Fpolicies/all/", "/api/v3/flows/executor/x/..%2F..%2Fpolicies/all/", "authentik", true],
    [auth, "/api/v3/flows/executor/x/%2e%2e/%2e%2e/%2e%2e/stages/prompt/prompts/preview/", "/api/v3/stages/prompt/prompts/preview/", "authentik-admin", false],
    [auth, "/api/v3/policies%2Fexpression/", "/api/v3/policies%2Fexpression/", "authentik-admin", true],
    [auth, "/if/flow/default-authentication-flow/", "/if/flow/default-authentication-flow/", "authentik", false],
  ])("%s%s: Traefik routes %s to %s; refused: %s", (host, raw, seen, router, refused) => {
    expect(traefikHandles(host, raw)).toEqual({ seen, router, refused });
  });

  it("whatever a request's path, NetBird's setup handler is reached only through the router that refuses every internet address", () => {
    for (const raw of ["/api/setup", "/api%2Fsetup", "/api/./setup", "/./api/setup", "/api/setup/", "//api//setup", "/%61%70%69/%73etup"]) {
      const handled = traefikHandles(netbird, raw);
      const decoded = decodeURIComponent(handled.seen);
      if (!handled.refused && /^\/api\/setup\/?$/.test(decoded)) expect(handled.router, raw).toBe("netbird-setup-blocked");
    }
  });
});
