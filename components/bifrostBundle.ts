import { remote, types } from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { posix, basename } from "node:path";
import type { VpsFile } from "./catalog";

export interface BifrostBundleArgs {
  readonly connection: pulumi.Input<types.input.remote.ConnectionArgs>;
  /** Local directory shipped as-is; it holds no secret. */
  readonly bundleDir: string;
  /** Where it lands on the VPS; its last element must be the bundle directory's name. */
  readonly remoteDir: string;
  /** Hash of the bundle's files, so a changed file re-copies the bundle. */
  readonly bundleHash: string;
  /** Rendered env files, secret-wrapped. */
  readonly envFiles: Readonly<Record<VpsFile, pulumi.Input<string>>>;
}

/**
 * Puts the Bifrost bundle on the VPS: the files of cloud/bifrost/ by CopyToRemote, then the
 * two env files through a command's stdin, so a decrypted value never touches the
 * operator's disk.
 */
export class BifrostBundle extends pulumi.ComponentResource {
  constructor(name: string, args: BifrostBundleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("homelab:core:BifrostBundle", name, {}, opts);
    if (basename(args.remoteDir) !== basename(args.bundleDir)) {
      throw new Error(`remoteDir ${args.remoteDir} must end in ${basename(args.bundleDir)}`);
    }

    // CopyToRemote copies a directory *into* an existing remote directory, so the target is
    // the parent: the first and every later copy both land on remoteDir itself.
    const copy = new remote.CopyToRemote(
      `${name}-files`,
      {
        connection: args.connection,
        source: new pulumi.asset.FileArchive(args.bundleDir),
        remotePath: posix.dirname(args.remoteDir),
        triggers: [args.bundleHash],
      },
      { parent: this, dependsOn: opts?.dependsOn },
    );

    for (const [file, content] of Object.entries(args.envFiles)) {
      const target = posix.join(args.remoteDir, file);
      new remote.Command(
        `${name}-${file.replace(/^\./, "").replace(/\./g, "-")}`,
        {
          connection: args.connection,
          // Written to a temporary name and renamed, so a reader never sees half a file.
          create: `umask 077 && install -m 0600 /dev/stdin '${target}.new' && mv -f '${target}.new' '${target}'`,
          stdin: content,
          logging: "none",
        },
        { parent: this, dependsOn: copy },
      );
    }
    this.registerOutputs({});
  }
}
