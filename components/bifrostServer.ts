import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import type { FirewallOpening } from "./stackConfig";

export interface BifrostServerArgs {
  /** Base name of the server and of everything that belongs to it. */
  readonly name: string;
  readonly serverType: pulumi.Input<string>;
  readonly image: pulumi.Input<string>;
  readonly location: pulumi.Input<string>;
  readonly sshPublicKey: pulumi.Input<string>;
  /** Address ranges allowed to reach SSH; nothing else may. */
  readonly operatorSshSources: readonly string[];
  /** Openings beyond the edge's own, only when the stack config asks for them. */
  readonly extraFirewallRules: readonly FirewallOpening[];
  /** cloud-init user data (cloud/cloud-init/). */
  readonly userData: pulumi.Input<string>;
  /** Primary IPs kept by the hetzner-data stack, so a new server keeps the edge's address. */
  readonly primaryIpv4Id: pulumi.Input<number>;
  readonly primaryIpv6Id: pulumi.Input<number>;
  /** Data volume kept by the hetzner-data stack; the bootstrap mounts it. */
  readonly volumeId: pulumi.Input<number>;
  readonly provider: pulumi.ProviderResource;
}

const anywhere = ["0.0.0.0/0", "::/0"];

/** The edge's own openings: HTTP(S) for Traefik and STUN for NetBird, from anywhere. */
function firewallRules(args: BifrostServerArgs): hcloud.types.input.FirewallRule[] {
  return [
    { direction: "in", protocol: "tcp", port: "80", sourceIps: anywhere, description: "HTTP (ACME redirect to HTTPS)" },
    { direction: "in", protocol: "tcp", port: "443", sourceIps: anywhere, description: "HTTPS (Traefik)" },
    { direction: "in", protocol: "udp", port: "3478", sourceIps: anywhere, description: "STUN (NetBird)" },
    { direction: "in", protocol: "tcp", port: "22", sourceIps: [...args.operatorSshSources], description: "SSH from the operators" },
    ...args.extraFirewallRules.map((r) => ({ direction: "in", protocol: r.protocol, port: r.port, sourceIps: [...r.sourceIps], description: r.description })),
  ];
}

/** The Bifrost VPS: its SSH key, its firewall, the server on the kept primary IPs, and the kept volume attached. */
export class BifrostServer extends pulumi.ComponentResource {
  constructor(name: string, args: BifrostServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("homelab:core:BifrostServer", name, {}, opts);
    const childOpts = { parent: this, provider: args.provider };

    const sshKey = new hcloud.SshKey(`${name}-ssh`, { name: args.name, publicKey: args.sshPublicKey }, childOpts);
    const firewall = new hcloud.Firewall(`${name}-firewall`, { name: args.name, rules: firewallRules(args) }, childOpts);
    const server = new hcloud.Server(
      name,
      {
        name: args.name,
        serverType: args.serverType,
        image: args.image,
        location: args.location,
        sshKeys: [sshKey.id],
        firewallIds: [firewall.id.apply(Number)],
        userData: args.userData,
        publicNets: [{ ipv4Enabled: true, ipv4: args.primaryIpv4Id, ipv6Enabled: true, ipv6: args.primaryIpv6Id }],
      },
      childOpts,
    );

    // Mounting is the bootstrap's job: it formats a volume only when it has no filesystem.
    new hcloud.VolumeAttachment(
      `${name}-volume`,
      { serverId: server.id.apply(Number), volumeId: args.volumeId, automount: false },
      childOpts,
    );
    this.registerOutputs({});
  }
}
