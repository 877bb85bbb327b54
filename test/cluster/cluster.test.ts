/**
 * The cluster stack under Pulumi's mocks: one app table drives policies, roles, values and
 * SecretProviderClasses, so for every row they name the same paths, keys and service account.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { kvMount, policyName, symbolCharacters, valueField } from "../../components/cluster/appTable";
import { canaryEnv } from "../helpers/canaries";
import { exampleApps, tempKubeconfig, unwrapSecrets, type TempKubeconfig } from "../helpers/cluster";
import { byType, isSecretNode, one, runProgram, type Registered, type Run } from "../helpers/pulumiMocks";
import { openbaoProviderParameters } from "../helpers/openbaoCsiProvider";

interface Row {
  app: string;
  namespace: string;
  serviceAccount: string;
  kvPath: string;
  pattern: "A" | "B";
  secretName?: string;
  keys: { name: string; length: number; alphabet: string }[];
}

const rows = exampleApps() as unknown as Row[];
let kube: TempKubeconfig;
let run: Run;

const T = {
  policy: "vault:index/policy:Policy",
  role: "vault:kubernetes/authBackendRole:AuthBackendRole",
  kv: "vault:kv/secretV2:SecretV2",
  spc: "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass",
  secret: "kubernetes:core/v1:Secret",
  namespace: "kubernetes:core/v1:Namespace",
  serviceAccount: "kubernetes:core/v1:ServiceAccount",
};

const input = (r: Registered, path: string) => path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], unwrapSecrets(r.inputs));
function byName(type: string, name: string): Registered {
  const found = byType(run, type).filter((r) => r.name === name);
  if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
  return found[0];
}

/** `path "…" { capabilities = [...] }` blocks of an HCL policy (OpenBao's ACL policy syntax). */
function policyRules(hcl: string): { path: string; capabilities: string[] }[] {
  return [...hcl.matchAll(/path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}/g)].map((m) => ({
    path: m[1],
    capabilities: JSON.parse(`[${m[2]}]`),
  }));
}

/** The API paths of the KV values written below a row's kvPath: <mount>/data/<name>. */
function kvDataPaths(row: Row): string[] {
  return byType(run, T.kv)
    .filter((r) => String(input(r, "name")).startsWith(`${row.kvPath}/`))
    .map((r) => `${input(r, "mount")}/data/${input(r, "name")}`);
}

beforeAll(async () => {
  kube = tempKubeconfig();
  run = await runProgram({ stack: "cluster", config: kube.config, env: canaryEnv("cluster") });
});
afterAll(() => kube.cleanup());

