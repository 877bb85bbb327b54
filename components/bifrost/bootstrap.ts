import { remote, types } from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { SecretFingerprint } from "../secrets/fingerprint";
import { bootstrapCommand } from "./remoteLayout";

export interface BifrostBootstrapArgs {
  readonly connection: pulumi.Input<types.input.remote.ConnectionArgs>;
  /** The server it runs on: a replaced server is bootstrapped again. */
  readonly serverId: pulumi.Input<string>;
  /** Hash of the shipped files. */
  readonly bundleHash: string;
  /** Hash of the non-secret settings rendered into `.env`. */
  readonly settingsHash: pulumi.Input<string>;
  /** Per secret: its name in clear and a keyed fingerprint, never the value. */
  readonly secretFingerprints: readonly SecretFingerprint[];
}

/**
 * Runs the bootstrap on the VPS, again whenever the server, a shipped file, a setting or a
 * secret changes. The triggers stay plain (not secret) on purpose: Pulumi hides a whole
 * property when one element is secret, and the preview should name what changed.
 */
export class BifrostBootstrap extends pulumi.ComponentResource {
  constructor(name: string, args: BifrostBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
    super("homelab:core:BifrostBootstrap", name, {}, opts);
    new remote.Command(
      `${name}-run`,
      {
        connection: args.connection,
        create: bootstrapCommand(),
        triggers: [{ server: args.serverId }, { files: args.bundleHash }, { settings: args.settingsHash }, ...args.secretFingerprints],
      },
      // Children do not inherit a component's dependsOn; the run must wait for what the caller named.
      { parent: this, dependsOn: opts?.dependsOn },
    );
    this.registerOutputs({});
  }
}
