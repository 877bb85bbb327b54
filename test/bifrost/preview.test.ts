/** A preview (`setMocks(..., preview = true)`) plans everything and writes no file anywhere. */
import fs from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { projectRoot } from "../../components/stack/paths";
import { canaryEnv } from "../helpers/canaries";
import { hetznerConfig, hetznerDataConfig, runProgram } from "../helpers/pulumiMocks";

/** Path → mtime of every file below `dir` (only its direct entries when `deep` is false). */
function snapshot(dir: string, deep: boolean): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name === "node_modules" || e.name === ".git") continue;
      const p = join(d, e.name);
      try {
        out.set(p, fs.statSync(p).mtimeMs);
      } catch {
        continue; // vanished while listing: another process's temp file
      }
      if (deep && e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

const changedBetween = (a: Map<string, number>, b: Map<string, number>) =>
  [...b].filter(([p, m]) => a.get(p) !== m).map(([p]) => p);

const writers = ["writeFileSync", "writeFile", "appendFileSync", "appendFile", "createWriteStream", "mkdirSync", "mkdtempSync", "copyFileSync", "renameSync"] as const;

describe("preview", () => {
  afterEach(() => vi.restoreAllMocks());

  it.each([
    ["hetzner", hetznerConfig],
    ["hetzner-data", hetznerDataConfig],
  ] as const)("of the %s stack plans resources and writes no file", async (stack, config) => {
    const spies = writers.map((w) => vi.spyOn(fs, w));
    const ownTree = (s: Map<string, number>) => new Map([...s].filter(([p]) => !p.startsWith(join(projectRoot, "test"))));
    // The shared temp dir is left out: other test files run beside this one. The fs spies cover it.
    const before = [ownTree(snapshot(projectRoot, true)), snapshot(homedir(), false)];

    const run = await runProgram({ stack, config, env: { ...canaryEnv("hetzner"), SSH_AUTH_SOCK: "/run/agent.sock" }, preview: true });

    expect(run.error).toBeUndefined();
    expect(run.resources.length).toBeGreaterThan(3);
    const after = [ownTree(snapshot(projectRoot, true)), snapshot(homedir(), false)];
    expect(changedBetween(before[0], after[0])).toEqual([]);
    expect(changedBetween(before[1], after[1])).toEqual([]);
    for (const spy of spies) expect(spy, spy.getMockName()).not.toHaveBeenCalled();
  });
});