describe("cluster stack", () => {
  it("runs the shipped example config without error", () => {
    expect(run.error).toBeUndefined();
    expect(rows.map((r) => r.app)).toEqual(["grafana", "harbor", "n8n", "rancher", "netbird-peer"]);
  });

  it("uses the configured kubeconfig and context, never the ambient default", () => {
    const provider = one(run, "pulumi:providers:kubernetes");
    expect(isSecretNode(provider.inputs.kubeconfig)).toBe(true);
    expect(input(provider, "kubeconfig")).toContain("kubeTokenCANARYkubeconfig");
    expect(provider.inputs.context).toBe(kube.config["core:kubeContext"]);
    expect(provider.inputs.clusterIdentifier).toBe(kube.config["core:kubeContext"]);
    expect(provider.inputs.upsertExistingObjects).toBe("true");
  });

  it("configures OpenBao at OPENBAO_ADDR with the token from SOPS", () => {
    const provider = one(run, "pulumi:providers:vault");
    expect(provider.inputs.address).toBe(kube.config["core:openbaoAddr"]);
    expect(isSecretNode(provider.inputs.token)).toBe(true);
  });

  it("mounts KV v2 at secret/ and enables Kubernetes auth against the in-cluster API", () => {
    const kv = one(run, "vault:index/mount:Mount");
    expect([kv.inputs.path, kv.inputs.type, kv.inputs.options]).toEqual([kvMount, "kv", { version: "2" }]);
    expect(one(run, "vault:index/authBackend:AuthBackend").inputs).toMatchObject({ type: "kubernetes", path: "kubernetes" });
    expect(one(run, "vault:kubernetes/authBackendConfig:AuthBackendConfig").inputs).toMatchObject({ backend: "kubernetes", kubernetesHost: "https://kubernetes.default.svc" });
  });

  it("writes the two bootstrap Secrets: annotated Prune=false, labelled, retained on destroy, values secret", () => {
    const secrets = byType(run, T.secret);
    expect(secrets.map((s) => `${input(s, "metadata.namespace")}/${input(s, "metadata.name")}`).sort()).toEqual(["cert-manager/cloudflare-api-token", "openbao/openbao-unseal-key"]);
    for (const s of secrets) {
      expect(input(s, "metadata.annotations")).toEqual({ "argocd.argoproj.io/sync-options": "Prune=false" });
      expect(input(s, "metadata.labels")).toEqual({ "app.kubernetes.io/managed-by": "homelab-core" });
      expect(s.retainOnDelete).toBe(true);
      // Pulumi marks the whole map secret once one of its values is (DESIGN: flow step 5).
      expect(isSecretNode(s.inputs.stringData)).toBe(true);
    }
    expect(Object.keys(input(byName(T.secret, "openbao-unseal-key"), "stringData") as object)).toEqual(["unseal-key"]);
    expect(Object.keys(input(byName(T.secret, "cloudflare-api-token"), "stringData") as object)).toEqual(["CLOUDFLARE_API_TOKEN"]);
  });

  it("adopts and keeps every namespace it writes into", () => {
    const namespaces = byType(run, T.namespace);
    const expected = new Set(["openbao", "cert-manager", ...rows.map((r) => r.namespace)]);
    expect(namespaces.map((n) => n.name).sort()).toEqual([...expected].sort());
    for (const n of namespaces) {
      expect(n.retainOnDelete, n.name).toBe(true);
      if (n.name !== "openbao") expect(n.inputs.metadata).toEqual({ name: n.name });
    }
  });

  it("labels openbao privileged, so Talos's baseline Pod Security admits the CSI provider's hostPath pods; no other namespace (issue 34)", () => {
    const namespaces = byType(run, T.namespace);
    expect(namespaces.find((n) => n.name === "openbao")!.inputs.metadata).toEqual({ name: "openbao", labels: { "pod-security.kubernetes.io/enforce": "privileged" } });
    expect(namespaces.filter((n) => (n.inputs.metadata as { labels?: unknown }).labels).map((n) => n.name)).toEqual(["openbao"]);
  });

  it("makes the service account each role is bound to, in its namespace: labelled, adopted and kept like the namespaces (issue 15, item 4)", () => {
    const accounts = byType(run, T.serviceAccount);
    const bound = byType(run, T.role).map((r) => `${(r.inputs.boundServiceAccountNamespaces as string[])[0]}/${(r.inputs.boundServiceAccountNames as string[])[0]}`);
    expect(accounts.map((a) => `${input(a, "metadata.namespace")}/${input(a, "metadata.name")}`).sort()).toEqual([...new Set(bound)].sort());
    for (const a of accounts) {
      expect(a.retainOnDelete, a.name).toBe(true);
      expect(input(a, "metadata.labels")).toEqual({ "app.kubernetes.io/managed-by": "homelab-core" });
      expect(Object.keys(a.inputs).sort()).toEqual(["apiVersion", "kind", "metadata"]);
    }
  });

  it("has one policy, one role, one SecretProviderClass per row and one value per key", () => {
    expect(byType(run, T.policy).map((p) => p.name)).toEqual(rows.map((r) => r.app));
    expect(byType(run, T.role).map((p) => p.name)).toEqual(rows.map((r) => r.app));
    expect(byType(run, T.spc).map((p) => p.name)).toEqual(rows.map((r) => r.app));
    expect(byType(run, T.kv).map((k) => k.name).sort()).toEqual(rows.flatMap((r) => r.keys.map((k) => `${r.app}-${k.name}`)).sort());
  });

  describe.each(rows.map((r) => [r.app, r] as const))("row %s", (app, row) => {
    it("its policy grants read on exactly its keys' paths and nothing else", () => {
      const policy = byName(T.policy, app);
      expect(policy.inputs.name).toBe(policyName(row as never));
      const rules = policyRules(String(policy.inputs.policy));
      expect(rules.map((r) => r.path).sort()).toEqual(row.keys.map((k) => `${kvMount}/data/${row.kvPath}/${k.name}`).sort());
      for (const r of rules) expect(r.capabilities).toEqual(["read"]);
      expect(String(policy.inputs.policy).match(/path\s+"/g)).toHaveLength(row.keys.length);
      expect(String(policy.inputs.policy)).not.toMatch(/[*+]"/);
    });

    it("its role binds exactly its service account and namespace to exactly its policy", () => {
      const role = byName(T.role, app);
      expect(role.inputs).toMatchObject({
        backend: "kubernetes",
        roleName: app,
        boundServiceAccountNames: [row.serviceAccount],
        boundServiceAccountNamespaces: [row.namespace],
        tokenPolicies: [policyName(row as never)],
      });
    });

    it("its values are generated to the row's length and alphabet, written once, secret", () => {
      for (const key of row.keys) {
        const kv = byName(T.kv, `${app}-${key.name}`);
        expect(kv.inputs.name).toBe(`${row.kvPath}/${key.name}`);
        expect(isSecretNode(kv.inputs.dataJson)).toBe(true);
        expect(kv.ignoreChanges).toEqual(["dataJson"]);
        const value = JSON.parse(String(input(kv, "dataJson")))[valueField] as string;
        expect(value).toHaveLength(key.length);
        expect(value).not.toMatch(/CHANGEME/i);
        const allowed = { alphanumeric: /^[A-Za-z0-9]+$/, hex: /^[0-9a-f]+$/, symbols: new RegExp(`^[A-Za-z0-9${symbolCharacters.replace(/[-\\^\]]/g, "\\$&")}]+$`) };
        expect(value).toMatch(allowed[key.alphabet as keyof typeof allowed]);
      }
    });

    it("its SecretProviderClass uses its role and only keys that exist at its paths", () => {
      const spc = byName(T.spc, app);
      expect(input(spc, "metadata")).toMatchObject({ name: `${app}-openbao`, namespace: row.namespace });
      // OpenBao's own provider (openbao-csi-provider registers as `openbao`), reading the
      // parameters as its parser does (test/helpers/openbaoCsiProvider.ts).
      expect(input(spc, "spec.provider")).toBe("openbao");
      const params = input(spc, "spec.parameters") as Record<string, string>;
      const read = openbaoProviderParameters(params);
      if ("error" in read) throw new Error(`the provider refuses ${app}'s class: ${read.error}`);
      expect(read.roleName).toBe(byName(T.role, app).inputs.roleName);
      expect(read.address).toBe(kube.config["core:openbaoClusterAddr"]);
      expect(read.authMountPath).toBe("kubernetes");
      const objects = parse(params.objects) as { objectName: string; secretPath: string; secretKey: string }[];
      expect(objects.map((o) => o.objectName)).toEqual(row.keys.map((k) => k.name));
      const written = kvDataPaths(row);
      for (const o of objects) {
        expect(written).toContain(o.secretPath);
        const kv = byType(run, T.kv).find((r) => `${input(r, "mount")}/data/${input(r, "name")}` === o.secretPath)!;
        expect(Object.keys(JSON.parse(String(input(kv, "dataJson"))))).toContain(o.secretKey);
      }
      const policyPaths = policyRules(String(byName(T.policy, app).inputs.policy)).map((r) => r.path);
      expect(objects.map((o) => o.secretPath).sort()).toEqual(policyPaths.sort());
    });

    it(row.pattern === "A" ? "pattern A mounts files and syncs no k8s Secret" : "pattern B syncs exactly its keys into its k8s Secret", () => {
      const secretObjects = input(byName(T.spc, app), "spec.secretObjects") as { secretName: string; data: { objectName: string; key: string }[] }[] | undefined;
      if (row.pattern === "A") {
        expect(secretObjects).toBeUndefined();
        expect(byType(run, T.secret).filter((s) => input(s, "metadata.namespace") === row.namespace)).toEqual([]);
      } else {
        expect(secretObjects).toHaveLength(1);
        expect(secretObjects![0].secretName).toBe(row.secretName);
        expect(secretObjects![0].data).toEqual(row.keys.map((k) => ({ objectName: k.name, key: k.name })));
      }
    });
  });

  it("a SecretProviderClass waits for its role and values", () => {
    for (const row of rows) {
      const deps = byName(T.spc, row.app).dependencies ?? [];
      expect(deps).toContain(byName(T.role, row.app).urn);
      for (const k of row.keys) expect(deps).toContain(byName(T.kv, `${row.app}-${k.name}`).urn);
    }
  });

  it("exports names only", () => {
    expect(run.outputs?.roles).toEqual(rows.map((r) => r.app));
    expect(run.outputs?.bootstrapSecrets).toEqual(["openbao/openbao-unseal-key", "cert-manager/cloudflare-api-token"]);
  });
});

describe("cluster stack before just openbao-init (the first up: OpenBao waits for its unseal key)", () => {
  let first: Run;
  beforeAll(async () => {
    const { OPENBAO_TOKEN: _token, OPENBAO_RECOVERY_KEY: _recovery, ...env } = canaryEnv("cluster", "first");
    first = await runProgram({ stack: "cluster", config: kube.config, env });
  });

  it("writes the namespaces, the unseal key Secret and the service accounts, and nothing in OpenBao", () => {
    expect(first.error).toBeUndefined();
    expect(first.resources.filter((r) => r.type.startsWith("vault:"))).toEqual([]);
    expect(byType(first, T.spc)).toEqual([]);
    const secrets = byType(first, T.secret).map((r) => `${input(r, "metadata.namespace")}/${input(r, "metadata.name")}`);
    expect(secrets).toContain("openbao/openbao-unseal-key");
    expect(byType(first, T.serviceAccount)).toHaveLength(byType(run, T.serviceAccount).length);
    expect(byType(first, T.namespace)).toHaveLength(byType(run, T.namespace).length);
  });

  it("says what to do next, in the log and the outputs", () => {
    expect(first.printed).toContain("OPENBAO_TOKEN is not set: OpenBao is left unconfigured; run just openbao-init, then up again");
    expect(first.outputs?.roles).toBe("OpenBao not configured yet: run just openbao-init, then up again");
  });
});
