/**
 * The namespaces the cluster stack writes into. GitOps may create them first, so each is
 * adopted when it exists (the provider upserts, see stacks/cluster.ts) and never deleted:
 * `pulumi destroy` leaves them, and everything else in them, in place. Only the name is set,
 * and the labels a caller names, so adopting one takes over no other field its owners manage.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export interface ClusterNamespacesArgs {
  readonly names: readonly string[];
  /** Labels to set on some of them, by namespace; adopting sets just these label keys. */
  readonly labels?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly provider: k8s.Provider;
}

export class ClusterNamespaces extends pulumi.ComponentResource {
  /** Each namespace's name as an output of its resource, so users depend on it. */
  readonly names: Readonly<Record<string, pulumi.Output<string>>>;

  constructor(name: string, args: ClusterNamespacesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("homelab:cluster:Namespaces", name, {}, opts);
    const unique = [...new Set(args.names)].sort();
    this.names = Object.fromEntries(
      unique.map((ns) => {
        const resource = new k8s.core.v1.Namespace(
          ns,
          { metadata: { name: ns, ...(args.labels?.[ns] ? { labels: { ...args.labels[ns] } } : {}) } },
          { parent: this, provider: args.provider, retainOnDelete: true },
        );
        return [ns, resource.metadata.name];
      }),
    );
    this.registerOutputs({ names: this.names });
  }
}
