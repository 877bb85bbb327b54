import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../docker-double/harness";

function shellFiles(): string[] {
  const tracked = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: repoRoot, encoding: "utf8" })
    .split("\0")
    .filter((f) => f && !f.startsWith("node_modules/") && fs.existsSync(path.join(repoRoot, f)));
  return tracked.filter((f) => {
    if (f.endsWith(".sh") || f.endsWith(".bash")) return true;
    const head = fs.readFileSync(path.join(repoRoot, f)).subarray(0, 64).toString("utf8");
    return /^#!.*\b(bash|sh)\b/.test(head);
  });
}

describe("shellcheck", () => {
  it("passes on every shell file of the repo", () => {
    const version = spawnSync("shellcheck", ["--version"], { encoding: "utf8" });
    if (version.error || version.status !== 0)
      throw new Error("shellcheck is not installed: install it (apt-get install shellcheck); CI installs it before the tests");
    const files = shellFiles();
    expect(files).toContain("cloud/bifrost/bootstrap.sh");
    expect(files).toContain("test/docker-double/shim/docker");
    const r = spawnSync("shellcheck", ["--external-sources", ...files], { cwd: repoRoot, encoding: "utf8" });
    expect(r.stdout + r.stderr, `shellcheck findings in ${files.join(", ")}`).toBe("");
    expect(r.status).toBe(0);
  });
});
