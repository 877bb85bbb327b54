/**
 * The layout's rules (README "Layout", components/README.md), checked on the import graph of
 * every TypeScript file the programs and the tooling run, and on the bootstrap's files.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../../components/stack/paths";

const sourceRoots = ["index.ts", "stacks", "components", "scripts"];

function tsFiles(rel: string): string[] {
  const full = path.join(projectRoot, rel);
  if (fs.statSync(full).isFile()) return rel.endsWith(".ts") ? [rel] : [];
  return fs.readdirSync(full).flatMap((name) => tsFiles(path.posix.join(rel, name)));
}

/** Relative imports of a file, resolved to project-relative paths (side-effect, type and dynamic imports included). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(projectRoot, file), "utf8");
  const specs = [...text.matchAll(/(?:from\s+|import\(\s*|require\(\s*|^import\s+)["'](\.{1,2}\/[^"']+)["']/gm)].map((m) => m[1]);
  return specs.map((spec) => {
    const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
    const found = [`${base}.ts`, base, `${base}/index.ts`].find((c) => fs.existsSync(path.join(projectRoot, c)) && fs.statSync(path.join(projectRoot, c)).isFile());
    if (!found) throw new Error(`${file}: import ${spec} does not resolve`);
    return found;
  });
}

const graph = new Map(sourceRoots.flatMap(tsFiles).map((f) => [f, importsOf(f)] as const));
const folderOf = (file: string) => file.split("/").slice(0, file.startsWith("components/") ? 2 : 1).join("/");

/** Which folders each folder may import from, besides itself. */
const allowed: Record<string, string[]> = {
  "index.ts": ["stacks"],
  stacks: ["components/secrets", "components/stack", "components/bifrost", "components/cluster"],
  "components/secrets": [],
  "components/stack": ["components/secrets", "components/cluster"],
  "components/bifrost": ["components/secrets", "components/stack"],
  "components/cluster": [],
  scripts: ["components/secrets", "components/stack"],
};

describe("layout", () => {
  it("knows every folder it checks", () => {
    const folders = new Set([...graph.keys()].map(folderOf));
    expect([...folders].sort()).toEqual(Object.keys(allowed).sort());
  });

  it.each(Object.keys(allowed))("%s imports only what it may", (folder) => {
    const offending = [...graph]
      .filter(([file]) => folderOf(file) === folder)
      .flatMap(([file, imports]) => imports.filter((i) => folderOf(i) !== folder && !allowed[folder].includes(folderOf(i))).map((i) => `${file} → ${i}`));
    expect(offending).toEqual([]);
  });

  it("components/stack reaches into cluster/ only for the app table", () => {
    const reached = [...graph].filter(([file]) => folderOf(file) === "components/stack").flatMap(([, imports]) => imports.filter((i) => folderOf(i) === "components/cluster"));
    expect([...new Set(reached)]).toEqual(["components/cluster/appTable.ts"]);
  });

  it("has no import cycle", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "open") {
        cycles.push([...trail.slice(trail.indexOf(file)), file].join(" → "));
        return;
      }
      state.set(file, "open");
      for (const next of graph.get(file) ?? []) visit(next, [...trail, file]);
      state.set(file, "done");
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });
});

describe("the bootstrap's files", () => {
  const bundle = path.join(projectRoot, "cloud", "bifrost");
  const shellFiles = ["bootstrap.sh", ...["lib", "steps"].flatMap((d) => fs.readdirSync(path.join(bundle, d)).map((f) => `${d}/${f}`))];

  it.each(shellFiles)("%s stays under 400 lines", (file) => {
    expect(fs.readFileSync(path.join(bundle, file), "utf8").split("\n").length).toBeLessThanOrEqual(400);
  });

  it("each step of bootstrap.graph is defined once, in the steps/ file its name leads to", () => {
    const steps = fs
      .readFileSync(path.join(bundle, "bootstrap.graph"), "utf8")
      .split("\n")
      .filter((l) => l.startsWith("step "))
      .map((l) => l.split(/\s+/)[1]);
    const fileFor = (step: string) => (step.startsWith("netbird-") ? "netbird" : step.startsWith("authentik") || step === "postgres-password" ? "authentik" : "host");
    const definitions = (fn: string) => shellFiles.filter((f) => new RegExp(`^${fn}\\(\\) \\{`, "m").test(fs.readFileSync(path.join(bundle, f), "utf8")));
    for (const step of steps) expect(definitions(`step_${step.replace(/-/g, "_")}`), step).toEqual([`steps/${fileFor(step)}.sh`]);
  });
});
