/**
 * The service accounts OpenBao's roles are bound to: each role names exactly one account in one
 * namespace (appTable.ts), and a pod can read its keys only while running as it. A chart may
 * create the same account; each is adopted when it exists (the provider upserts, see
 * stacks/cluster.ts), carries only its name and the managed-by label, and is left in place by
 * `pulumi destroy`, like the namespaces.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { AppRow } from "./appTable";
import { managedByLabel } from "./secretProviderClass";

export interface AppServiceAccountsArgs {
  readonly apps: readonly AppRow[];
  /** Each namespace's name as an output of its resource (ClusterNamespaces), so the accounts wait for it. */
  readonly namespaces: Readonly<Record<string, pulumi.Output<string>>>;
  readonly provider: k8s.Provider;
}

export class AppServiceAccounts extends pulumi.ComponentResource {
  /** `<namespace>/<name>` of each account. */
  readonly accounts: pulumi.Output<string[]>;

  constructor(name: string, args: AppServiceAccountsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("homelab:cluster:AppServiceAccounts", name, {}, opts);
    const pairs = [...new Map(args.apps.map((a) => [`${a.namespace}/${a.serviceAccount}`, a] as const)).values()];
    const accounts = pairs.map(
      (a) =>
        new k8s.core.v1.ServiceAccount(
          `${a.namespace}-${a.serviceAccount}`,
          { metadata: { name: a.serviceAccount, namespace: args.namespaces[a.namespace], labels: { ...managedByLabel } } },
          { parent: this, provider: args.provider, retainOnDelete: true },
        ),
    );
    this.accounts = pulumi.all(accounts.map((sa) => pulumi.interpolate`${sa.metadata.namespace}/${sa.metadata.name}`));
    this.registerOutputs({ accounts: this.accounts });
  }
}
