/**
 * How the program reaches the VPS over SSH, as pure functions: the dial budget that covers a
 * slow first boot, the connection inputs (nothing machine-local in them), and the key's
 * fingerprint as Hetzner computes it.
 */
import type { types } from "@pulumi/command";
import type * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";

/**
 * pulumi-command retries a failed dial through pulumi's `retry.Until` with its defaults:
 * 100 ms first delay, ×1.5 per try, at most 5 s (pulumi/pulumi
 * sdk/go/common/util/retry/until.go; pulumi-command v1.2.1
 * provider/pkg/provider/remote/connection.go, dialWithRetry). Its default of 10 dials gives
 * up after about 11 s, before sshd listens on a fresh server (pulumi-command issue #1238).
 */
const firstDelayMs = 100;
const backoff = 1.5;
const maxDelayMs = 5000;

/** Seconds spent waiting between the first `attempts` dials, as the provider schedules them. */
export function dialWaitSeconds(attempts: number): number {
  let waited = 0;
  let delay = firstDelayMs;
  for (let attempt = 1; attempt < attempts; attempt++) {
    waited += Math.min(delay, maxDelayMs);
    delay *= backoff;
  }
  return waited / 1000;
}

/** The fewest dials whose waits add up to at least `seconds`. */
export function dialAttemptsCovering(seconds: number): number {
  let attempts = 1;
  while (dialWaitSeconds(attempts) < seconds) attempts++;
  return attempts;
}

/**
 * A new Hetzner server boots, runs cloud-init's package installs and only then has sshd
 * listening with the injected key: allow five minutes of refused dials.
 */
export const sshBootBudgetSeconds = 300;

/**
 * The connection every remote resource uses. Only values that mean the same on any
 * operator's machine go in: an ssh-agent socket path changes with every login session and
 * would re-run every command, so it stays out and the provider falls back to SSH_AUTH_SOCK
 * itself (pulumi-command v1.2.1 connection.go: `tryGetDefaultAgentSocket` when
 * AgentSocketPath is nil).
 *
 * `hostKey` pins the server: without it the provider accepts any host key
 * (`ssh.InsecureIgnoreHostKey`); with it, `ssh.FixedHostKey` and only that key's algorithm
 * offered, and a mismatch is a failed dial, retried like a refused one (connection.go,
 * SSHConfig and dialWithRetry) — so a dial that meets the image's key before cloud-init has
 * written ours simply waits for it.
 */
export function sshConnection(
  host: pulumi.Input<string>,
  privateKey: pulumi.Input<string> | undefined,
  hostKey: pulumi.Input<string>,
): types.input.remote.ConnectionArgs {
  return {
    host,
    user: "root",
    ...(privateKey === undefined ? {} : { privateKey }),
    hostKey,
    dialErrorLimit: dialAttemptsCovering(sshBootBudgetSeconds),
  };
}

/**
 * Hetzner's fingerprint of an OpenSSH public key: MD5 of the key blob, as colon-separated hex
 * pairs (Hetzner Cloud API reference, "SSH Keys": `"fingerprint": "b7:2f:30:a0:…"`).
 */
export function hetznerFingerprint(publicKeyLine: string): string {
  const blob = publicKeyLine.trim().split(/\s+/)[1] ?? "";
  const digest = createHash("md5").update(Buffer.from(blob, "base64")).digest("hex");
  return digest.match(/../g)!.join(":");
}

/**
 * The address a Hetzner server answers on in its primary IPv6 network. A primary IP's
 * `ipAddress` is the /64's network address (`prefix::`), and the provider reports the
 * server's own address as that text plus "1" (terraform-provider-hcloud v1.67.0
 * internal/primaryip/model.go `hc.IP.String()`; internal/server/resource.go
 * `s.PublicNet.IPv6.IP.String() + "1"`).
 */
export function ipv6HostAddress(network: string): string {
  if (!network.endsWith("::")) {
    throw new Error(`expected a primary IPv6 network address ending in "::" from the data stack, got ${network}`);
  }
  return `${network}1`;
}

export interface ExistingSshKey {
  readonly id: number;
  readonly fingerprint: string;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * Hetzner refuses a second key with the same fingerprint in a project (uniqueness_error), so
 * a key the operator already uploaded is used as it is; only a key this stack created itself
 * (it carries `ownLabels`) stays a resource of the stack. Returns the id to adopt, if any.
 */
export function sshKeyToAdopt(
  existing: readonly ExistingSshKey[],
  fingerprint: string,
  ownLabels: Readonly<Record<string, string>>,
): number | undefined {
  const same = existing.find((k) => k.fingerprint === fingerprint);
  if (!same) return undefined;
  const ours = Object.entries(ownLabels).every(([k, v]) => same.labels[k] === v);
  return ours ? undefined : same.id;
}
