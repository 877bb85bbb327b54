/** What is derived from the catalog stays derived: README's table and the secrets example. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { catalog } from "../../components/secrets/catalog";
import { catalogTable, secretsExample, tableEnd, tableStart } from "../../scripts/lib/catalogDocs";
import { projectRoot } from "../../components/stack/paths";

const readme = readFileSync(join(projectRoot, "README.md"), "utf8");

describe("docs derived from the catalog", () => {
  it("README's 'what lives where' table matches the catalog (run `npm run docs` after changing it)", () => {
    const section = readme.slice(readme.indexOf(tableStart), readme.indexOf(tableEnd) + tableEnd.length);
    expect(section).toBe(catalogTable());
  });

  it("the table has one row per catalog entry, in catalog order", () => {
    const rows = catalogTable().split("\n").filter((l) => l.startsWith("| `"));
    expect(rows.map((r) => r.match(/^\| `([A-Z_]+)`/)?.[1])).toEqual(catalog.map((e) => e.key));
  });

  it("secrets/bootstrap.sops.yaml.example matches the catalog and holds no value", () => {
    const example = readFileSync(join(projectRoot, "secrets", "bootstrap.sops.yaml.example"), "utf8");
    expect(example).toBe(secretsExample());
    const keys = [...example.matchAll(/^(?:# )?([A-Z][A-Z0-9_]+): (.*)$/gm)];
    expect(keys.map((m) => m[1])).toEqual(catalog.filter((e) => e.source === "sops").map((e) => e.key));
    for (const m of keys) expect(m[2]).toBe('""');
  });

  it("README gives the two commands", () => {
    expect(readme).toContain("| run the main job: create or update the edge | `npm ci && npx just init && npx just core hetzner up` |");
    expect(readme).toContain("| run the tests | `bash scripts/conformance-tools.sh && npm cit` |");
  });

  it("CI runs the README's test command", () => {
    const ci = readFileSync(join(projectRoot, ".ci", "run"), "utf8");
    expect(ci).toMatch(/^\s*bash scripts\/conformance-tools\.sh$/m);
    expect(ci).toMatch(/^\s*npm cit$/m);
  });
});
