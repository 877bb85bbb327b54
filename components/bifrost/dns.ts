import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";

export interface BifrostDnsArgs {
  /** Cloudflare zone, looked up by name. */
  readonly zoneName: string;
  /** The edge's domain: the zone itself or a name inside it. */
  readonly domain: string;
  /** Labels under the domain that point at the edge (`*.proxy` included). */
  readonly labels: readonly string[];
  readonly ipv4: pulumi.Input<string>;
  readonly ipv6: pulumi.Input<string>;
  readonly provider: pulumi.ProviderResource;
}

/** A and AAAA records for every name the edge answers, DNS-only so TLS and gRPC reach Traefik. */
export class BifrostDns extends pulumi.ComponentResource {
  constructor(name: string, args: BifrostDnsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("homelab:core:BifrostDns", name, {}, opts);
    const zone = cloudflare.getZoneOutput({ filter: { name: args.zoneName } }, { parent: this, provider: args.provider });

    for (const hostname of args.labels.map((label) => `${label}.${args.domain}`)) {
      for (const [type, content] of [["A", args.ipv4], ["AAAA", args.ipv6]] as const) {
        new cloudflare.DnsRecord(
          `${name}-${hostname.replace("*", "wildcard")}-${type.toLowerCase()}`,
          { zoneId: zone.id, name: hostname, type, content, ttl: 300, proxied: false, comment: "homelab core: Bifrost edge" },
          { parent: this, provider: args.provider },
        );
      }
    }
    this.registerOutputs({});
  }
}
