/**
 * The only link between the two secret tiers: the OpenBao unseal key and the Cloudflare token,
 * written from the SOPS environment as two k8s Secrets, and left in place by `pulumi destroy`
 * (retainOnDelete): OpenBao could not unseal and cert-manager could not renew without them.
 * Argo CD prunes only resources it tracks as part of an Application (its tracking label or
 * annotation); these carry neither, so no Application prunes them as things stand. The
 * `Prune=false` annotation is for the day one does track them (an Application rendering a
 * Secret of the same name, or adopting the namespace's contents): Argo CD then shows them out
 * of sync instead of deleting them when they leave Git. It does not stop an Application from
 * overwriting them on sync, nor anyone from deleting them.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { managedByLabel } from "./secretProviderClass";

export const unsealKeySecret = { namespace: "openbao", name: "openbao-unseal-key", key: "unseal-key" } as const;
export const cloudflareSecret = { namespace: "cert-manager", name: "cloudflare-api-token" } as const;
/** Argo CD sync option: a tracked resource is never pruned, only shown out of sync (argo-cd docs: user-guide/sync-options.md, "No Prune Resources"). */
export const noPrune = { "argocd.argoproj.io/sync-options": "Prune=false" } as const;

export interface BootstrapSecretsArgs {
  /** Secret-wrapped OPENBAO_UNSEAL_KEY. */
  readonly unsealKey: pulumi.Output<string>;
  /** Secret-wrapped CLOUDFLARE_API_TOKEN. */
  readonly cloudflareApiToken: pulumi.Output<string>;
  /** Key of the Cloudflare Secret that holds the token. */
  readonly cloudflareSecretKey: string;
  /** Namespace name outputs from ClusterNamespaces, so each Secret waits for its namespace. */
  readonly namespaces: Readonly<Record<string, pulumi.Output<string>>>;
  readonly provider: k8s.Provider;
}

export class BootstrapSecrets extends pulumi.ComponentResource {
  readonly secretNames: pulumi.Output<string[]>;

  constructor(name: string, args: BootstrapSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("homelab:cluster:BootstrapSecrets", name, {}, opts);
    const namespaceOf = (ns: string) => {
      const output = args.namespaces[ns];
      if (!output) throw new Error(`BootstrapSecrets: namespace ${ns} is not among those the stack manages`);
      return output;
    };
    const secret = (resourceName: string, namespace: string, secretName: string, key: string, value: pulumi.Output<string>) =>
      new k8s.core.v1.Secret(
        resourceName,
        {
          metadata: {
            name: secretName,
            namespace: namespaceOf(namespace),
            labels: { ...managedByLabel },
            annotations: { ...noPrune },
          },
          type: "Opaque",
          stringData: { [key]: pulumi.secret(value) },
        },
        { parent: this, provider: args.provider, retainOnDelete: true },
      );
    const unseal = secret("openbao-unseal-key", unsealKeySecret.namespace, unsealKeySecret.name, unsealKeySecret.key, args.unsealKey);
    const cloudflare = secret("cloudflare-api-token", cloudflareSecret.namespace, cloudflareSecret.name, args.cloudflareSecretKey, args.cloudflareApiToken);
    this.secretNames = pulumi
      .all([unseal.metadata, cloudflare.metadata])
      .apply((ms) => ms.map((m) => `${m.namespace}/${m.name}`));
    this.registerOutputs({ secretNames: this.secretNames });
  }
}
