import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";

export interface BifrostDataArgs {
  readonly name: string;
  readonly location: string;
  readonly volumeSizeGb: number;
  /** Protection in Pulumi and at Hetzner; lifted only when the operator sets core:allowDestroy. */
  readonly protect: boolean;
  readonly provider: pulumi.ProviderResource;
}

/**
 * What must outlive any one server: the data volume and the public addresses. Protected in
 * Pulumi and at Hetzner unless the operator asks otherwise, and never deleted with the
 * server they are attached to.
 */
export class BifrostData extends pulumi.ComponentResource {
  readonly volumeId: pulumi.Output<number>;
  readonly ipv4Id: pulumi.Output<number>;
  readonly ipv4Address: pulumi.Output<string>;
  readonly ipv6Id: pulumi.Output<number>;
  readonly ipv6Address: pulumi.Output<string>;

  constructor(name: string, args: BifrostDataArgs, opts?: pulumi.ComponentResourceOptions) {
    super("homelab:core:BifrostData", name, {}, opts);
    const keep = { parent: this, provider: args.provider, protect: args.protect };

    const volume = new hcloud.Volume(
      `${name}-volume`,
      { name: `${args.name}-data`, location: args.location, size: args.volumeSizeGb, format: "ext4", deleteProtection: args.protect },
      keep,
    );
    const primaryIp = (type: "ipv4" | "ipv6") =>
      new hcloud.PrimaryIp(
        `${name}-${type}`,
        // No assigneeType: the provider wants it only with an assigneeId and warns on every run
        // otherwise (terraform-provider-hcloud v1.67.0 internal/primaryip/resource.go,
        // ValidateConfig); the server's publicNets assigns these addresses.
        { name: `${args.name}-${type}`, type, location: args.location, autoDelete: false, deleteProtection: args.protect },
        keep,
      );
    const ipv4 = primaryIp("ipv4");
    const ipv6 = primaryIp("ipv6");

    this.volumeId = volume.id.apply(Number);
    this.ipv4Id = ipv4.id.apply(Number);
    this.ipv4Address = ipv4.ipAddress;
    this.ipv6Id = ipv6.id.apply(Number);
    this.ipv6Address = ipv6.ipAddress;
    this.registerOutputs({
      volumeId: this.volumeId,
      ipv4Id: this.ipv4Id,
      ipv4Address: this.ipv4Address,
      ipv6Id: this.ipv6Id,
      ipv6Address: this.ipv6Address,
    });
  }
}
