/**
 * Bad input to the cluster stack: one error listing every problem by key — never a value —
 * and not a single resource registered.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canaryEnv, canaryMarkers, leakedKeys } from "../helpers/canaries";
import { exampleApps, tempKubeconfig, type TempKubeconfig } from "../helpers/cluster";
import { runProgram } from "../helpers/pulumiMocks";

const good = canaryEnv("cluster", "bad");
const markers = canaryMarkers("cluster", "bad");
let kube: TempKubeconfig;
beforeAll(() => {
  kube = tempKubeconfig();
});
afterAll(() => kube.cleanup());

async function failing(config: Record<string, string>, env: Record<string, string | undefined> = good) {
  const run = await runProgram({ stack: "cluster", config, env });
  expect(run.error, "the program should have refused").toBeDefined();
  expect(run.error?.name).toBe("ConfigError");
  expect(run.resources).toEqual([]);
  expect(leakedKeys(run.error!.message + run.printed, markers)).toEqual([]);
  return run.error!.message;
}
const listed = (message: string) => message.match(/^ {2}- .*$/gm)?.map((l) => l.slice(4)) ?? [];
const withApps = (apps: unknown[]) => ({ ...kube.config, "core:apps": JSON.stringify(apps) });

describe("cluster stack: bad input", () => {
  it("lists every problem at once: secrets, kubeconfig, pattern, duplicate app, missing keys", async () => {
    const [grafana, harbor, ...rest] = exampleApps();
    const apps = [
      { ...grafana, pattern: "C" },
      { ...harbor, keys: undefined },
      ...rest,
      { ...rest[0], kvPath: "n8n-again" },
    ];
    const message = await failing({ ...withApps(apps), "core:kubeconfig": "/nonexistent/kubeconfig" }, { ...good, OPENBAO_TOKEN: "root", OPENBAO_UNSEAL_KEY: "not base64!" });
    expect(message).toMatch(/^cluster stack: 7 problems, nothing was created or changed/);
    expect(listed(message)).toEqual([
      "OPENBAO_UNSEAL_KEY: wrong format: expected standard base64 of exactly 32 bytes (44 characters, as OpenBao's static seal reads it)",
      "OPENBAO_TOKEN: wrong format: expected an OpenBao service token (hvs. or s. and at least 24 characters [A-Za-z0-9_.-])",
      "core:apps[0]: pattern: expected A (files) or B (files and a synced k8s Secret)",
      "core:apps[1]: keys: missing",
      "core:apps: app n8n appears in more than one row",
      "core:apps: secretName n8n/n8n-db appears in more than one row",
      "core:kubeconfig: the file it names cannot be read",
    ]);
  });

  it("refuses to run without OPENBAO_TOKEN once OPENBAO_RECOVERY_KEY says OpenBao is initialised (it would delete OpenBao's configuration)", async () => {
    const message = await failing(kube.config, { ...good, OPENBAO_TOKEN: undefined });
    expect(listed(message)).toEqual([
      "OPENBAO_TOKEN: missing, while OPENBAO_RECOVERY_KEY says OpenBao is initialised: without it this run would remove OpenBao's configuration (store a token with just secrets-edit)",
    ]);
  });

  it("refuses a kubeconfig that cannot be read", async () => {
    const message = await failing({ ...kube.config, "core:kubeconfig": "/nonexistent/kubeconfig" });
    expect(listed(message)).toEqual(["core:kubeconfig: the file it names cannot be read"]);
  });

  it("refuses a context the kubeconfig does not have, and a missing context setting", async () => {
    expect(listed(await failing({ ...kube.config, "core:kubeContext": "prod" }))).toEqual(["core:kubeContext: no context of that name in the kubeconfig file"]);
    const config = { ...kube.config };
    delete config["core:kubeContext"];
    expect(listed(await failing(config))).toEqual(["core:kubeContext: missing from the stack config"]);
  });

  it("refuses a malformed row field by field", async () => {
    const apps = [
      { app: "Grafana", namespace: "monitoring", serviceAccount: "grafana", kvPath: "/abs", pattern: "A", secretName: "x", keys: [{ name: "a b", length: 8, alphabet: "emoji" }, { name: "K", length: 33, alphabet: "hex" }], extra: 1 },
      { app: "b", namespace: "ns", serviceAccount: "sa", kvPath: "b", pattern: "B", keys: ["K", "K"] },
      { app: "c", namespace: "ns", serviceAccount: "sa", kvPath: "b/c", pattern: "A", keys: ["K"] },
    ];
    const problems = listed(await failing(withApps(apps)));
    expect(problems).toEqual([
      "core:apps[0]: extra: unknown field (expected app, namespace, serviceAccount, kvPath, keys, pattern, secretName)",
      "core:apps[0]: app: expected one DNS label (a-z, 0-9, -)",
      "core:apps[0]: kvPath: expected a path below secret/ such as grafana or team/app",
      "core:apps[0]: secretName: only pattern B syncs a k8s Secret; pattern A creates none",
      "core:apps[0]: keys[0].name: expected a key name of letters, digits, '-', '_' or '.'",
      "core:apps[0]: keys[0].length: expected a whole number from 16 to 128",
      "core:apps[0]: keys[0].alphabet: expected one of alphanumeric, hex, symbols",
      "core:apps[0]: keys[1].length: hex values need an even length",
      "core:apps[1]: secretName: missing, pattern B syncs a k8s Secret and needs its name",
      "core:apps[1]: keys: K is listed twice",
    ]);
  });

  it("refuses nesting and shared KV paths, and an empty table", async () => {
    const apps = [
      { app: "b", namespace: "ns", serviceAccount: "sa", kvPath: "b", pattern: "A", keys: ["KEY"] },
      { app: "c", namespace: "ns", serviceAccount: "sa", kvPath: "b/c", pattern: "A", keys: ["KEY"] },
      { app: "d", namespace: "ns", serviceAccount: "sa", kvPath: "b", pattern: "A", keys: ["KEY"] },
    ];
    expect(listed(await failing(withApps(apps)))).toEqual([
      "core:apps: kvPath b appears in more than one row",
      "core:apps: kvPath b/c (app c) lies inside b (app b)",
      "core:apps: kvPath b/c (app c) lies inside b (app d)",
    ]);
    expect(listed(await failing(withApps([])))).toEqual(["core:apps: expected at least one entry"]);
  });

  it("refuses bad addresses", async () => {
    const message = await failing({ ...kube.config, "core:openbaoAddr": "openbao:8200", "core:openbaoClusterAddr": "http://openbao/v1/" });
    expect(listed(message).map((l) => l.split(":").slice(0, 2).join(":"))).toEqual(["core:openbaoAddr", "core:openbaoClusterAddr"]);
  });
});
