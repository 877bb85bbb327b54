/**
 * NetBird's login through Authentik on a fresh install (issue 35): the provider the blueprint
 * makes must allow the grant NetBird's embedded Dex uses, or every login is sent back with
 * invalid_request. The double's provider starts with no grants and its authorize view refuses
 * a grant not listed, as upstream's (test/docker-double/authentik.ts cites the files).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { canarySecrets, type Bifrost } from "../../docker-double/harness";
import { bifrostPerTest } from "../../docker-double/perTest";

const bifrost = bifrostPerTest();
const domain = "bifrost.example.test";

/** The authorization request Dex's oidc connector sends for NetBird (response_type=code, PKCE S256; netbirdio/netbird v0.77.1 idp/dex/connector.go). */
async function netbirdAuthorize(b: Bifrost): Promise<{ status: number; location: string }> {
  const query = new URLSearchParams({
    client_id: "netbird",
    redirect_uri: `https://netbird.${domain}/oauth2/callback`,
    response_type: "code",
    scope: "openid profile email",
    state: "dex-state-1",
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    code_challenge_method: "S256",
  });
  const res = await fetch(`http://127.0.0.1:${b.double.authentik.api.port}/application/o/authorize/?${query}`, { redirect: "manual" });
  return { status: res.status, location: res.headers.get("location") ?? "" };
}

describe("NetBird's login through Authentik", () => {
  it("on a fresh install, NetBird's authorization request reaches Authentik's login, not an OAuth error", async () => {
    const b = await bifrost({ secrets: canarySecrets() });
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    const answer = await netbirdAuthorize(b);
    expect(answer.status).toBe(302);
    expect(answer.location).not.toContain("error=");
    expect(answer.location).toMatch(/^\/if\/flow\/default-authentication-flow\/\?next=%2Fapplication%2Fo%2Fauthorize%2F/);
    expect(b.double.authentik.providers.get("netbird")?.grant_types).toEqual(["authorization_code"]);
  });

  it("a provider without the grant sends the browser back with invalid_request, and the bootstrap names the grants", async () => {
    const b = await bifrost({ secrets: canarySecrets() });
    const blueprint = path.join(b.dir, "authentik/blueprints/netbird.yaml");
    fs.writeFileSync(blueprint, fs.readFileSync(blueprint, "utf8").replace(/^ {6}grant_types: .*\n/m, ""));
    const r = await b.run({ env: { BIFROST_WAIT_TIMEOUT: "2" } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("Authentik's NetBird provider allows the grants [] instead of exactly authorization_code");
    const answer = await netbirdAuthorize(b);
    expect(answer.status).toBe(302);
    expect(answer.location).toBe(`https://netbird.${domain}/oauth2/callback?error=invalid_request&error_description=The+request+is+otherwise+malformed&state=dex-state-1`);
  });

  it("an older edge's provider, given every grant by the 2026.5 migration, is narrowed to the one NetBird uses", async () => {
    const b = await bifrost({ secrets: canarySecrets() });
    expect((await b.run()).code).toBe(0);
    // migrations/0032_oauth2provider_grant_types.py back-fills all seven.
    const all = ["authorization_code", "hybrid", "implicit", "client_credentials", "password", "urn:ietf:params:oauth:grant-type:device_code", "refresh_token"];
    b.double.authentik.seedGrantTypes("netbird", all);
    const r = await b.run();
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.authentik.providers.get("netbird")?.grant_types).toEqual(["authorization_code"]);
  });
});
