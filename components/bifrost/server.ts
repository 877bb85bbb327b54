import { remote, types } from "@pulumi/command";
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import type { FirewallOpening } from "../stack/settings";

export interface BifrostServerArgs {
  /** Base name of the server and of everything that belongs to it. */
  readonly name: string;
  readonly serverType: pulumi.Input<string>;
  readonly image: pulumi.Input<string>;
  readonly location: pulumi.Input<string>;
  /**
   * The operator's key: created here (labelled as this stack's) unless `adoptedSshKeyId`
   * names a key with the same fingerprint already in the Hetzner project.
   */
  readonly sshPublicKey: string;
  readonly sshKeyName: string;
  readonly sshKeyLabels: Readonly<Record<string, string>>;
  readonly adoptedSshKeyId?: number;
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
  /** SSH connection to the server, for releasing the volume before it is detached. */
  readonly connection: pulumi.Input<types.input.remote.ConnectionArgs>;
  /** Shell command run on the old server before the attachment goes: stop the stack, unmount. */
  readonly releaseVolumeCommand: string;
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

/**
 * The Bifrost VPS: its SSH key, its firewall, the server on the kept primary IPs, and the
 * kept volume attached — released (stack stopped, filesystem unmounted) before any detach.
 */
export class BifrostServer extends pulumi.ComponentResource {
  /** Changes exactly when the server is replaced: every remote resource keys on it. */
  readonly serverId: pulumi.Output<string>;
  /** Ready once the volume is attached; the bootstrap mounts it. */
  readonly volumeReady: pulumi.Resource;

  constructor(name: string, args: BifrostServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("homelab:core:BifrostServer", name, {}, opts);
    const childOpts = { parent: this, provider: args.provider };

    const sshKeyId =
      args.adoptedSshKeyId !== undefined
        ? pulumi.output(String(args.adoptedSshKeyId))
        : new hcloud.SshKey(`${name}-ssh`, { name: args.sshKeyName, publicKey: args.sshPublicKey, labels: { ...args.sshKeyLabels } }, childOpts).id;
    const firewall = new hcloud.Firewall(`${name}-firewall`, { name: args.name, rules: firewallRules(args) }, childOpts);
    const server = new hcloud.Server(
      name,
      {
        name: args.name,
        serverType: args.serverType,
        image: args.image,
        location: args.location,
        sshKeys: [sshKeyId],
        firewallIds: [firewall.id.apply(Number)],
        userData: args.userData,
        publicNets: [{ ipv4Enabled: true, ipv4: args.primaryIpv4Id, ipv6Enabled: true, ipv6: args.primaryIpv6Id }],
      },
      // The primary IPs can be assigned to one server at a time, so the old server must go
      // before its replacement is created. Pulumi then deletes, first and in reverse
      // dependency order, every dependent that the new id replaces (pulumi/pulumi
      // pkg/resource/deploy/step_generator.go, calculateDependentReplacements): the volume
      // release below runs on the old server before the attachment is removed.
      { ...childOpts, deleteBeforeReplace: true },
    );

    // Mounting is the bootstrap's job: it formats a volume only when it has no filesystem.
    const attachment = new hcloud.VolumeAttachment(
      `${name}-volume`,
      { serverId: server.id.apply(Number), volumeId: args.volumeId, automount: false },
      childOpts,
    );
    // Does nothing on create. Its delete, on destroy or server replacement, stops the stack and
    // unmounts the volume while the old server still has it: it depends on the attachment, so
    // Pulumi deletes it first, and the hcloud provider's Detach then finds a clean filesystem.
    const release = new remote.Command(
      `${name}-volume-release`,
      { connection: args.connection, delete: args.releaseVolumeCommand, triggers: [server.id] },
      { parent: this, dependsOn: [attachment] },
    );

    this.serverId = server.id;
    this.volumeReady = release;
    this.registerOutputs({ serverId: this.serverId });
  }
}
