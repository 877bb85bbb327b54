/**
 * Where things live on the VPS and the shell commands Pulumi runs there, as pure functions.
 * Every path in a command is fixed here or validated by the stack config (core:dataRoot is an
 * absolute path of [A-Za-z0-9._/-]), so single quotes are enough.
 */
import { posix } from "node:path";

/** The live bundle: Pulumi's files, `.env` and `.secrets.env`; nothing else survives a ship. */
export const remoteDir = "/etc/bifrost";
/** Each bundle version is copied here first, into a directory of its own. */
export const stagingRoot = "/etc/bifrost.staged";

const quote = (s: string) => `'${s}'`;

/** CopyToRemote puts a directory *inside* its remotePath: the staged bundle is `<remotePath>/bifrost`. */
export function stagingPath(bundleHash: string): string {
  return posix.join(stagingRoot, bundleHash.slice(0, 16));
}

export function stagedBundleDir(bundleHash: string, bundleName: string): string {
  return posix.join(stagingPath(bundleHash), bundleName);
}

/** Makes the live directory hold exactly the staged bundle (cloud/bifrost/install-bundle.sh). */
export function installCommand(bundleHash: string, bundleName: string): string {
  const staged = stagedBundleDir(bundleHash, bundleName);
  return `bash ${quote(posix.join(staged, "install-bundle.sh"))} ${quote(staged)} ${quote(remoteDir)}`;
}

/** Writes stdin to `file` in the live directory, mode 0600, replacing it whole by a rename. */
export function writeFromStdinCommand(file: string): string {
  const target = posix.join(remoteDir, file);
  return `umask 077 && install -m 0600 /dev/stdin ${quote(`${target}.new`)} && mv -f ${quote(`${target}.new`)} ${quote(target)}`;
}

/**
 * Stops the stack and unmounts the data root (cloud/bifrost/release-volume.sh). It runs on
 * delete, possibly on a server that never got the bundle: then there is nothing to stop.
 * POSIX sh, since the login shell runs it.
 */
export function releaseVolumeCommand(dataRoot: string): string {
  const script = posix.join(remoteDir, "release-volume.sh");
  return `if [ -f ${quote(script)} ]; then bash ${quote(script)} ${quote(dataRoot)}; fi`;
}

export function bootstrapCommand(): string {
  return `bash ${quote(posix.join(remoteDir, "bootstrap.sh"))}`;
}
