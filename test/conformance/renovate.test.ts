/**
 * renovate.json, the update path for the pinned images and packages, read with Renovate's own
 * files (npm package renovate 44.121.2, fetched by scripts/conformance-tools.sh): its
 * configuration schema, and its docker-compose manager's file patterns. Package rules are
 * matched the way Renovate matches matchPackageNames (lib/util/string-match.ts: a `/…/`
 * pattern is a regular expression, anything else an exact name or a glob; the rules here use
 * no glob characters, which the last test checks).
 */
import Ajv from "ajv";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { renovateFile, repoRoot } from "./tools";

interface Rule {
  matchDatasources?: string[];
  matchPackageNames?: string[];
  matchUpdateTypes?: string[];
  enabled?: boolean;
  groupName?: string;
  automerge?: boolean;
}
const config = JSON.parse(fs.readFileSync(path.join(repoRoot, "renovate.json"), "utf8")) as { extends: string[]; enabledManagers: string[]; packageRules: Rule[] };
const composeFile = "cloud/bifrost/docker-compose.yml";

const matches = (pattern: string, name: string) => {
  const regex = /^\/(.*)\/([a-z]*)$/.exec(pattern);
  return regex ? new RegExp(regex[1], regex[2]).test(name) : pattern === name;
};
const rulesFor = (datasource: string, name: string) =>
  config.packageRules.filter((r) => (r.matchDatasources ?? [datasource]).includes(datasource) && (r.matchPackageNames ?? []).some((p) => matches(p, name)));
/** `name:tag` of every image docker-compose.yml pins, as Renovate's docker-compose manager reads `image:`. */
const images = () =>
  Object.values((YAML.parse(fs.readFileSync(path.join(repoRoot, composeFile), "utf8")) as { services: Record<string, { image?: string }> }).services)
    .map((s) => s.image)
    .filter((i): i is string => i !== undefined)
    .map((i) => ({ name: i.slice(0, i.lastIndexOf(":")), tag: i.slice(i.lastIndexOf(":") + 1) }));

describe("renovate.json", () => {
  it("validates against Renovate's configuration schema, each package rule's options as the options they are", () => {
    const schema = JSON.parse(fs.readFileSync(renovateFile("renovate-schema.json"), "utf8")) as { definitions: { packageRules: { items: { allOf: { properties: Record<string, unknown> }[] } } } };
    const validate = new Ajv({ strict: false, allErrors: true, logger: false }).compile(schema);
    expect(validate(config), JSON.stringify(validate.errors)).toBe(true);
    // The schema types a rule's match* fields and leaves the rest open: any configuration
    // option may follow them (docs configuration-options "packageRules"), so those are checked
    // against the top-level definition of the same option.
    const matchers = new Set(Object.keys(schema.definitions.packageRules.items.allOf[0].properties));
    const options = (rule: Rule) => Object.fromEntries(Object.entries(rule).filter(([k]) => !matchers.has(k)));
    for (const rule of config.packageRules) {
      expect(validate(options(rule)), `${JSON.stringify(rule)}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    expect(validate(options({ automerge: "yes" as unknown as boolean }))).toBe(false);
    expect(validate({ ...config, enabledManagers: "docker-compose" })).toBe(false);
  });

  it("finds the compose file with Renovate's own docker-compose pattern, and pins digests as well as tags", () => {
    const source = fs.readFileSync(renovateFile("dist/modules/manager/docker-compose/index.js"), "utf8");
    const patterns = JSON.parse(/managerFilePatterns:\s*(\[.*\])\s*\};?$/m.exec(source)![1]) as string[];
    expect(patterns).toHaveLength(1);
    expect(patterns.some((p) => matches(p, composeFile))).toBe(true);
    expect(config.enabledManagers).toEqual(expect.arrayContaining(["docker-compose", "npm"]));
    expect(config.extends).toContain("docker:pinDigests");
    // Every image is named with a tag Renovate can compare (no `latest`).
    for (const { name, tag } of images()) expect(tag, name).toMatch(/^v?\d+\.\d+/);
  });

  it("never proposes a PostgreSQL major, groups NetBird's images, and leaves Authentik to a person", () => {
    const postgres = images().find((i) => i.name === "postgres")!;
    expect(rulesFor("docker", postgres.name)).toContainEqual(expect.objectContaining({ matchUpdateTypes: ["major"], enabled: false }));
    const netbird = images().filter((i) => i.name.startsWith("netbirdio/"));
    expect(netbird.length).toBe(4);
    for (const { name } of netbird) expect(rulesFor("docker", name).map((r) => r.groupName), name).toContain("NetBird");
    for (const { name } of images().filter((i) => i.name.includes("goauthentik"))) expect(rulesFor("docker", name).map((r) => r.automerge)).toContain(false);
    // Nothing else is grouped or held back by accident.
    expect(rulesFor("docker", "traefik")).toEqual([]);
  });

  it("uses only exact names and /regular expressions/ in matchPackageNames (what the matcher above models)", () => {
    for (const p of config.packageRules.flatMap((r) => r.matchPackageNames ?? [])) expect(/^\/.*\/[a-z]*$/.test(p) || !/[*?{}[\]!]/.test(p), p).toBe(true);
  });

  it("holds back the npm majors the project cannot take", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    for (const name of ["@pulumi/command", "vitest"]) {
      expect({ ...pkg.dependencies, ...pkg.devDependencies }[name], name).toBeDefined();
      expect(rulesFor("npm", name)).toContainEqual(expect.objectContaining({ matchUpdateTypes: ["major"], enabled: false }));
    }
  });
});
