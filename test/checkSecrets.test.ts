/** `just secrets-check <stack>` (scripts/check-secrets.ts): the program's first check, alone, printing names only. */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../components/paths";
import { canaryEnv, canaryMarkers, leakedKeys } from "./helpers/canaries";

function check(stack: string, env: Record<string, string>) {
  return spawnSync(join(projectRoot, "node_modules", ".bin", "ts-node"), ["--transpile-only", "scripts/check-secrets.ts", stack], {
    cwd: projectRoot,
    encoding: "utf8",
    env: { PATH: process.env.PATH, ...env },
  });
}

describe("secrets-check", () => {
  it("passes a complete environment and says which optional services are skipped", () => {
    const env = canaryEnv("hetzner", "check");
    delete env.NB_PROXY_TOKEN;
    const run = check("hetzner", env);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain("NB_PROXY_TOKEN: absent, netbird-proxy will be skipped");
    expect(run.stdout).toMatch(/hetzner: \d+ secrets valid, 0 problems/);
    expect(leakedKeys(run.stdout + run.stderr, canaryMarkers("hetzner", "check"))).toEqual([]);
  });

  it("lists every problem by key, never the value, and fails", () => {
    const env = { ...canaryEnv("hetzner", "check"), HCLOUD_TOKEN: "short", AUTHENTIK_TOKEN: "" };
    const run = check("hetzner", env);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("HCLOUD_TOKEN: wrong format");
    expect(run.stderr).toContain("AUTHENTIK_TOKEN: empty");
    expect(run.stderr + run.stdout).not.toContain("short");
  });

  it("refuses an unknown stack", () => {
    expect(check("nope", {}).status).toBe(2);
  });
});
