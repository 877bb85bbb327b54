/**
 * `just core <stack> <action>` (scripts/core.sh): Pulumi runs under `sops exec-env`, the
 * secrets exist only in that process's environment, every step logs its duration, and bad
 * calls fail clearly. sops and pulumi are test doubles that record how they were called.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { projectRoot } from "../../components/stack/paths";
import { stackFixtures } from "../helpers/stackFixtures";

let root: string;
const calls = () => readFileSync(join(root, "calls.log"), "utf8").trim().split("\n");

function fakeTool(name: string, body: string) {
  const path = join(root, "bin", name);
  writeFileSync(path, `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`);
  chmodSync(path, 0o755);
}

function core(...args: string[]) {
  return spawnSync("bash", [join(root, "project", "scripts", "core.sh"), ...args], {
    encoding: "utf8",
    // A backend is configured: the local fallback is test/tooling/stateBackend.test.ts's subject.
    env: { PATH: `${join(root, "bin")}:${process.env.PATH}`, HOME: root, SOPS_AGE_KEY_FILE: join(root, "age.key"), PULUMI_BACKEND_URL: "s3://homelab-state" },
  });
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "core-front-door-"));
  const project = join(root, "project");
  for (const dir of ["bin", "project/scripts", "project/stacks", "project/secrets"]) mkdirSync(join(root, dir), { recursive: true });
  for (const script of ["core.sh", "lib.sh", "exec-args.sh", "secrets-file.ts"]) copyFileSync(join(projectRoot, "scripts", script), join(project, "scripts", script));
  symlinkSync(join(projectRoot, "scripts", "lib"), join(project, "scripts", "lib"));
  // The stack → secrets file mapping runs in TypeScript: the project's code and dependencies, read only.
  for (const link of ["node_modules", "components", "tsconfig.json"]) symlinkSync(join(projectRoot, link), join(project, link));
  copyFileSync(join(stackFixtures, "Pulumi.hetzner.yaml"), join(project, "stacks", "Pulumi.hetzner.yaml"));
  writeFileSync(join(project, "secrets", "bootstrap.sops.yaml"), "sops: {encrypted: true}\n");
  writeFileSync(join(root, "age.key"), "AGE-SECRET-KEY-TEST\n");
  const log = join(root, "calls.log");
  // sops exec-env: runs its command string with /bin/sh -c, the decrypted values added to the
  // inherited environment (getsops/sops cmd/sops/subcommand/exec/exec.go ExecWithEnv, exec_unix.go BuildCommand).
  fakeTool("sops", `echo "sops $1 $2 key=$SOPS_AGE_KEY_FILE" >> '${log}'\n[[ "$1" == exec-env ]] && SECRET_FROM_SOPS=decrypted /bin/sh -c "$3"`);
  fakeTool("pulumi", `echo "pulumi $* secret=\${SECRET_FROM_SOPS:-none}" >> '${log}'\nprintf '%s\\0' "$@" > '${join(root, "pulumi-argv")}'`);
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("just core front door", () => {
  // preview also pipes Pulumi's JSON into the review summary: test/tooling/previewSummary.test.ts.
  it.each(["up", "destroy", "refresh"])("%s runs pulumi for the stack under sops exec-env", (action) => {
    const run = core("hetzner", action, "--diff");
    expect(run.status, run.stderr).toBe(0);
    expect(calls()).toEqual([
      "pulumi stack select --create hetzner secret=none",
      `sops exec-env secrets/bootstrap.sops.yaml key=${join(root, "age.key")}`,
      `pulumi ${action} --stack hetzner --diff secret=decrypted`,
    ]);
    expect(run.stderr).toMatch(new RegExp(`\\[core\\] pulumi ${action} hetzner: ok in \\d+s`));
  });

  it("preview --diff shows Pulumi's own display instead of the summary", () => {
    const run = core("hetzner", "preview", "--diff");
    expect(run.status, run.stderr).toBe(0);
    expect(calls().at(-1)).toBe("pulumi preview --stack hetzner --diff secret=decrypted");
    expect(calls().some((c) => c.includes("--json"))).toBe(false);
  });

  it("passes every argument byte for byte, newlines and shell syntax included, through sops's /bin/sh", () => {
    const message = "line one\nline 'two' with \"quotes\", $HOME, `id` and \\ backslash";
    const run = core("hetzner", "up", "--message", message, "--yes");
    expect(run.status, run.stderr).toBe(0);
    const argv = readFileSync(join(root, "pulumi-argv"), "utf8").split("\0").slice(0, -1);
    expect(argv).toEqual(["up", "--stack", "hetzner", "--message", message, "--yes"]);
  });

  it("refuses an unknown action and an unknown stack, naming the known stacks", () => {
    expect(core("hetzner", "apply").stderr).toMatch(/usage: just core <stack> <up\|preview\|destroy\|refresh>.*stacks: hetzner/);
    const unknown = core("staging", "up");
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toContain("no stack config stacks/Pulumi.staging.yaml; stacks: hetzner");
  });

  it("stops before decrypting when the age key is missing", () => {
    rmSync(join(root, "age.key"));
    const run = core("hetzner", "preview");
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("age key not readable at SOPS_AGE_KEY_FILE=");
    expect(() => calls()).toThrow();
  });

  it("reports a failing pulumi run with its exit code", () => {
    fakeTool("pulumi", `[[ "$1" == stack ]] || exit 3`);
    const run = core("hetzner", "up");
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/pulumi up hetzner: failed \(exit 3\) in \d+s/);
  });
});
