/**
 * The cluster stack under test: its config is a copy of the shipped example (test/fixtures/stacks/Pulumi.cluster.yaml)
 * with the kubeconfig pointed at a temp file, so the example itself is what the suites check.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { isSecretNode, secretSig } from "./pulumiMocks";
import { stackFixtures } from "./stackFixtures";

/** The cluster stack config as PULUMI_CONFIG holds it: structured values as JSON text. */
export function exampleClusterConfig(): Record<string, string> {
  const doc = parse(readFileSync(join(stackFixtures, "Pulumi.cluster.yaml"), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

/** The example's app rows, parsed. */
export function exampleApps(): Record<string, unknown>[] {
  return JSON.parse(exampleClusterConfig()["core:apps"]);
}

/**
 * A kubeconfig of the shape `kubectl config view --raw` prints (k8s.io/client-go
 * tools/clientcmd/api/v1 types.go: clusters/contexts/users as named entries), with a
 * credential the leak scan can look for.
 */
export function kubeconfigText(context: string, token: string): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    "current-context": "someone-elses",
    clusters: [
      { name: "homelab-cluster", cluster: { server: "https://192.0.2.50:6443", "certificate-authority-data": "Q0EK" } },
      { name: "other-cluster", cluster: { server: "https://192.0.2.99:6443" } },
    ],
    contexts: [
      { name: context, context: { cluster: "homelab-cluster", user: "homelab-admin" } },
      { name: "someone-elses", context: { cluster: "other-cluster", user: "homelab-admin" } },
    ],
    users: [{ name: "homelab-admin", user: { token } }],
  });
}

export interface TempKubeconfig {
  readonly path: string;
  readonly config: Record<string, string>;
  cleanup(): void;
}

/** Writes a kubeconfig to a temp dir and returns the example config pointing at it. */
export function tempKubeconfig(token = "kubeTokenCANARYkubeconfig"): TempKubeconfig {
  const dir = mkdtempSync(join(tmpdir(), "core-cluster-"));
  const path = join(dir, "config");
  const config = exampleClusterConfig();
  writeFileSync(path, kubeconfigText(config["core:kubeContext"], token), { mode: 0o600 });
  return { path, config: { ...config, "core:kubeconfig": path }, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Inputs with every secret-wrapped node replaced by its value: the object the provider receives. */
export function unwrapSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (isSecretNode(value)) return unwrapSecrets((value as Record<string, unknown>).value);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).filter(([k]) => k !== secretSig).map(([k, v]) => [k, unwrapSecrets(v)]));
  return value;
}
