/**
 * OpenBao's runtime tier, configured through its Vault-compatible API from the app table:
 * KV v2 at `secret/`, the Kubernetes auth method, and for each row a read-only policy, a role
 * bound to exactly its service account and namespace, generated initial values, and the
 * SecretProviderClass that reads them.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as vault from "@pulumi/vault";
import {
  kubernetesAuthPath,
  kvMount,
  kvName,
  policyDocument,
  policyName,
  roleName,
  symbolCharacters,
  valueField,
  type AppKey,
  type AppRow,
} from "./appTable";
import { renderSecretProviderClass } from "./secretProviderClass";

export interface OpenBaoAppsArgs {
  readonly apps: readonly AppRow[];
  /** The address pods' CSI provider uses (SecretProviderClass openbaoAddress). */
  readonly clusterAddr: string;
  /** API server address for the Kubernetes auth method's token reviews. */
  readonly kubernetesHost: string;
  /** Namespace name outputs from ClusterNamespaces; every app's namespace must be among them. */
  readonly namespaces: Readonly<Record<string, pulumi.Output<string>>>;
  readonly vaultProvider: vault.Provider;
  readonly k8sProvider: k8s.Provider;
}

/** Lifetime of the OpenBao token an app's pod gets at login, in seconds. */
export const roleTokenTtl = 3600;

/**
 * The generated initial value of one key, secret-wrapped. RandomPassword/RandomBytes keep it in
 * state, so it is generated once and stays the same on every later run.
 */
function initialValue(name: string, key: AppKey, parent: pulumi.Resource): pulumi.Output<string> {
  if (key.alphabet === "hex") {
    const bytes = new random.RandomBytes(name, { length: key.length / 2 }, { parent });
    return pulumi.secret(bytes.hex);
  }
  const symbols = key.alphabet === "symbols";
  const password = new random.RandomPassword(
    name,
    { length: key.length, special: symbols, ...(symbols ? { overrideSpecial: symbolCharacters } : {}) },
    { parent },
  );
  return pulumi.secret(password.result);
}

export class OpenBaoApps extends pulumi.ComponentResource {
  readonly roles: pulumi.Output<string[]>;

  constructor(name: string, args: OpenBaoAppsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("homelab:cluster:OpenBaoApps", name, {}, opts);
    const bao = { parent: this, provider: args.vaultProvider };

    const kv = new vault.Mount("kv", { path: kvMount, type: "kv", options: { version: "2" }, description: "runtime tier: app secrets (homelab core)" }, bao);
    const auth = new vault.AuthBackend("kubernetes", { type: "kubernetes", path: kubernetesAuthPath, description: "pods log in with their service account (homelab core)" }, bao);
    // No reviewer JWT or CA: OpenBao runs in the cluster and uses its own service account's
    // (openbao v2.6.2 builtin/credential/kubernetes/path_config.go: localJWTPath,
    // localCACertPath, used while disable_local_ca_jwt is false).
    new vault.kubernetes.AuthBackendConfig("kubernetes", { backend: auth.path, kubernetesHost: args.kubernetesHost }, bao);

    const roles = args.apps.map((row) => {
      const policy = new vault.Policy(`${row.app}`, { name: policyName(row), policy: policyDocument(row) }, bao);
      const role = new vault.kubernetes.AuthBackendRole(
        `${row.app}`,
        {
          backend: auth.path,
          roleName: roleName(row),
          boundServiceAccountNames: [row.serviceAccount],
          boundServiceAccountNamespaces: [row.namespace],
          tokenPolicies: [policy.name],
          tokenTtl: roleTokenTtl,
        },
        bao,
      );
      const values = row.keys.map(
        (key) =>
          new vault.kv.SecretV2(
            `${row.app}-${key.name}`,
            {
              mount: kv.path,
              name: kvName(row, key),
              dataJson: pulumi.secret(pulumi.jsonStringify({ [valueField]: initialValue(`${row.app}-${key.name}`, key, this) })),
            },
            // Written once: an operator's later value in OpenBao stays. terraform-provider-vault
            // v5.8.0 (wrapped by @pulumi/vault 7.8.0) does not read data_json back on refresh
            // (vault/resource_kv_secret_v2.go kvSecretV2Read), so no drift shows; and ignoring
            // dataJson keeps a changed input (a regenerated or re-sized initial value) from
            // being written over it. `pulumi up --replace <urn>` seeds a key afresh on purpose.
            { ...bao, ignoreChanges: ["dataJson"] },
          ),
      );
      const namespace = args.namespaces[row.namespace];
      if (!namespace) throw new Error(`OpenBaoApps: namespace ${row.namespace} of app ${row.app} is not among those the stack manages`);
      const spc = renderSecretProviderClass(row, args.clusterAddr);
      new k8s.apiextensions.CustomResource(
        `${row.app}`,
        { ...spc, metadata: { ...spc.metadata, namespace } },
        // Pods mount the class only once its role and values exist.
        { parent: this, provider: args.k8sProvider, dependsOn: [role, ...values] },
      );
      return role.roleName;
    });
    this.roles = pulumi.all(roles);
    this.registerOutputs({ roles: this.roles });
  }
}
