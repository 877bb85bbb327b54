/**
 * `just openbao-init` (scripts/openbao-init.sh) against doubles of kubectl and sops
 * (test/openbao-init-double/), OpenBao on the static seal as cloud/cluster/openbao-values.yaml
 * installs it: the recovery key and root token go from `bao operator init` into the SOPS file
 * and nowhere else — not the output, not a command line, not a file.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { projectRoot } from "../../components/stack/paths";
import { canary } from "../helpers/canaries";
import { kubeconfigText } from "../helpers/cluster";
import { stackFixtures } from "../helpers/stackFixtures";

const recoveryKey = canary("OPENBAO_RECOVERY_KEY", "init").value;
const rootToken = canary("OPENBAO_TOKEN", "init").value;
const secrets = [recoveryKey, rootToken];

let root: string;
const project = () => join(root, "project");
const sopsFile = () => join(project(), "secrets", "bootstrap.sops.yaml");
const calls = () => readFileSync(join(root, "calls.log"), "utf8").trim().split("\n");
/** What the sops double holds, decoded. */
const stored = (): Record<string, string> =>
  Object.fromEntries(Object.entries(JSON.parse(readFileSync(sopsFile(), "utf8")) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === "node_modules") return [];
    const path = join(dir, e.name);
    return e.isDirectory() ? filesUnder(path) : [path];
  });
}

