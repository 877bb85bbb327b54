/**
 * The cluster stack's leak scan and preview: every secret (the SOPS values and the
 * kubeconfig's credential) reaches Pulumi only secret-wrapped, nothing prints one, and a
 * preview writes no file anywhere.
 */
import fs from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { entriesFor, forStateBackendOnly, keptInSopsOnly } from "../../components/secrets/catalog";
import { projectRoot } from "../../components/stack/paths";
import { canaryEnv, canaryMarkers, leakedKeys } from "../helpers/canaries";
import { tempKubeconfig, type TempKubeconfig } from "../helpers/cluster";
import { byType, isSecretNode, runProgram, withoutSecrets, type Run } from "../helpers/pulumiMocks";

const canaries = canaryEnv("cluster", "cl");
const markers = { ...canaryMarkers("cluster", "cl"), kubeconfig: "kubeTokenCANARYclusterleak" };
const leaked = (text: string) => leakedKeys(text, markers);

let kube: TempKubeconfig;
let run: Run;
beforeAll(async () => {
  kube = tempKubeconfig(markers.kubeconfig);
  run = await runProgram({ stack: "cluster", config: kube.config, env: { ...canaries } });
});
afterAll(() => kube.cleanup());

describe("cluster leak scan", () => {
  it("the run succeeded and read every secret of the stack", () => {
    expect(run.error).toBeUndefined();
    expect(Object.keys(canaries).sort()).toEqual(["CLOUDFLARE_API_TOKEN", "OPENBAO_RECOVERY_KEY", "OPENBAO_TOKEN", "OPENBAO_UNSEAL_KEY", "PULUMI_CONFIG_PASSPHRASE"]);
    expect(Object.keys(canaries).sort()).toEqual(entriesFor("cluster").map((e) => e.key).sort());
  });

  it("no canary in any non-secret resource input", () => {
    expect(leaked(JSON.stringify(run.resources.map((r) => withoutSecrets(r.inputs))))).toEqual([]);
  });

  it("the scan can see them: every canary is in the wrapped inputs", () => {
    // Except the state backend's passphrase (the Pulumi CLI reads it, no resource does) and
    // the recovery key (kept in SOPS; the stack only checks it is there).
    expect(leaked(JSON.stringify(run.resources.map((r) => r.inputs))).sort()).toEqual(
      Object.keys(markers)
        .filter((k) => !entriesFor("cluster").some((e) => e.key === k && (forStateBackendOnly(e) || keptInSopsOnly(e))))
        .sort(),
    );
  });

  it("generated initial values reach OpenBao only wrapped", () => {
    const values = byType(run, "vault:kv/secretV2:SecretV2");
    expect(values.length).toBeGreaterThan(0);
    for (const v of values) expect(isSecretNode(v.inputs.dataJson), v.name).toBe(true);
  });

  it("no canary in anything the program printed or exported", () => {
    expect(run.printed).toContain("checked 5 secrets");
    expect(leaked(run.printed)).toEqual([]);
    expect(leaked(JSON.stringify(run.outputs))).toEqual([]);
  });
});

describe("cluster leak scan, the first up (before just openbao-init)", () => {
  it("the unseal key and Cloudflare token reach only secret inputs; nothing printed or exported holds one", async () => {
    const { OPENBAO_TOKEN: _token, OPENBAO_RECOVERY_KEY: _recovery, ...env } = canaries;
    const first = await runProgram({ stack: "cluster", config: kube.config, env });
    expect(first.error).toBeUndefined();
    expect(leaked(JSON.stringify(first.resources.map((r) => withoutSecrets(r.inputs))))).toEqual([]);
    expect(leaked(JSON.stringify(first.resources.map((r) => r.inputs))).sort()).toEqual(["CLOUDFLARE_API_TOKEN", "OPENBAO_UNSEAL_KEY", "kubeconfig"]);
    expect(leaked(first.printed + JSON.stringify(first.outputs))).toEqual([]);
  });
});

const writers = ["writeFileSync", "writeFile", "appendFileSync", "appendFile", "createWriteStream", "mkdirSync", "mkdtempSync", "copyFileSync", "renameSync"] as const;

describe("cluster preview", () => {
  it("plans every resource and writes no file", async () => {
    const spies = writers.map((w) => vi.spyOn(fs, w));
    const mtimes = (dir: string) => new Map(fs.readdirSync(dir).map((f) => [f, fs.statSync(join(dir, f)).mtimeMs]));
    const before = [mtimes(projectRoot), mtimes(homedir()), mtimes(join(kube.path, ".."))];
    const preview = await runProgram({ stack: "cluster", config: kube.config, env: { ...canaries }, preview: true });
    expect(preview.error).toBeUndefined();
    expect(preview.resources.length).toBe(run.resources.length);
    expect([mtimes(projectRoot), mtimes(homedir()), mtimes(join(kube.path, ".."))]).toEqual(before);
    for (const spy of spies) expect(spy, spy.getMockName()).not.toHaveBeenCalled();
    vi.restoreAllMocks();
  });
});
