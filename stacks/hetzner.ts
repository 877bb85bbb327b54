/**
 * The hetzner stack: env → config → render → cloud → ship → bootstrap, data moving one way.
 * Every input is checked before the first resource is registered.
 */
import * as cloudflare from "@pulumi/cloudflare";
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { BifrostBootstrap } from "../components/bifrostBootstrap";
import { BifrostBundle } from "../components/bifrostBundle";
import { BifrostDns } from "../components/bifrostDns";
import { BifrostServer } from "../components/bifrostServer";
import { checkSecrets, ConfigError, wrapSecrets, type Environment, type Problem } from "../components/env";
import { hashDirectory, secretFingerprints } from "../components/fingerprint";
import { bundleDir, cloudInitFile } from "../components/paths";
import { releaseVolumeCommand } from "../components/remoteLayout";
import { renderEnv, renderSecretsEnv, type VpsSettings } from "../components/render";
import { hetznerFingerprint, ipv6HostAddress, sshConnection, sshKeyToAdopt } from "../components/ssh";
import { checkHetznerSettings, reservedLabels, type HetznerSettings } from "../components/stackConfig";

/** The private key from the configured path (secret), else the running ssh-agent, which the provider finds itself. */
function sshPrivateKey(settings: HetznerSettings, env: Environment): { privateKey?: pulumi.Output<string>; problems: Problem[] } {
  const key = "core:sshPrivateKeyPath";
  if (settings.sshPrivateKeyPath !== undefined) {
    const path = settings.sshPrivateKeyPath.replace(/^~(?=\/)/, homedir());
    try {
      return { privateKey: pulumi.secret(readFileSync(path, "utf8")), problems: [] };
    } catch {
      return { problems: [{ key, problem: "the file it names cannot be read" }] };
    }
  }
  if (env.SSH_AUTH_SOCK) return { problems: [] };
  return { problems: [{ key, problem: "not set and no ssh-agent is running (SSH_AUTH_SOCK is empty)" }] };
}

/**
 * The hetzner-data stack's outputs this stack attaches. Its location is the server's too:
 * a volume attaches only to a server in its own location.
 */
function dataStack(name: string) {
  const ref = new pulumi.StackReference("data", { name });
  const number = (output: string) => ref.requireOutput(output).apply(Number);
  const text = (output: string) => ref.requireOutput(output).apply(String);
  return {
    location: text("location"),
    volumeId: number("volumeId"),
    ipv4Id: number("ipv4Id"),
    ipv4Address: text("ipv4Address"),
    ipv6Id: number("ipv6Id"),
    ipv6Address: text("ipv6Address"),
  };
}

/** Labels on an SSH key this stack created, so a later run knows it is its own. */
function ownSshKeyLabels(): Record<string, string> {
  return { "managed-by": "homelab-core", "homelab-core-stack": pulumi.getStack() };
}

export async function hetzner(env: Environment = process.env) {
  const config = new pulumi.Config("core");

  // 1. env → config
  const secrets = checkSecrets("hetzner", env);
  const stack = checkHetznerSettings((k) => config.get(k));
  const ssh = stack.settings ? sshPrivateKey(stack.settings, env) : { problems: [] };
  const problems = [...secrets.problems, ...stack.problems, ...ssh.problems];
  if (problems.length > 0 || !stack.settings) throw new ConfigError("hetzner stack", problems);
  const settings = stack.settings;
  const secretInputs = wrapSecrets(secrets.values);
  const userData = readFileSync(cloudInitFile, "utf8");
  const bundleHash = hashDirectory(bundleDir);
  pulumi.log.info(`checked ${Object.keys(secrets.values).length} secrets and the stack config`);

  const hcloudProvider = new hcloud.Provider("hcloud", { token: secretInputs.HCLOUD_TOKEN });
  const cloudflareProvider = new cloudflare.Provider("cloudflare", { apiToken: secretInputs.CLOUDFLARE_API_TOKEN });
  const data = dataStack(settings.dataStack);
  const ipv6Host = data.ipv6Address.apply(ipv6HostAddress);

  // 2. render
  const vpsSettings = data.volumeId.apply(
    (volumeId): VpsSettings => ({
      domain: settings.domain,
      acmeEmail: settings.acmeEmail,
      publicServices: settings.publicServices,
      dataRoot: settings.dataRoot,
      // Hetzner's stable name for a volume's block device, whatever order the kernel finds it in.
      volumeDevice: `/dev/disk/by-id/scsi-0HC_Volume_${volumeId}`,
    }),
  );
  const secretValues = pulumi.all(secretInputs);
  const envFiles = {
    ".env": pulumi.all([vpsSettings, secretValues]).apply(([s, v]) => renderEnv(s, v)),
    ".secrets.env": secretValues.apply(renderSecretsEnv),
  };

  // 3. cloud
  const sshFingerprint = hetznerFingerprint(settings.sshPublicKey);
  const ownLabels = ownSshKeyLabels();
  const existingKeys = await hcloud.getSshKeys({}, { provider: hcloudProvider });
  const connection = sshConnection(data.ipv4Address, ssh.privateKey);
  const server = new BifrostServer("bifrost", {
    name: settings.name,
    serverType: settings.serverType,
    image: settings.image,
    location: data.location,
    sshPublicKey: settings.sshPublicKey,
    // The fingerprint in the name lets a new key be created before the old one is deleted.
    sshKeyName: `${settings.name}-${sshFingerprint.replace(/:/g, "").slice(0, 12)}`,
    sshKeyLabels: ownLabels,
    adoptedSshKeyId: sshKeyToAdopt(existingKeys.sshKeys, sshFingerprint, ownLabels),
    operatorSshSources: settings.operatorSshSources,
    extraFirewallRules: settings.extraFirewallRules,
    userData,
    primaryIpv4Id: data.ipv4Id,
    primaryIpv6Id: data.ipv6Id,
    volumeId: data.volumeId,
    connection,
    releaseVolumeCommand: releaseVolumeCommand(settings.dataRoot),
    provider: hcloudProvider,
  });
  new BifrostDns("bifrost", {
    zoneName: settings.cloudflareZone,
    domain: settings.domain,
    labels: [...reservedLabels, "*.proxy", ...settings.publicServices.map((s) => s.name)],
    ipv4: data.ipv4Address,
    ipv6: ipv6Host,
    provider: cloudflareProvider,
  });

  // 4. ship
  const bundle = new BifrostBundle(
    "bifrost",
    { connection, bundleDir, bundleHash, serverId: server.serverId, envFiles },
    { dependsOn: server.volumeReady },
  );

  // 5. bootstrap
  new BifrostBootstrap(
    "bifrost",
    {
      connection,
      serverId: server.serverId,
      bundleHash,
      settingsHash: vpsSettings.apply((s) => createHash("sha256").update(JSON.stringify(s)).digest("hex")),
      secretFingerprints: secretFingerprints(secrets.values),
    },
    { dependsOn: [...bundle.shipped, server.volumeReady] },
  );

  const url = (label: string) => `https://${label}.${settings.domain}`;
  return {
    ipv4: data.ipv4Address,
    ipv6: ipv6Host,
    urls: {
      authentik: url("auth"),
      netbird: url("netbird"),
      services: Object.fromEntries(settings.publicServices.map((s) => [s.name, url(s.name)])),
    },
  };
}
