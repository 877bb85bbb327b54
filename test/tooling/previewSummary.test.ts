/**
 * `just core <stack> preview` ends with a summary for review, read from `pulumi preview --json`.
 * The documents in test/fixtures/preview/ are shaped like the real CLI's: a PreviewDigest
 * (pulumi/pulumi pkg/display/json.go) as ShowPreviewDigest prints it (pkg/backend/display/
 * json.go: json.MarshalIndent with four spaces; states are apitype.ResourceV3 with secrets as
 * "[secret]" and values unknown until apply as computedValuePlaceholder, pkg/resource/stack/
 * deployment.go; ops from pkg/resource/deploy/step.go; a replacement appears as
 * create-replacement, replace and delete-replaced steps, in delete-first order for a
 * deleteBeforeReplace resource such as the server). Triggers follow components/bifrost/bootstrap.ts,
 * and pulumi-command replaces a Command whose triggers change.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../../components/stack/paths";
import { canaryEnv, canaryMarkers, leakedKeys } from "../helpers/canaries";
import { ageKeyFile, newRecipient, scratchProject, sopsDoubleDir, writeSopsFile } from "../helpers/sopsDouble";
import { stackFixtures } from "../helpers/stackFixtures";

const fixture = (name: string) => join(projectRoot, "test", "fixtures", "preview", `${name}.json`);

describe("just core <stack> preview end to end (sops and pulumi doubles)", () => {
  let root: string;
  let project: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "core-preview-"));
    project = scratchProject(root);
    copyFileSync(join(stackFixtures, "Pulumi.hetzner.yaml"), join(project, "stacks", "Pulumi.hetzner.yaml"));
    const me = newRecipient();
    ageKeyFile(join(root, "age.key"), me);
    writeSopsFile(join(project, "secrets", "bootstrap.sops.yaml"), canaryEnv("hetzner", "preview"), [me]);
    mkdirSync(join(root, "bin"));
    // pulumi preview --json prints one PreviewDigest document on stdout and exits non-zero when
    // the preview failed (pkg/backend/display/json.go ShowPreviewDigest); the double prints a
    // recorded one and records its argv and whether the SOPS environment reached it.
    writeFileSync(
      join(root, "bin", "pulumi"),
      `#!/usr/bin/env bash\nset -euo pipefail\nprintf '%s secrets=%s\\n' "$*" "\${HCLOUD_TOKEN:+present}" >> "$PULUMI_DOUBLE_LOG"\n[[ "$1" == preview ]] || exit 0\ncat "$PULUMI_DOUBLE_PREVIEW"\nexit "\${PULUMI_DOUBLE_EXIT:-0}"\n`,
    );
    chmodSync(join(root, "bin", "pulumi"), 0o755);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function preview(args: string[], previewFile: string, exit = "0") {
    writeFileSync(join(root, "pulumi.log"), "");
    const run = spawnSync("bash", [join(project, "scripts", "core.sh"), "hetzner", "preview", ...args], {
      encoding: "utf8",
      env: {
        PATH: `${join(root, "bin")}:${sopsDoubleDir}:${process.env.PATH}`,
        HOME: root,
        SOPS_AGE_KEY_FILE: join(root, "age.key"),
        PULUMI_DOUBLE_LOG: join(root, "pulumi.log"),
        PULUMI_DOUBLE_PREVIEW: previewFile,
        PULUMI_DOUBLE_EXIT: exit,
        PULUMI_BACKEND_URL: "s3://homelab-state",
      },
    });
    return { ...run, output: run.stdout + run.stderr, pulumi: readFileSync(join(root, "pulumi.log"), "utf8").trim().split("\n") };
  }

  it("runs pulumi preview --json under sops and ends with the summary; the steps go to stderr", () => {
    const run = preview(["--refresh"], fixture("secrets-rotated"));
    expect(run.status, run.output).toBe(0);
    expect(run.pulumi).toEqual(["stack select --create hetzner secrets=", "preview --json --stack hetzner --refresh secrets=present"]);
    expect(run.stdout).toContain("Secrets changed: AUTHENTIK_SECRET_KEY, NB_RELAY_SECRET");
    expect(run.stderr).toMatch(/\+- replace +bifrost-run \(command:remote:Command\) \[triggers\]/);
    expect(run.stderr).toMatch(/\[core\] pulumi preview hetzner: ok in \d+s/);
    expect(leakedKeys(run.output, canaryMarkers("hetzner", "preview"))).toEqual([]);
  });

  it("--markdown prints the summary as Markdown and is not passed to pulumi", () => {
    const run = preview(["--markdown"], fixture("never-key-changed"));
    expect(run.status, run.output).toBe(0);
    expect(run.pulumi[1]).toBe("preview --json --stack hetzner secrets=present");
    expect(run.stdout.startsWith("### `just core hetzner preview`\n\n- Resources: 1 to replace\n")).toBe(true);
    expect(run.stdout).toContain("- **WARNING**: `NB_DATA_STORE_KEY` changed");
  });

  it("a failed preview still shows its errors and fails with pulumi's exit code", () => {
    const failed = join(root, "failed.json");
    writeFileSync(failed, JSON.stringify({ diagnostics: [{ message: "hetzner stack: 1 problem, nothing was created or changed", severity: "error" }] }, null, 4));
    const run = preview([], failed, "255");
    expect(run.status).toBe(255);
    expect(run.stdout).toContain("ERROR: hetzner stack: 1 problem, nothing was created or changed");
    expect(run.stderr).toMatch(/pulumi preview hetzner: failed \(exit 255\)/);
    const garbage = join(root, "garbage.txt");
    writeFileSync(garbage, "error: no stack named 'hetzner' found\n");
    const broken = preview([], garbage, "0");
    expect(broken.status).not.toBe(0);
    expect(broken.stderr).toContain("pulumi preview --json gave no JSON document; nothing to summarise");
  });
});
