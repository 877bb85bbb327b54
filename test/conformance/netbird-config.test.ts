/**
 * NetBird config conformance: netbird/config.yaml as the real bootstrap.sh renders it, checked
 * key by key against the structs of the pinned NetBird version (combined/cmd/config.go),
 * which read it with a plain yaml.v3 Unmarshal that drops unknown keys without a word.
 * The key tree is a committed fixture derived from that file (see netbirdConfigKeys.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { bifrostSource } from "../docker-double/harness";
import { bifrostPerTest } from "../docker-double/perTest";
import fixtureJson from "./fixtures/netbird-combined-config-keys.json";
import { checkAgainst, keyTree, parseGoStructs, type KeyNode, type KeyTreeFixture } from "./netbirdConfigKeys";

const fixture = fixtureJson as KeyTreeFixture;
const tree = fixture.tree as KeyNode;
const bifrost = bifrostPerTest();
const compose = parseYaml(fs.readFileSync(path.join(bifrostSource, "docker-compose.yml"), "utf8")) as {
  services: Record<string, { image: string; environment?: Record<string, string> }>;
};

/** Runs the real bootstrap.sh (docker double) on `template` and returns the config it rendered. */
async function rendered(template?: (text: string) => string): Promise<string> {
  const b = await bifrost();
  const file = path.join(b.dir, "netbird/config.yaml.tmpl");
  if (template) fs.writeFileSync(file, template(fs.readFileSync(file, "utf8")));
  const r = await b.run();
  expect(r.code, r.stderr).toBe(0);
  return b.readNetbirdConfig();
}

/** yaml.v3 refuses duplicate keys; so does this parse. */
const problems = (text: string) => checkAgainst(tree, parseYaml(text, { uniqueKeys: true }));

describe("NetBird combined-server config against combined/cmd/config.go", () => {
  it("the key tree comes from the NetBird version every NetBird image is pinned to", () => {
    expect(fixture.source).toMatchObject({ repo: "netbirdio/netbird", path: "combined/cmd/config.go", root: "CombinedConfig" });
    expect(fixture.source.commit).toMatch(/^[0-9a-f]{40}$/);
    const versions = ["netbird-server", "netbird-proxy", "netbird-agent"].map((s) => compose.services[s].image.split(":")[1]);
    expect(new Set(versions).size).toBe(1);
    // NetBird tags images with the release version without its v (.goreleaser.yaml "{{ .Version }}").
    expect(fixture.source.tag).toBe(`v${versions[0]}`);
  });

  it("every key of the rendered config.yaml exists in the structs, at every depth", async () => {
    const text = await rendered();
    expect(problems(text)).toEqual([]);
    const config = parseYaml(text);
    // The embedded IdP is the issuer, and it is the dashboard's authority.
    const domain = "bifrost.example.test";
    expect(config.server.auth.issuer).toBe(`https://netbird.${domain}/oauth2`);
    expect(config.server.auth.dashboardRedirectURIs).toEqual([`https://netbird.${domain}/nb-auth`, `https://netbird.${domain}/nb-silent-auth`]);
    expect(config.server.auth.cliRedirectURIs).toEqual(["http://localhost:53000/"]);
    expect(config.server).not.toHaveProperty("idpManager");
  });

  it("the dashboard authenticates against that issuer with the client the server configures", () => {
    const template = parseYaml(fs.readFileSync(path.join(bifrostSource, "netbird/config.yaml.tmpl"), "utf8"));
    const env = compose.services["netbird-dashboard"].environment ?? {};
    expect(env.AUTH_AUTHORITY).toBe(template.server.auth.issuer);
    // combined/cmd/config.go ToManagementConfig: AuthAudience = AuthClientID = "netbird-dashboard".
    expect(env.AUTH_CLIENT_ID).toBe("netbird-dashboard");
    expect(env.AUTH_AUDIENCE).toBe("netbird-dashboard");
  });

  it("a deliberately added idpManager section fails", async () => {
    const text = await rendered((t) => `${t}  idpManager:\n    managerType: authentik\n    extraConfig:\n      apiToken: x\n`);
    expect(parseYaml(text).server.idpManager.managerType).toBe("authentik");
    expect(problems(text)).toEqual([`server.idpManager: unknown key (ServerConfig has no field with yaml name "idpManager")`]);
  });

  it("fails a misspelt nested key, a yaml:\"-\" section and a value yaml.v3 cannot decode", async () => {
    const text = await rendered((t) =>
      t
        .replace("    dashboardRedirectURIs:", "    dashboardRedirectURI:")
        .replace("  stunPorts: [3478]", '  stunPorts: ["3478/udp"]')
        .concat("management:\n  dataDir: /tmp\n"),
    );
    expect(problems(text).sort()).toEqual(
      [
        `server.auth.dashboardRedirectURI: unknown key (AuthConfig has no field with yaml name "dashboardRedirectURI")`,
        "server.stunPorts[0]: expected an integer",
        // CombinedConfig.Management is yaml:"-": filled from server, never read from the file.
        `management: unknown key (CombinedConfig has no field with yaml name "management")`,
      ].sort(),
    );
  });

  it("a duplicate key fails, as yaml.v3 refuses it", () => {
    expect(() => problems("server:\n  logLevel: info\n  logLevel: debug\n")).toThrow(/unique/i);
  });

  it("derives keys as yaml.v3 names them", () => {
    const structs = parseGoStructs(
      [
        "type Root struct {",
        '\tA     string            `yaml:"alpha,omitempty"` // comment',
        "\tBee   *Child",
        '\tSkip  Child             `yaml:"-"`',
        '\tList  []Child           `yaml:"list"`',
        '\tPorts map[string]int    `yaml:"ports"`',
        "}",
        "",
        "type Child struct {",
        '\tOn bool `yaml:"on"`',
        "\tN  uint",
        "}",
      ].join("\n"),
    );
    const child: KeyNode = { kind: "struct", go: "Child", fields: { on: { kind: "bool" }, n: { kind: "uint" } } };
    expect(keyTree(structs, "Root")).toEqual({
      kind: "struct",
      go: "Root",
      fields: { alpha: { kind: "string" }, bee: child, list: { kind: "list", item: child }, ports: { kind: "map", value: { kind: "int" } } },
    });
  });
});