function init(env: Record<string, string> = {}) {
  const run = spawnSync("bash", [join(project(), "scripts", "openbao-init.sh")], {
    encoding: "utf8",
    env: {
      PATH: `${join(projectRoot, "test", "openbao-init-double")}:${process.env.PATH}`,
      HOME: root,
      TMPDIR: join(root, "tmp"),
      SOPS_AGE_KEY_FILE: join(root, "age.key"),
      DOUBLE_DIR: root,
      OPENBAO_DOUBLE_RECOVERY_KEY: recoveryKey,
      OPENBAO_DOUBLE_ROOT_TOKEN: rootToken,
      ...env,
    },
  });
  return { ...run, output: run.stdout + run.stderr };
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "core-openbao-init-"));
  for (const dir of ["tmp", "project/scripts", "project/stacks", "project/secrets"]) mkdirSync(join(root, dir), { recursive: true });
  for (const script of ["openbao-init.sh", "lib.sh"]) copyFileSync(join(projectRoot, "scripts", script), join(project(), "scripts", script));
  symlinkSync(join(projectRoot, "node_modules"), join(project(), "node_modules"));
  const stack = parse(readFileSync(join(stackFixtures, "Pulumi.cluster.yaml"), "utf8"));
  stack.config["core:kubeconfig"] = "~/kubeconfig";
  writeFileSync(join(project(), "stacks", "Pulumi.cluster.yaml"), stringify(stack));
  writeFileSync(join(root, "kubeconfig"), kubeconfigText(stack.config["core:kubeContext"], "token-not-under-test"));
  writeFileSync(sopsFile(), JSON.stringify({ CLOUDFLARE_API_TOKEN: Buffer.from("cf-token").toString("base64") }));
  writeFileSync(join(root, "age.key"), "AGE-SECRET-KEY-TEST\n");
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("just openbao-init", () => {
  it("initialises OpenBao once, stores the recovery key and root token in the SOPS file, and sees it unsealed", () => {
    const run = init();
    expect(run.status, run.output).toBe(0);
    expect(stored()).toEqual({ CLOUDFLARE_API_TOKEN: "cf-token", OPENBAO_RECOVERY_KEY: recoveryKey, OPENBAO_TOKEN: rootToken });
    const context = "homelab";
    const bao = `kubectl --kubeconfig ${join(root, "kubeconfig")} --context ${context} --namespace openbao exec openbao-0 -- bao`;
    const file = "secrets/bootstrap.sops.yaml";
    expect(calls()).toEqual([
      "sops --disable-version-check --version",
      `sops set --value-stdin ${file} \\[\\"OPENBAO_INIT_PROBE\\"\\]`,
      `sops unset ${file} \\[\\"OPENBAO_INIT_PROBE\\"\\]`,
      `${bao} status -format=json`,
      `${bao} operator init -recovery-shares=1 -recovery-threshold=1 -format=json`,
      `sops set --value-stdin ${file} \\[\\"OPENBAO_RECOVERY_KEY\\"\\]`,
      `sops set --value-stdin ${file} \\[\\"OPENBAO_TOKEN\\"\\]`,
      `${bao} status -format=json`,
    ]);
  });

  it("never shows a secret: not in its output, not on a command line, not in any file", () => {
    const run = init();
    expect(run.status, run.output).toBe(0);
    for (const s of secrets) {
      expect(run.output).not.toContain(s);
      expect(readFileSync(join(root, "calls.log"), "utf8")).not.toContain(s);
      // The double stores base64; the raw value is in no file at all.
      for (const f of filesUnder(root)) expect(readFileSync(f, "utf8"), f).not.toContain(s);
    }
    expect(readdirSync(join(root, "tmp"))).toEqual([]);
  });

  it("logs one line per step with its duration", () => {
    const run = init();
    const done = run.stderr.split("\n").filter((l) => / in \d+s$/.test(l));
    expect(done).toHaveLength(6);
    for (const l of done) expect(l).toMatch(/^\[openbao-init\] .+: ok in \d+s$/);
    expect(run.stderr).toContain("next: just core cluster up");
  });

  it("refuses an OpenBao that is already initialised, touching nothing", () => {
    writeFileSync(join(root, "initialized"), "");
    const before = stored();
    const run = init();
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("is already initialised; refusing to run again");
    expect(calls().some((c) => c.includes("operator init"))).toBe(false);
    expect(stored()).toEqual(before);
  });

  it("refuses a sops without --value-stdin before OpenBao is touched", () => {
    const run = init({ SOPS_DOUBLE_VERSION: "3.10.2" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("sops 3.10 cannot read a value from stdin; install sops 3.11 or newer");
    expect(calls().filter((c) => c.startsWith("kubectl"))).toEqual([]);
  });

  it("stops before init when sops cannot rewrite the file", () => {
    const run = init({ SOPS_DOUBLE_FAIL_SET: "OPENBAO_INIT_PROBE" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/check sops can rewrite .*: failed/);
    expect(calls().filter((c) => c.startsWith("kubectl"))).toEqual([]);
  });

  it("when the root token cannot be stored, keeps the recovery key and says how to recover, showing neither", () => {
    const run = init({ SOPS_DOUBLE_FAIL_SET: "OPENBAO_TOKEN" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("the recovery key is stored, the root token is not: make a new one with bao operator generate-root");
    expect(stored().OPENBAO_RECOVERY_KEY).toBe(recoveryKey);
    expect(stored().OPENBAO_TOKEN).toBeUndefined();
    for (const s of secrets) expect(run.output).not.toContain(s);
  });

  it("when the recovery key cannot be stored, still stores the root token and says what is lost", () => {
    const run = init({ SOPS_DOUBLE_FAIL_SET: "OPENBAO_RECOVERY_KEY" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("the root token is stored, the recovery key is not (it was not shown anywhere)");
    expect(stored().OPENBAO_TOKEN).toBe(rootToken);
    expect(stored().OPENBAO_RECOVERY_KEY).toBeUndefined();
    for (const s of secrets) expect(run.output).not.toContain(s);
  });

  it("refuses an OpenBao not on the static seal, naming its seal, before init", () => {
    const run = init({ OPENBAO_DOUBLE_SEAL: "shamir" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("is on the shamir seal, not the static seal: install it with cloud/cluster/openbao-values.yaml");
    expect(calls().some((c) => c.includes("operator init"))).toBe(false);
    expect(stored()).toEqual({ CLOUDFLARE_API_TOKEN: "cf-token" });
  });

  it("says so when OpenBao stays sealed after init (its static seal key unreadable), the values already stored", () => {
    const run = init({ OPENBAO_DOUBLE_KEY_UNREADABLE: "1" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("OpenBao is initialised but sealed: it could not use its static seal key");
    expect(stored().OPENBAO_RECOVERY_KEY).toBe(recoveryKey);
    expect(stored().OPENBAO_TOKEN).toBe(rootToken);
  });

  it("names the Secret OpenBao waits for when its pod cannot be reached", () => {
    const run = init({ OPENBAO_DOUBLE_POD: "openbao/not-there" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("the pod starts only once the Secret openbao/openbao-unseal-key exists: run just core cluster up first");
    expect(calls().some((c) => c.includes("operator init"))).toBe(false);
  });

  it("needs the stack's context, and a readable kubeconfig", () => {
    const stackFile = join(project(), "stacks", "Pulumi.cluster.yaml");
    const stack = parse(readFileSync(stackFile, "utf8"));
    delete stack.config["core:kubeContext"];
    writeFileSync(stackFile, stringify(stack));
    const run = init();
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("core:kubeContext is not set");
    rmSync(join(root, "kubeconfig"));
    stack.config["core:kubeContext"] = "homelab";
    writeFileSync(stackFile, stringify(stack));
    expect(init().stderr).toMatch(/core:kubeconfig of cluster: .*kubeconfig cannot be read/);
    expect(calls().filter((c) => c.startsWith("kubectl"))).toEqual([]);
    expect(statSync(sopsFile()).size).toBeGreaterThan(0);
  });
});
