import { remote, types } from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { basename } from "node:path";
import type { VpsFile } from "../secrets/catalog";
import { installCommand, stagingPath, writeFromStdinCommand } from "./remoteLayout";

export interface BifrostBundleArgs {
  readonly connection: pulumi.Input<types.input.remote.ConnectionArgs>;
  /** Local directory shipped as-is; it holds no secret. */
  readonly bundleDir: string;
  /** Hash of the bundle's files: a new hash is a new staged copy and a new install. */
  readonly bundleHash: string;
  /** The server the files go to: a replaced server gets everything again. */
  readonly serverId: pulumi.Input<string>;
  /** Rendered env files, secret-wrapped. */
  readonly envFiles: Readonly<Record<VpsFile, pulumi.Input<string>>>;
}

/**
 * Puts the Bifrost bundle on the VPS. CopyToRemote only creates and overwrites, so the files
 * go to a fresh staging directory per bundle hash, and install-bundle.sh then makes the live
 * directory hold exactly them (stale files removed, `.env`/`.secrets.env` kept). The two env
 * files are written through a command's stdin, so a decrypted value never touches the
 * operator's disk.
 *
 * Every resource carries the server's id in its `triggers`, which pulumi-command marks
 * replaceOnChanges (v1.2.1 provider/pkg/provider/common/inputs.go and remote/copy.go):
 * `dependsOn` alone orders but never re-runs anything on a new server.
 */
export class BifrostBundle extends pulumi.ComponentResource {
  /** Done once the bundle and both env files are in place. */
  readonly shipped: pulumi.Resource[];

  constructor(name: string, args: BifrostBundleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("homelab:core:BifrostBundle", name, {}, opts);
    const bundleName = basename(args.bundleDir);

    const copy = new remote.CopyToRemote(
      `${name}-files`,
      {
        connection: args.connection,
        source: new pulumi.asset.FileArchive(args.bundleDir),
        remotePath: stagingPath(args.bundleHash),
        triggers: [args.serverId, args.bundleHash],
      },
      // Children do not inherit a component's dependsOn.
      { parent: this, dependsOn: opts?.dependsOn },
    );
    const install = new remote.Command(
      `${name}-install`,
      { connection: args.connection, create: installCommand(args.bundleHash, bundleName), triggers: [args.serverId, args.bundleHash] },
      { parent: this, dependsOn: copy },
    );

    const writers = Object.entries(args.envFiles).map(
      ([file, content]) =>
        new remote.Command(
          `${name}-${file.replace(/^\./, "").replace(/\./g, "-")}`,
          {
            connection: args.connection,
            create: writeFromStdinCommand(file),
            stdin: content,
            logging: "none",
            triggers: [args.serverId],
          },
          { parent: this, dependsOn: install },
        ),
    );

    this.shipped = [install, ...writers];
    this.registerOutputs({});
  }
}
