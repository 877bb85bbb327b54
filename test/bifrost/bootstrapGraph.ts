/**
 * bootstrap.graph, the bootstrap's step table, read the way bootstrap.sh reads it (load_graph:
 * blank lines and `#` comments skipped; `step NAME STARTS` declares a step and the Compose
 * services it starts, a comma list or `-`; `need STEP OTHER REASON…` an edge with its reason),
 * plus the Compose `depends_on` edges of the services the steps start.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";

export interface GraphEdge {
  readonly step: string;
  readonly needs: string;
  readonly reason: string;
}

export interface GraphStep {
  readonly name: string;
  readonly needs: readonly string[];
  readonly starts: readonly string[];
}

const list = (field: string | undefined) => (!field || field === "-" ? [] : field.split(","));

function graphLines(bundleDir: string): string[][] {
  return fs
    .readFileSync(path.join(bundleDir, "bootstrap.graph"), "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => line.trim().split(/\s+/));
}

export function readEdges(bundleDir: string): GraphEdge[] {
  return graphLines(bundleDir)
    .filter(([kind]) => kind === "need")
    .map(([, step, needs, ...reason]) => ({ step, needs, reason: reason.join(" ") }));
}

export function readGraph(bundleDir: string): GraphStep[] {
  const edges = readEdges(bundleDir);
  return graphLines(bundleDir)
    .filter(([kind]) => kind === "step")
    .map(([, name, starts]) => ({ name, needs: edges.filter((e) => e.step === name).map((e) => e.needs), starts: list(starts) }));
}

/**
 * Every step's predecessors: its own `needs`, and the steps that start a service one of its
 * services `depends_on` (Compose waits for those before it starts the service).
 */
export function predecessors(bundleDir: string): Map<string, string[]> {
  const steps = readGraph(bundleDir);
  const compose = parseYaml(fs.readFileSync(path.join(bundleDir, "docker-compose.yml"), "utf8")) as {
    services: Record<string, { depends_on?: Record<string, unknown> | string[] }>;
  };
  const starter = new Map(steps.flatMap((s) => s.starts.map((service) => [service, s.name] as const)));
  return new Map(
    steps.map((s) => {
      const composeNeeds = s.starts.flatMap((service) => {
        const dependsOn = compose.services[service]?.depends_on ?? [];
        return (Array.isArray(dependsOn) ? dependsOn : Object.keys(dependsOn)).map((d) => starter.get(d)).filter((d): d is string => !!d && d !== s.name);
      });
      return [s.name, [...new Set([...s.needs, ...composeNeeds])]];
    }),
  );
}

/**
 * The longest chain of step costs through the graph: a step costs its slowest service's health
 * delay, plus its own work where it has a stated cost (an exec or API wait, `stepCostsMs`).
 */
export function criticalPathMs(
  bundleDir: string,
  delaysMs: Readonly<Record<string, number>>,
  stepCostsMs: Readonly<Record<string, number>> = {},
): { ms: number; path: string[] } {
  const steps = readGraph(bundleDir);
  const before = predecessors(bundleDir);
  const cost = (s: GraphStep) => Math.max(0, ...s.starts.map((service) => delaysMs[service] ?? 0)) + (stepCostsMs[s.name] ?? 0);
  const memo = new Map<string, { ms: number; path: string[] }>();
  const finish = (name: string, seen: string[] = []): { ms: number; path: string[] } => {
    if (seen.includes(name)) throw new Error(`bootstrap.graph: cycle through ${[...seen, name].join(" → ")}`);
    const known = memo.get(name);
    if (known) return known;
    const step = steps.find((s) => s.name === name);
    if (!step) throw new Error(`bootstrap.graph: unknown step ${name}`);
    const longest = (before.get(name) ?? []).map((p) => finish(p, [...seen, name])).reduce((a, b) => (b.ms > a.ms ? b : a), { ms: 0, path: [] as string[] });
    const result = { ms: longest.ms + cost(step), path: [...longest.path, name] };
    memo.set(name, result);
    return result;
  };
  return steps.map((s) => finish(s.name)).reduce((a, b) => (b.ms > a.ms ? b : a));
}
