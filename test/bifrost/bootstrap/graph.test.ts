/**
 * bootstrap.graph is the true dependency graph: every edge says what the step consumes from
 * the one it waits for, bootstrap.sh refuses a table with an edge that does not, and nothing
 * waits for what it does not consume.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bundleDir } from "../../../components/stack/paths";
import { predecessors, readEdges, readGraph } from "../bootstrapGraph";

const shippedGraph = () => fs.readFileSync(path.join(bundleDir, "bootstrap.graph"), "utf8");

let scratch: string | undefined;
afterEach(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
});

/** bootstrap.sh's load_graph on a graph text, from the shipped script sourced (it then only defines its functions). */
function loadGraph(graph: string) {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "core-graph-"));
  fs.writeFileSync(path.join(scratch, "bootstrap.graph"), graph);
  const script = 'source "$1" && load_graph && for s in "${GRAPH_ORDER[@]}"; do printf "%s <- %s\\n" "$s" "${NEEDS[$s]}"; done';
  return spawnSync("bash", ["-c", script, "graph", path.join(bundleDir, "bootstrap.sh")], { cwd: scratch, encoding: "utf8", env: { PATH: process.env.PATH, BIFROST_DIR: scratch, HOME: scratch } });
}

/** Every step that must finish before `step` can start, through any chain. */
function ancestors(step: string): Set<string> {
  const before = predecessors(bundleDir);
  const seen = new Set<string>();
  const walk = (s: string) => {
    for (const p of before.get(s) ?? []) if (!seen.has(p)) walk(seen.add(p) && p);
  };
  walk(step);
  return seen;
}

describe("bootstrap.graph", () => {
  it("gives a reason on every edge", () => {
    const edges = readEdges(bundleDir);
    expect(edges.length).toBeGreaterThan(20);
    for (const e of edges) expect(e.reason.split(" ").length, `${e.step} → ${e.needs}`).toBeGreaterThanOrEqual(2);
  });

  it("is read by bootstrap.sh exactly as the benchmark reads it", () => {
    const r = loadGraph(shippedGraph());
    expect(r.stderr).toBe("");
    const fromScript = r.stdout.trim().split("\n").map((l) => l.split(" <- "));
    expect(fromScript).toEqual(readGraph(bundleDir).map((s) => [s.name, s.needs.join(" ")]));
  });

  it("bootstrap.sh refuses an edge without a reason, and names every problem at once", () => {
    const broken = shippedGraph()
      .replace(/^(need\s+netbird-proxy\s+netbird-tokens)\s+.*$/m, "$1")
      .replace(/^(need\s+traefik\s+pull)\s+.*$/m, "$1")
      .replace(/^need\s+netbird-agent\s+traefik\s+/m, "need   netbird-agnet   traefik   ");
    const r = loadGraph(broken);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("bootstrap.graph is not a valid step graph:");
    expect(r.stderr).toMatch(/need netbird-proxy netbird-tokens gives no reason/);
    expect(r.stderr).toMatch(/need traefik pull gives no reason/);
    expect(r.stderr).toMatch(/need netbird-agnet: netbird-agnet is not a step/);
  });

  it("lets proxy and agent start without waiting for the IdP registration", () => {
    for (const [step, credential] of [["netbird-proxy", "netbird-tokens"], ["netbird-agent", "netbird-groups"]]) {
      const before = ancestors(step);
      expect(before.has(credential), step).toBe(true);
      expect(before.has("netbird-idp"), step).toBe(false);
      expect(before.has("authentik-blueprint"), step).toBe(false);
    }
  });

  it("starts nothing on a volume whose NetBird database another key encrypted: every service start waits for the store-key check", () => {
    for (const step of readGraph(bundleDir).filter((s) => s.starts.length > 0)) expect(ancestors(step.name).has("netbird-store-key"), step.name).toBe(true);
  });
});
