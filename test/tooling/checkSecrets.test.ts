/**
 * `just secrets-check <stack>` (scripts/check-secrets.ts): the program's first check, alone,
 * printing names only; and the SOPS file's keys against the catalog. Run directly, and end to
 * end through scripts/core.sh under the sops double (test/sops-double/sops).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../../components/stack/paths";
import { canaryEnv, canaryMarkers, leakedKeys } from "../helpers/canaries";
import { ageKeyFile, newRecipient, scratchProject, sopsDoubleDir, writeSopsFile } from "../helpers/sopsDouble";
import { stackFixtures } from "../helpers/stackFixtures";

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "core-secrets-check-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A SOPS file holding exactly these keys (values do not matter to the key check). */
function fileWith(name: string, keys: readonly string[]): string {
  const path = join(root, `${name}.sops.yaml`);
  writeSopsFile(path, Object.fromEntries(keys.map((k) => [k, "x"])), [newRecipient()]);
  return path;
}

function check(stack: string, env: Record<string, string>, file = fileWith(stack, Object.keys(env))) {
  return spawnSync(join(projectRoot, "node_modules", ".bin", "ts-node"), ["--transpile-only", "scripts/check-secrets.ts", stack, file], {
    cwd: projectRoot,
    encoding: "utf8",
    env: { PATH: process.env.PATH, ...env },
  });
}

