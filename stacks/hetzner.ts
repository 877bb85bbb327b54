/**
 * The hetzner stack: env → config → render → cloud → ship → bootstrap, data moving one way.
 * Every input is checked before the first resource is registered.
 */
import * as cloudflare from "@pulumi/cloudflare";
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { BifrostBootstrap } from "../components/bifrost/bootstrap";
import { BifrostBundle } from "../components/bifrost/bundle";
import { BifrostDns } from "../components/bifrost/dns";
import { BifrostServer } from "../components/bifrost/server";
import { generatedEntriesFor, githubSecretKey } from "../components/secrets/catalog";
import { checkSecrets, ConfigError, wrapSecrets, type Environment, type Problem } from "../components/secrets/env";
import { hashDirectory, secretFingerprints } from "../components/secrets/fingerprint";
import { bundleDir, cloudInitFile } from "../components/stack/paths";
import { releaseVolumeCommand } from "../components/bifrost/remoteLayout";
import { renderEnv, renderSecretsEnv } from "../components/secrets/render";
import { hetznerFingerprint, ipv6HostAddress, sshConnection, sshKeyToAdopt } from "../components/bifrost/ssh";
import { knownHostsLines, userDataWithHostKey } from "../components/bifrost/userData";
import { checkGithubLogin, checkHetznerSettings, reservedLabels, type HetznerSettings, vpsSettingsOf } from "../components/stack/settings";

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

/**
 * Secrets the stack makes itself (catalog source "generated"), one resource each, named after
 * the key (e.g. `nb-authentik-client-secret`), so `pulumi up --replace <its urn>` rotates
 * exactly one. Passwords are RandomPasswords, whose `result` is a secret output (the SDK
 * declares it in additionalSecretOutputs); SSH keys are @pulumi/tls PrivateKeys, whose
 * private encodings are (@pulumi/tls 5.6.1 privateKey.js) and whose public half is returned
 * beside. All live encrypted in state.
 */
function generatedSecrets(): { values: Record<string, pulumi.Output<string>>; publicKeys: Record<string, pulumi.Output<string>> } {
  const values: Record<string, pulumi.Output<string>> = {};
  const publicKeys: Record<string, pulumi.Output<string>> = {};
  for (const e of generatedEntriesFor("hetzner")) {
    const name = e.key.toLowerCase().replace(/_/g, "-");
    switch (e.generator?.kind) {
      case "password":
        values[e.key] = new random.RandomPassword(name, {
          length: e.generator.length,
          // Alphanumeric only: it survives every quoting layer on its way to Authentik and NetBird.
          upper: true,
          lower: true,
          numeric: true,
          special: false,
        }).result;
        break;
      case "ssh key": {
        const key = new tls.PrivateKey(name, { algorithm: e.generator.algorithm });
        values[e.key] = key.privateKeyOpenssh;
        publicKeys[e.key] = key.publicKeyOpenssh;
        break;
      }
      default:
        throw new Error(`${e.key} is generated but has no generator the stack can run in the catalog`);
    }
  }
  return { values, publicKeys };
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
  // Raw presence on both sides, so a malformed half is reported once, by its own check.
  const github = checkGithubLogin(githubSecretKey, !!env[githubSecretKey], config.get("authentikGithubClientId") || undefined, config.get("authentikGithubOrg") || undefined);
  const problems = [...secrets.problems, ...stack.problems, ...ssh.problems, ...github];
  if (problems.length > 0 || !stack.settings) throw new ConfigError("hetzner stack", problems);
  const settings = stack.settings;
  const secretInputs = wrapSecrets(secrets.values);
  const { values: generated, publicKeys } = generatedSecrets();
  const userDataTemplate = readFileSync(cloudInitFile, "utf8");
  const bundleHash = hashDirectory(bundleDir);
  pulumi.log.info(`checked ${Object.keys(secrets.values).length} secrets and the stack config; ${Object.keys(generated).length} generated by the stack`);

  const hcloudProvider = new hcloud.Provider("hcloud", { token: secretInputs.HCLOUD_TOKEN });
  const cloudflareProvider = new cloudflare.Provider("cloudflare", { apiToken: secretInputs.CLOUDFLARE_API_TOKEN });
  const data = dataStack(settings.dataStack);
  const ipv6Host = data.ipv6Address.apply(ipv6HostAddress);

  // 2. render
  const vpsSettings = data.volumeId.apply((volumeId) => vpsSettingsOf(settings, volumeId));
  // SOPS values and generated ones together: each file stays one secret-wrapped input.
  const secretValues = pulumi.all({ ...secretInputs, ...generated });
  const envFiles = {
    ".env": pulumi.all([vpsSettings, secretValues]).apply(([s, v]) => renderEnv(s, v)),
    ".secrets.env": secretValues.apply(renderSecretsEnv),
  };

  // 3. cloud
  // The server's identity, made before it so the first SSH session can already check it; the
  // private half reaches the server only inside the secret user data.
  const hostPublicKey = publicKeys.BIFROST_SSH_HOST_KEY;
  const userData = pulumi.secret(
    pulumi.all([generated.BIFROST_SSH_HOST_KEY, hostPublicKey]).apply(([privateKeyOpenssh, publicKeyOpenssh]) =>
      userDataWithHostKey(userDataTemplate, { privateKeyOpenssh, publicKeyOpenssh }),
    ),
  );
  const sshFingerprint = hetznerFingerprint(settings.sshPublicKey);
  const ownLabels = ownSshKeyLabels();
  const existingKeys = await hcloud.getSshKeys({}, { provider: hcloudProvider });
  const connection = sshConnection(data.ipv4Address, ssh.privateKey, hostPublicKey);
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
      secretFingerprints: secretFingerprints(secrets.values, generated),
    },
    { dependsOn: [...bundle.shipped, server.volumeReady] },
  );

  const url = (label: string) => `https://${label}.${settings.domain}`;
  return {
    ipv4: data.ipv4Address,
    ipv6: ipv6Host,
    // For the operator's ~/.ssh/known_hosts: the key every Pulumi SSH session checks.
    knownHosts: pulumi.all([data.ipv4Address, ipv6Host, hostPublicKey]).apply(([v4, v6, key]) => knownHostsLines([v4, v6], key)),
    urls: {
      authentik: url("auth"),
      netbird: url("netbird"),
      services: Object.fromEntries(settings.publicServices.map((s) => [s.name, url(s.name)])),
    },
  };
}
