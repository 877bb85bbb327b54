/**
 * The cluster stack: links the two secret tiers and configures OpenBao for every app of one
 * table. env → config (every problem at once, nothing registered on failure) → namespaces →
 * bootstrap Secrets → OpenBao's runtime tier and the SecretProviderClasses. The first `up`
 * runs before OpenBao is initialised (it needs the unseal key Secret to start), so without
 * OPENBAO_TOKEN it stops after the Kubernetes objects.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { parse } from "yaml";
import { BootstrapSecrets, cloudflareSecret, unsealKeySecret } from "../components/cluster/bootstrapSecrets";
import { ClusterNamespaces } from "../components/cluster/namespaces";
import { AppServiceAccounts } from "../components/cluster/serviceAccounts";
import { OpenBaoApps } from "../components/cluster/openBaoApps";
import { checkSecrets, ConfigError, wrapSecrets, type Environment, type Problem } from "../components/secrets/env";
import { checkClusterSettings, defaultKubeconfig, type ClusterSettings } from "../components/stack/settings";

/**
 * The kubeconfig file's text, when it can be read and names the context. Checked even when
 * other settings are wrong, so its problems join theirs; the text goes to the provider
 * secret-wrapped (it holds credentials).
 */
export function readKubeconfig(file: string, context: string | undefined): { text?: string; problems: Problem[] } {
  const path = file.replace(/^~(?=\/)/, homedir());
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return { problems: [{ key: "core:kubeconfig", problem: "the file it names cannot be read" }] };
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return { problems: [{ key: "core:kubeconfig", problem: "the file it names is not valid YAML" }] };
  }
  // Named lists of clusters and contexts (k8s.io/client-go tools/clientcmd/api/v1 types.go Config).
  const list = (field: string) => {
    const v = (doc as Record<string, unknown> | null)?.[field];
    return Array.isArray(v) ? (v as { name?: unknown; context?: { cluster?: unknown } }[]) : [];
  };
  if (context === undefined) return { problems: [] };
  const entry = list("contexts").find((c) => c?.name === context);
  if (!entry) return { problems: [{ key: "core:kubeContext", problem: "no context of that name in the kubeconfig file" }] };
  if (!list("clusters").some((c) => c?.name === entry.context?.cluster))
    return { problems: [{ key: "core:kubeContext", problem: "its cluster is not defined in the kubeconfig file" }] };
  return { text, problems: [] };
}

/**
 * Without OPENBAO_TOKEN this run registers no OpenBao resource, and Pulumi would delete those
 * an earlier run made. `just openbao-init` stores the recovery key with the root token, so a
 * recovery key without a token means the token went missing, not that OpenBao is new.
 */
export function checkOpenBaoToken(values: Readonly<Record<string, string>>, problems: readonly Problem[]): Problem[] {
  const initialised = values.OPENBAO_RECOVERY_KEY !== undefined;
  const tokenGiven = values.OPENBAO_TOKEN !== undefined || problems.some((p) => p.key === "OPENBAO_TOKEN");
  if (!initialised || tokenGiven) return [];
  return [
    {
      key: "OPENBAO_TOKEN",
      problem: "missing, while OPENBAO_RECOVERY_KEY says OpenBao is initialised: without it this run would remove OpenBao's configuration (store a token with just secrets-edit)",
    },
  ];
}

export function cluster(env: Environment = process.env) {
  const config = new pulumi.Config("core");

  // env → config
  const secrets = checkSecrets("cluster", env);
  const stack = checkClusterSettings((k) => config.get(k));
  const kube = readKubeconfig(config.get("kubeconfig") || defaultKubeconfig, config.get("kubeContext") || undefined);
  const problems = [...secrets.problems, ...checkOpenBaoToken(secrets.values, secrets.problems), ...stack.problems, ...kube.problems];
  if (problems.length > 0 || !stack.settings || kube.text === undefined) throw new ConfigError("cluster stack", problems);
  const settings = stack.settings;
  const secretInputs = wrapSecrets(secrets.values);
  pulumi.log.info(`checked ${Object.keys(secrets.values).length} secrets, the stack config and ${settings.apps.length} apps`);

  const k8sProvider = new k8s.Provider("cluster", {
    kubeconfig: pulumi.secret(kube.text),
    context: settings.kubeContext,
    // Replaced only when the context changes, not when its credentials are rotated.
    clusterIdentifier: settings.kubeContext,
    // Adopt a namespace or bootstrap Secret GitOps created first instead of failing
    // (pulumi-kubernetes >= 4.29 refuses existing objects unless this is set). Every object
    // here keeps one Pulumi name for one metadata.name, so no create-then-delete can hit one.
    upsertExistingObjects: true,
  });
  const namespaces = new ClusterNamespaces("cluster", {
    names: [unsealKeySecret.namespace, cloudflareSecret.namespace, ...settings.apps.map((a) => a.namespace)],
    // Talos enforces Pod Security "baseline" in every namespace but kube-system (its
    // admissionControl defaults), and baseline refuses hostPath volumes: OpenBao's CSI provider
    // DaemonSet, which the chart puts in the release namespace, mounts the driver's providers
    // directory from the host, so none of its pods would be admitted and every CSI mount would
    // fail with "provider not found". Kubernetes docs, Pod Security Standards ("HostPath
    // Volumes" are forbidden under baseline) and the namespace label that exempts.
    labels: { [unsealKeySecret.namespace]: { "pod-security.kubernetes.io/enforce": "privileged" } },
    provider: k8sProvider,
  });
  const bootstrap = new BootstrapSecrets("bootstrap", {
    unsealKey: secretInputs.OPENBAO_UNSEAL_KEY,
    cloudflareApiToken: secretInputs.CLOUDFLARE_API_TOKEN,
    cloudflareSecretKey: settings.cloudflareSecretKey,
    namespaces: namespaces.names,
    provider: k8sProvider,
  });
  const serviceAccounts = new AppServiceAccounts("apps", { apps: settings.apps, namespaces: namespaces.names, provider: k8sProvider });
  const openBaoToken = secretInputs.OPENBAO_TOKEN;
  const roles = openBaoToken ? configureOpenBao(settings, openBaoToken, namespaces.names, k8sProvider) : undefined;
  if (!roles) pulumi.log.info("OPENBAO_TOKEN is not set: OpenBao is left unconfigured; run just openbao-init, then up again");

  return {
    bootstrapSecrets: bootstrap.secretNames,
    roles: roles ?? "OpenBao not configured yet: run just openbao-init, then up again",
    serviceAccounts: serviceAccounts.accounts,
    apps: Object.fromEntries(settings.apps.map((a) => [a.app, { namespace: a.namespace, pattern: a.pattern, kvPath: `secret/${a.kvPath}`, keys: a.keys.map((k) => k.name) }])),
  };
}

function configureOpenBao(
  settings: ClusterSettings,
  token: pulumi.Output<string>,
  namespaces: Readonly<Record<string, pulumi.Output<string>>>,
  k8sProvider: k8s.Provider,
): pulumi.Output<string[]> {
  const vaultProvider = new vault.Provider("openbao", { address: settings.openbaoAddr, token });
  return new OpenBaoApps("openbao", {
    apps: settings.apps,
    clusterAddr: settings.openbaoClusterAddr,
    kubernetesHost: settings.kubernetesHost,
    namespaces,
    vaultProvider,
    k8sProvider,
  }).roles;
}