describe("secrets-check", () => {
  it("passes a complete environment and says what happens without each absent optional secret", () => {
    const env = canaryEnv("hetzner", "check");
    delete env.NB_PROXY_TOKEN;
    const run = check("hetzner", env);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain("NB_PROXY_TOKEN: absent: the bootstrap mints a proxy token through NetBird's API");
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

  it("reports a SOPS key the catalog does not know, with the key it most likely meant", () => {
    const env = canaryEnv("hetzner", "check");
    const run = check("hetzner", env, fileWith("typo", [...Object.keys(env), "NB_RELAY_SECRTE", "SOMETHING_ELSE"]));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("NB_RELAY_SECRTE: not in the secret catalog (components/secrets/catalog.ts); did you mean NB_RELAY_SECRET?");
    expect(run.stderr).toMatch(/SOMETHING_ELSE: not in the secret catalog \(components\/secrets\/catalog\.ts\)$/m);
    expect(run.stdout).toMatch(/hetzner: \d+ secrets valid, 2 problems/);
  });

  it("knows PROXMOX_PASSWORD as used elsewhere: named, never checked, not a problem", () => {
    const env = canaryEnv("hetzner", "check");
    const run = check("hetzner", { ...env, PROXMOX_PASSWORD: "CANARYproxmoxvalue" }, fileWith("proxmox", [...Object.keys(env), "PROXMOX_PASSWORD"]));
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain("PROXMOX_PASSWORD: used elsewhere, not checked here");
    expect(run.stdout + run.stderr).not.toContain("CANARYproxmoxvalue");
  });

  it("refuses an unknown stack, a missing file argument and a file that is not encrypted", () => {
    expect(check("nope", {}).status).toBe(2);
    const noFile = spawnSync(join(projectRoot, "node_modules", ".bin", "ts-node"), ["--transpile-only", "scripts/check-secrets.ts", "hetzner"], { cwd: projectRoot, encoding: "utf8" });
    expect(noFile.status).toBe(2);
    const env = canaryEnv("hetzner", "check");
    const run = check("hetzner", env, join(projectRoot, "secrets", "bootstrap.sops.yaml.example"));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("cannot list its keys: it is not encrypted by sops (no sops metadata)");
  });
});

describe("just secrets-check end to end (core.sh under the sops double)", () => {
  it("decrypts through sops exec-env, checks the values and the file's keys, and shows no value", () => {
    const project = scratchProject(join(root, "e2e"));
    const me = newRecipient();
    ageKeyFile(join(root, "age.key"), me);
    const env = canaryEnv("hetzner", "e2e");
    writeSopsFile(join(project, "secrets", "bootstrap.sops.yaml"), { ...env, PROXMOX_PASSWORD: "CANARYproxmoxe2e", HCLOUD_TOKN: "CANARYtypoe2e" }, [me]);
    spawnSync("cp", [join(stackFixtures, "Pulumi.hetzner.yaml"), join(project, "stacks")]);
    const run = spawnSync("bash", [join(project, "scripts", "core.sh"), "hetzner", "check-secrets"], {
      encoding: "utf8",
      env: { PATH: `${sopsDoubleDir}:${process.env.PATH}`, HOME: root, SOPS_AGE_KEY_FILE: join(root, "age.key") },
    });
    const output = run.stdout + run.stderr;
    expect(run.status, output).toBe(1);
    expect(run.stderr).toContain("HCLOUD_TOKN: not in the secret catalog (components/secrets/catalog.ts); did you mean HCLOUD_TOKEN?");
    expect(run.stdout).toContain("PROXMOX_PASSWORD: used elsewhere, not checked here");
    expect(run.stdout).toMatch(/hetzner: \d+ secrets valid, 1 problems/);
    expect(run.stderr).toMatch(/\[core\] check secrets for hetzner: failed \(exit 1\) in \d+s/);
    expect(leakedKeys(output, { ...canaryMarkers("hetzner", "e2e"), PROXMOX_PASSWORD: "CANARYproxmoxe2e", HCLOUD_TOKN: "CANARYtypoe2e" })).toEqual([]);
  });
});

describe("secrets-check requires the local backend's passphrase exactly when `up` would (issue 18, item 2)", () => {
  const run = (withPassphrase: boolean, extraEnv: Record<string, string>) => {
    const dir = mkdtempSync(join(root, "passphrase-"));
    const project = scratchProject(dir);
    const me = newRecipient();
    ageKeyFile(join(dir, "age.key"), me);
    const env = canaryEnv("hetzner", "pass");
    if (!withPassphrase) delete env.PULUMI_CONFIG_PASSPHRASE;
    writeSopsFile(join(project, "secrets", "bootstrap.sops.yaml"), env, [me]);
    spawnSync("cp", [join(stackFixtures, "Pulumi.hetzner.yaml"), join(project, "stacks")]);
    return spawnSync("bash", [join(project, "scripts", "core.sh"), "hetzner", "check-secrets"], {
      encoding: "utf8",
      env: { PATH: `${sopsDoubleDir}:${process.env.PATH}`, HOME: dir, SOPS_AGE_KEY_FILE: join(dir, "age.key"), ...extraEnv },
    });
  };

  it("no backend configured and no passphrase in the environment: missing from SOPS is a problem that says what to run", () => {
    const r = run(false, {});
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("PULUMI_CONFIG_PASSPHRASE: required: no Pulumi backend is configured, so `up` uses the local one in .pulumi-state/ and reads it from this file; run `just secrets new PULUMI_CONFIG_PASSPHRASE`");
  });

  it("in SOPS, it passes", () => {
    const r = run(true, {});
    expect(r.status, r.stderr).toBe(0);
  });

  it("another backend configured, or the passphrase already in the environment: not needed, as for `up`", () => {
    expect(run(false, { PULUMI_BACKEND_URL: "s3://state-bucket" }).status).toBe(0);
    expect(run(false, { PULUMI_CONFIG_PASSPHRASE_FILE: "/dev/null" }).status).toBe(0);
  });
});

describe("error paths a newcomer hits (issue 18, item 4)", () => {
  const core = (stackText: string, action = "check-secrets") => {
    const dir = mkdtempSync(join(root, "errors-"));
    const project = scratchProject(dir);
    const me = newRecipient();
    ageKeyFile(join(dir, "age.key"), me);
    writeSopsFile(join(project, "secrets", "bootstrap.sops.yaml"), canaryEnv("hetzner", "errors"), [me]);
    writeFileSync(join(project, "stacks", "Pulumi.hetzner.yaml"), stackText);
    return spawnSync("bash", [join(project, "scripts", "core.sh"), "hetzner", action], {
      encoding: "utf8",
      env: { PATH: `${sopsDoubleDir}:${process.env.PATH}`, HOME: dir, SOPS_AGE_KEY_FILE: join(dir, "age.key"), PULUMI_BACKEND_URL: "s3://state" },
    });
  };

  it("a YAML syntax error in the stack file: one line naming the file and where, nothing else", () => {
    const r = core("config:\n  core:kind: hetzner\n  core:domain: [unclosed\n  core:name: bifrost\n");
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^\[core\] error: stacks\/Pulumi\.hetzner\.yaml: not valid YAML at line \d+, column \d+ \([A-Z_]+\)$/)]);
  });

  it("an unknown core:kind: secrets-check says so as bundle-render does, naming the stack file", () => {
    const r = core("config:\n  core:kind: hetzner-edge\n");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("core:kind: stacks/Pulumi.hetzner.yaml is a hetzner-edge stack; secrets are checked for hetzner, hetzner-data, cluster stacks");
    expect(r.stderr).not.toContain("usage:");
  });
});
