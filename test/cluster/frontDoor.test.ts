/**
 * The cluster stack behind the same front door as the hetzner stack: `just core cluster …`
 * (scripts/core.sh) runs Pulumi for it under `sops exec-env`, and `just secrets-check cluster`
 * checks its three secrets. sops and pulumi are doubles, as in test/tooling/frontDoor.test.ts.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../../components/stack/paths";
import { canaryEnv, canaryMarkers, leakedKeys } from "../helpers/canaries";
import { newRecipient, writeSopsFile } from "../helpers/sopsDouble";
import { stackFixtures } from "../helpers/stackFixtures";

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "core-cluster-door-"));
  const project = join(root, "project");
  for (const dir of ["bin", "project/scripts", "project/stacks", "project/secrets"]) mkdirSync(join(root, dir), { recursive: true });
  for (const script of ["core.sh", "lib.sh", "exec-args.sh", "preview-summary.ts", "secrets-file.ts"]) copyFileSync(join(projectRoot, "scripts", script), join(project, "scripts", script));
  symlinkSync(join(projectRoot, "scripts", "lib"), join(project, "scripts", "lib"));
  // The preview summary runs in TypeScript: the project's code and dependencies, read only.
  for (const link of ["node_modules", "components", "tsconfig.json"]) symlinkSync(join(projectRoot, link), join(project, link));
  copyFileSync(join(stackFixtures, "Pulumi.cluster.yaml"), join(project, "stacks", "Pulumi.cluster.yaml"));
  writeFileSync(join(project, "secrets", "bootstrap.sops.yaml"), "sops: {encrypted: true}\n");
  writeFileSync(join(root, "age.key"), "AGE-SECRET-KEY-TEST\n");
  const tool = (name: string, body: string) => {
    writeFileSync(join(root, "bin", name), `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`);
    chmodSync(join(root, "bin", name), 0o755);
  };
  // sops exec-env runs its command with /bin/sh -c (getsops/sops cmd/sops/subcommand/exec/exec_unix.go).
  tool("sops", `echo "sops $1 $2" >> '${join(root, "calls.log")}'\n[[ "$1" == exec-env ]] && SECRET_FROM_SOPS=decrypted /bin/sh -c "$3"`);
  // pulumi preview --json prints a PreviewDigest (pulumi/pulumi pkg/display/json.go); a first preview creates everything.
  tool("pulumi", `echo "pulumi $* secret=\${SECRET_FROM_SOPS:-none}" >> '${join(root, "calls.log")}'\n[[ "$1" != preview ]] || echo '{"steps": [], "changeSummary": {"create": 21}}'`);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("cluster stack front door", () => {
  it("just core cluster preview runs pulumi for the cluster stack under sops exec-env, with a step log", () => {
    const run = spawnSync("bash", [join(root, "project", "scripts", "core.sh"), "cluster", "preview"], {
      encoding: "utf8",
      env: { PATH: `${join(root, "bin")}:${process.env.PATH}`, HOME: root, SOPS_AGE_KEY_FILE: join(root, "age.key"), PULUMI_BACKEND_URL: "s3://homelab-state" },
    });
    expect(run.status, run.stderr).toBe(0);
    expect(readFileSync(join(root, "calls.log"), "utf8").trim().split("\n")).toEqual([
      "pulumi stack select --create cluster secret=none",
      "sops exec-env secrets/bootstrap.sops.yaml",
      "pulumi preview --json --stack cluster secret=decrypted",
    ]);
    expect(run.stderr).toMatch(/\[core\] pulumi preview cluster: ok in \d+s/);
    expect(run.stdout).toBe("Review summary for cluster:\n  Resources: 21 to create\n");
  });

  it("just secrets-check cluster checks exactly the cluster's secrets and names a bad one without its value", () => {
    const file = join(root, "cluster.sops.yaml");
    writeSopsFile(file, Object.fromEntries(Object.keys(canaryEnv("cluster", "door")).map((k) => [k, "x"])), [newRecipient()]);
    const check = (env: Record<string, string>) =>
      spawnSync(join(projectRoot, "node_modules", ".bin", "ts-node"), ["--transpile-only", join(projectRoot, "scripts", "check-secrets.ts"), "cluster", file], {
        encoding: "utf8",
        env: { PATH: process.env.PATH, ...env },
      });
    const good = check(canaryEnv("cluster", "door"));
    expect(good.status, good.stderr).toBe(0);
    expect(good.stdout).toContain("cluster: 5 secrets valid, 0 problems");
    const bad = check({ ...canaryEnv("cluster", "door"), OPENBAO_TOKEN: "root" });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("OPENBAO_TOKEN: wrong format: expected an OpenBao service token");
    expect(leakedKeys(bad.stdout + bad.stderr, canaryMarkers("cluster", "door"))).toEqual([]);
  });
});
