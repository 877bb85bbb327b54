/**
 * The state backend of `just core` (scripts/core.sh): the one Pulumi would use when one is
 * configured, else Pulumi's local file backend in .pulumi-state/ with the passphrase from the
 * SOPS file. The sops double is test/sops-double/sops; the pulumi double records, per call,
 * its arguments, the PULUMI_BACKEND_URL it sees (Pulumi's first choice, pulumi/pulumi
 * pkg/workspace/creds.go GetCurrentCloudURLWithSource) and whether PULUMI_CONFIG_PASSPHRASE is
 * set (what its passphrase secrets provider reads, pkg/secrets/passphrase/manager.go) — never
 * the passphrase itself.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { canary } from "../helpers/canaries";
import { ageKeyFile, newRecipient, scratchProject, sopsDoubleDir, writeSopsFile } from "../helpers/sopsDouble";
import { stackFixtures } from "../helpers/stackFixtures";

const passphrase = canary("PULUMI_CONFIG_PASSPHRASE", "backend");
let root: string;
let project: string;
let me: string;
const pulumiCalls = () => (existsSync(join(root, "pulumi.log")) ? readFileSync(join(root, "pulumi.log"), "utf8").trim().split("\n") : []);

function core(env: Record<string, string> = {}) {
  const run = spawnSync("bash", [join(project, "scripts", "core.sh"), "hetzner", "up"], {
    encoding: "utf8",
    env: { PATH: `${join(root, "bin")}:${sopsDoubleDir}:${process.env.PATH}`, HOME: root, SOPS_AGE_KEY_FILE: join(root, "age.key"), ...env },
  });
  return { ...run, output: run.stdout + run.stderr };
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "core-backend-"));
  project = scratchProject(root);
  copyFileSync(join(stackFixtures, "Pulumi.hetzner.yaml"), join(project, "stacks", "Pulumi.hetzner.yaml"));
  me = newRecipient();
  ageKeyFile(join(root, "age.key"), me);
  writeSopsFile(join(project, "secrets", "bootstrap.sops.yaml"), { PULUMI_CONFIG_PASSPHRASE: passphrase.value }, [me]);
  mkdirSync(join(root, "bin"));
  writeFileSync(
    join(root, "bin", "pulumi"),
    `#!/usr/bin/env bash\nset -euo pipefail\nprintf '%s backend=%s passphrase=%s\\n' "$*" "\${PULUMI_BACKEND_URL:-}" "\${PULUMI_CONFIG_PASSPHRASE:+set}" >> '${join(root, "pulumi.log")}'\n`,
  );
  chmodSync(join(root, "bin", "pulumi"), 0o755);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("state backend", () => {
  it("with none configured, uses the local file backend in .pulumi-state/, the passphrase coming from SOPS", () => {
    const run = core();
    expect(run.status, run.output).toBe(0);
    const local = `file://${project}/.pulumi-state`;
    expect(pulumiCalls()).toEqual([`stack select --create hetzner backend=${local} passphrase=set`, `up --stack hetzner backend=${local} passphrase=set`]);
    expect(statSync(join(project, ".pulumi-state")).isDirectory()).toBe(true);
    expect(run.stderr).toContain(`[core] state backend: ${local} (local files: no PULUMI_BACKEND_URL, no pulumi login)`);
    expect(run.output).not.toContain(passphrase.marker);
    expect(readFileSync(join(root, "pulumi.log"), "utf8")).not.toContain(passphrase.marker);
  });

  it("refuses the local backend without a passphrase in SOPS, saying how to make one, before Pulumi runs", () => {
    writeSopsFile(join(project, "secrets", "bootstrap.sops.yaml"), { PULUMI_CONFIG_PASSPHRASE: "" }, [me]);
    const run = core();
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(
      "no Pulumi backend configured, so the local one in .pulumi-state/ is used, and it needs PULUMI_CONFIG_PASSPHRASE in secrets/bootstrap.sops.yaml: just secrets new PULUMI_CONFIG_PASSPHRASE",
    );
    expect(pulumiCalls()).toEqual([]);
  });

  it("leaves a passphrase already in the environment to Pulumi", () => {
    writeSopsFile(join(project, "secrets", "bootstrap.sops.yaml"), {}, [me]);
    writeFileSync(join(root, "passphrase"), "from-a-file-the-operator-keeps\n");
    const run = core({ PULUMI_CONFIG_PASSPHRASE_FILE: join(root, "passphrase") });
    expect(run.status, run.output).toBe(0);
    expect(pulumiCalls()[1]).toBe(`up --stack hetzner backend=file://${project}/.pulumi-state passphrase=`);
  });

  it("uses the backend `pulumi login` stored, selecting the stack outside sops", () => {
    mkdirSync(join(root, ".pulumi"));
    // credentials.json as `pulumi login` writes it (sdk/go/common/workspace/creds.go, Credentials).
    writeFileSync(join(root, ".pulumi", "credentials.json"), JSON.stringify({ current: "https://api.pulumi.com", accessTokens: { "https://api.pulumi.com": "pul-not-a-real-token" } }));
    const run = core();
    expect(run.status, run.output).toBe(0);
    expect(pulumiCalls()).toEqual(["stack select --create hetzner backend= passphrase=", "up --stack hetzner backend= passphrase=set"]);
    expect(run.stderr).toContain("[core] state backend: https://api.pulumi.com");
    expect(run.output).not.toContain("pul-not-a-real-token");
    expect(existsSync(join(project, ".pulumi-state"))).toBe(false);
  });

  it("uses PULUMI_BACKEND_URL when set, showing it without its query", () => {
    const run = core({ PULUMI_BACKEND_URL: "s3://homelab-state?endpoint=fsn1.your-objectstorage.com&region=fsn1" });
    expect(run.status, run.output).toBe(0);
    expect(run.stderr).toContain("[core] state backend: s3://homelab-state\n");
    expect(pulumiCalls()[1]).toBe("up --stack hetzner backend=s3://homelab-state?endpoint=fsn1.your-objectstorage.com&region=fsn1 passphrase=set");
  });
});
