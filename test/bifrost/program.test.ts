/** The hetzner program's resource graph under mocks: what it creates, from which config, in which order. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { cloudInitFile } from "../../components/stack/paths";
import { canaryEnv } from "../helpers/canaries";
import { stagingRoot } from "../../components/bifrost/remoteLayout";
import { dialWaitSeconds, sshBootBudgetSeconds } from "../../components/bifrost/ssh";
import { byType, dataStackOutputs, hetznerConfig, isSecretNode, mockEd25519Key, mockRandomPassword, one, runProgram, serverIpv6Address, withoutSecrets, type Registered, type Run } from "../helpers/pulumiMocks";

/** The server's user data, unwrapped from its secret. */
const userDataOf = (run: Run) => (one(run, "hcloud:index/server:Server").inputs.userData as { value: string }).value;

const env = { ...canaryEnv("hetzner"), SSH_AUTH_SOCK: "/run/user/1000/ssh-agent.sock" };

describe("hetzner program", () => {
  let run: Run;
  beforeAll(async () => {
    run = await runProgram({ stack: "hetzner", config: hetznerConfig, env });
  });

  it("runs without error and exports the addresses and URLs", () => {
    expect(run.error).toBeUndefined();
    const hostPublicKey = mockEd25519Key("bifrost-ssh-host-key").publicKeyOpenssh.trim();
    expect(run.outputs).toEqual({
      ipv4: dataStackOutputs.ipv4Address,
      ipv6: serverIpv6Address,
      knownHosts: `${dataStackOutputs.ipv4Address} ${hostPublicKey}\n${serverIpv6Address} ${hostPublicKey}\n`,
      urls: {
        authentik: "https://auth.edge.example.test",
        netbird: "https://netbird.edge.example.test",
        services: { grafana: "https://grafana.edge.example.test" },
      },
    });
  });

  it("registers one component per concern, each child parented to its component", () => {
    const components = run.resources.filter((r) => r.type.startsWith("homelab:core:")).map((r) => r.type).sort();
    expect(components).toEqual([
      "homelab:core:BifrostBootstrap",
      "homelab:core:BifrostBundle",
      "homelab:core:BifrostDns",
      "homelab:core:BifrostServer",
    ]);
    const parentOf = (type: string) => run.resources.find((r) => r.urn === one(run, type).parent)?.type;
    expect(parentOf("hcloud:index/server:Server")).toBe("homelab:core:BifrostServer");
    expect(parentOf("hcloud:index/firewall:Firewall")).toBe("homelab:core:BifrostServer");
    expect(parentOf("hcloud:index/volumeAttachment:VolumeAttachment")).toBe("homelab:core:BifrostServer");
    expect(parentOf("command:remote:CopyToRemote")).toBe("homelab:core:BifrostBundle");
    for (const r of byType(run, "cloudflare:index/dnsRecord:DnsRecord")) {
      expect(run.resources.find((p) => p.urn === r.parent)?.type).toBe("homelab:core:BifrostDns");
    }
  });

  it("opens 80/443 tcp and 3478 udp to all, SSH only to the operators, nothing else", () => {
    const rules = one(run, "hcloud:index/firewall:Firewall").inputs.rules as Record<string, unknown>[];
    const summary = rules.map((r) => `${r.direction} ${r.protocol}/${r.port} from ${(r.sourceIps as string[]).join(",")}`);
    expect(summary).toEqual([
      "in tcp/80 from 0.0.0.0/0,::/0",
      "in tcp/443 from 0.0.0.0/0,::/0",
      "in udp/3478 from 0.0.0.0/0,::/0",
      "in tcp/22 from 192.0.2.10/32,2001:db8:1::/48",
    ]);
  });

  it("adds an opening only when the stack config asks for it", async () => {
    const extra = [{ protocol: "tcp", port: "8443", sourceIps: ["198.51.100.0/24"], description: "test opening" }];
    const withExtra = await runProgram({
      stack: "hetzner",
      config: { ...hetznerConfig, "core:extraFirewallRules": JSON.stringify(extra) },
      env,
    });
    const rules = one(withExtra, "hcloud:index/firewall:Firewall").inputs.rules as Record<string, unknown>[];
    expect(rules).toHaveLength(5);
    expect(rules[4]).toMatchObject({ direction: "in", protocol: "tcp", port: "8443", sourceIps: ["198.51.100.0/24"] });
  });

  it("creates the server from config, with the cloud-init user data and the kept primary IPs", async () => {
    const server = one(run, "hcloud:index/server:Server").inputs;
    const template = YAML.parse(readFileSync(cloudInitFile, "utf8")) as Record<string, unknown>;
    const { ssh_keys: _hostKey, ...rest } = YAML.parse(userDataOf(run)) as Record<string, unknown>;
    expect(rest).toEqual(template);
    expect(server).toMatchObject({
      name: "bifrost",
      serverType: "cx23",
      image: "debian-13",
      location: "fsn1",
      publicNets: [{ ipv4Enabled: true, ipv4: dataStackOutputs.ipv4Id, ipv6Enabled: true, ipv6: dataStackOutputs.ipv6Id }],
    });
    expect(server.sshKeys).toEqual([one(run, "hcloud:index/sshKey:SshKey").id]);
    expect(server.firewallIds).toEqual([Number(one(run, "hcloud:index/firewall:Firewall").id)]);
    expect(one(run, "hcloud:index/sshKey:SshKey").inputs.publicKey).toBe(hetznerConfig["core:sshPublicKey"]);
  });

  it("points A and AAAA records for every edge name, from config, at the kept addresses", () => {
    const records = byType(run, "cloudflare:index/dnsRecord:DnsRecord").map((r) => r.inputs);
    const names = ["auth", "netbird", "proxy", "*.proxy", "grafana"].map((l) => `${l}.edge.example.test`);
    expect(records.map((r) => `${r.type} ${r.name} ${r.content}`).sort()).toEqual(
      names
        .flatMap((n) => [`A ${n} ${dataStackOutputs.ipv4Address}`, `AAAA ${n} ${serverIpv6Address}`])
        .sort(),
    );
    for (const r of records) expect(r).toMatchObject({ zoneId: "zone-for-test", proxied: false });
  });

  it("stages the bundle in a directory of its own version, installs it into /etc/bifrost, then writes both env files from stdin with mode 0600", () => {
    const copy = one(run, "command:remote:CopyToRemote").inputs;
    expect(copy.remotePath).toMatch(new RegExp(`^${stagingRoot}/[0-9a-f]{16}$`));
    const staged = `${copy.remotePath}/bifrost`;
    expect(one(run, "command:remote:Command", "bifrost-install").inputs.create).toBe(
      `bash '${staged}/install-bundle.sh' '${staged}' '/etc/bifrost'`,
    );
    const writers = ["bifrost-env", "bifrost-secrets-env"].map((n) => one(run, "command:remote:Command", n));
    expect(writers.map((w) => w.inputs.create)).toEqual([
      "umask 077 && install -m 0600 /dev/stdin '/etc/bifrost/.env.new' && mv -f '/etc/bifrost/.env.new' '/etc/bifrost/.env'",
      "umask 077 && install -m 0600 /dev/stdin '/etc/bifrost/.secrets.env.new' && mv -f '/etc/bifrost/.secrets.env.new' '/etc/bifrost/.secrets.env'",
    ]);
    for (const w of writers) {
      expect(withoutSecrets(w.inputs.stdin)).toBe("[secret]");
      expect(w.inputs.logging).toBe("none");
      expect(w.dependencies).toContain(one(run, "command:remote:Command", "bifrost-install").urn);
    }
    expect(one(run, "command:remote:Command", "bifrost-install").dependencies).toContain(one(run, "command:remote:CopyToRemote").urn);
  });

  it("connects as root to the kept IPv4, with nothing machine-local in the connection and dials that outlast a slow boot", () => {
    for (const r of [...byType(run, "command:remote:Command"), one(run, "command:remote:CopyToRemote")]) {
      const connection = (r.inputs.connection as { value: Record<string, unknown> }).value;
      // port and perDialTimeout are the SDK's defaults (@pulumi/command types/input.ts, connectionArgsProvideDefaults).
      expect(connection, r.name).toEqual({ host: dataStackOutputs.ipv4Address, user: "root", port: 22, perDialTimeout: 15, dialErrorLimit: expect.any(Number), hostKey: expect.any(String) });
      expect(dialWaitSeconds(connection.dialErrorLimit as number)).toBeGreaterThanOrEqual(sshBootBudgetSeconds);
      expect(dialWaitSeconds((connection.dialErrorLimit as number) - 1)).toBeLessThan(sshBootBudgetSeconds);
    }
  });

  describe("the host key: only the server the stack made gets the secrets", () => {
    const hostKey = () => one(run, "tls:index/privateKey:PrivateKey");
    const remoteResources = () => [...byType(run, "command:remote:Command"), ...byType(run, "command:remote:CopyToRemote")];
    const connectionOf = (r: Registered) => (r.inputs.connection as { value: Record<string, unknown> }).value;

    it("is an Ed25519 key the stack generates", () => {
      expect(hostKey().inputs).toEqual({ algorithm: "ED25519" });
    });

    it("is pinned on every remote resource's connection, the one key the server's user data installs", () => {
      const installed = (YAML.parse(userDataOf(run)) as { ssh_keys: Record<string, string> }).ssh_keys;
      expect(Object.keys(installed).sort()).toEqual(["ed25519_private", "ed25519_public"]);
      expect(remoteResources().length).toBeGreaterThanOrEqual(5);
      for (const r of remoteResources()) {
        expect(connectionOf(r).hostKey, r.name).toBe(mockEd25519Key(hostKey().name).publicKeyOpenssh);
        expect(connectionOf(r).hostKey?.toString().trim(), r.name).toBe(installed.ed25519_public);
      }
      // The private half written to the server is the one the pinned public key belongs to.
      const dir = mkdtempSync(join(tmpdir(), "host-key-"));
      try {
        writeFileSync(join(dir, "key"), installed.ed25519_private, { mode: 0o600 });
        const derived = execFileSync("ssh-keygen", ["-y", "-f", join(dir, "key")], { encoding: "utf8" });
        expect(derived.trim()).toBe(installed.ed25519_public);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("reaches the server only inside secret user data: no clear copy in any input, output or print", () => {
      const server = one(run, "hcloud:index/server:Server");
      expect(isSecretNode(server.inputs.userData)).toBe(true);
      const privateKey = mockEd25519Key(hostKey().name).privateKeyOpenssh;
      const body = privateKey.split("\n")[1];
      const clear = JSON.stringify(run.resources.map((r) => withoutSecrets(r.inputs))) + JSON.stringify(run.outputs) + run.printed;
      expect(clear).not.toContain(body);
    });

    it("sshd offers only that key: the drop-in names it as the one HostKey", () => {
      const dropIn = (YAML.parse(userDataOf(run)) as { write_files: { path: string; content: string }[] }).write_files.find((f) => f.path === "/etc/ssh/sshd_config.d/10-bifrost.conf");
      expect(dropIn?.content.match(/^HostKey .*$/gm)).toEqual(["HostKey /etc/ssh/ssh_host_ed25519_key"]);
    });
  });

  it("runs the bootstrap after the bundle, both env files and the volume attachment", () => {
    const bootstrap = one(run, "command:remote:Command", "bifrost-run");
    expect(bootstrap.inputs.create).toBe("bash '/etc/bifrost/bootstrap.sh'");
    const needed = [
      one(run, "command:remote:Command", "bifrost-install").urn,
      one(run, "command:remote:Command", "bifrost-env").urn,
      one(run, "command:remote:Command", "bifrost-secrets-env").urn,
      one(run, "command:remote:Command", "bifrost-volume-release").urn,
    ];
    expect(bootstrap.dependencies).toEqual(expect.arrayContaining(needed));
    expect(one(run, "command:remote:Command", "bifrost-volume-release").dependencies).toContain(
      one(run, "hcloud:index/volumeAttachment:VolumeAttachment").urn,
    );
  });

  it("attaches the kept volume to the server without automount", () => {
    expect(one(run, "hcloud:index/volumeAttachment:VolumeAttachment").inputs).toMatchObject({
      volumeId: dataStackOutputs.volumeId,
      automount: false,
    });
  });

  it("reads the data stack named in config", () => {
    expect(one(run, "pulumi:pulumi:StackReference").inputs.name).toBe(hetznerConfig["core:dataStack"]);
  });

  it("generates NetBird's session-cookie key: 32 alphanumerics (32 raw bytes, a length NetBird accepts), in .secrets.env only", () => {
    const password = one(run, "random:index/randomPassword:RandomPassword", "nb-session-cookie-key");
    expect(password.inputs).toEqual({ length: 32, upper: true, lower: true, numeric: true, special: false });
    const value = mockRandomPassword("nb-session-cookie-key", 0, password.inputs);
    const stdin = (name: string) => (one(run, "command:remote:Command", name).inputs.stdin as { value: string }).value;
    expect(stdin("bifrost-secrets-env")).toContain(`\nNB_SESSION_COOKIE_KEY="${value}"\n`);
    expect(stdin("bifrost-env")).not.toContain(value);
  });

  describe("the NetBird↔Authentik OAuth2 client secret, generated by the stack", () => {
    const randomType = "random:index/randomPassword:RandomPassword";
    const stdinOf = (r: Run, name: string) => {
      const stdin = one(r, "command:remote:Command", name).inputs.stdin;
      expect(isSecretNode(stdin), name).toBe(true);
      return (stdin as { value: string }).value;
    };
    const expected = (generation: number) =>
      mockRandomPassword("nb-authentik-client-secret", generation, { length: 64, upper: true, lower: true, numeric: true, special: false });

    it("is one RandomPassword: 64 characters, alphanumeric only", () => {
      const password = one(run, randomType, "nb-authentik-client-secret");
      expect(password.name).toBe("nb-authentik-client-secret");
      expect(password.inputs).toEqual({ length: 64, upper: true, lower: true, numeric: true, special: false });
      expect(expected(0)).toMatch(/^[A-Za-z0-9]{64}$/);
    });

    it("reaches .secrets.env inside the one secret-wrapped stdin, and the VPS requires it", () => {
      expect(stdinOf(run, "bifrost-secrets-env")).toContain(`\nNB_AUTHENTIK_CLIENT_SECRET="${expected(0)}"\n`);
      expect(stdinOf(run, "bifrost-env")).not.toContain(expected(0));
      const required = stdinOf(run, "bifrost-env").match(/^BIFROST_REQUIRED_SECRETS="([^"]*)"$/m)?.[1].split(" ");
      expect(required).toEqual(expect.arrayContaining(["NB_AUTHENTIK_CLIENT_SECRET", "NB_OWNER_PASSWORD"]));
    });

    it("replacing the RandomPassword (a new result) rewrites .secrets.env and changes exactly its trigger entry", async () => {
      const rotated = await runProgram({ stack: "hetzner", config: hetznerConfig, env, randomGeneration: { "nb-authentik-client-secret": 1 } });
      expect(rotated.error).toBeUndefined();
      expect(expected(1)).not.toBe(expected(0));
      expect(stdinOf(rotated, "bifrost-secrets-env")).toContain(`NB_AUTHENTIK_CLIENT_SECRET="${expected(1)}"`);
      const triggers = (r: Run) => one(r, "command:remote:Command", "bifrost-run").inputs.triggers as Record<string, string>[];
      const changed = triggers(run).filter((t, i) => JSON.stringify(t) !== JSON.stringify(triggers(rotated)[i]));
      expect(changed.map((t) => t.secret)).toEqual(["NB_AUTHENTIK_CLIENT_SECRET"]);
    });
  });

  it("renders the NetBird owner's e-mail and the GitHub client id into .env (empty when unset)", async () => {
    const env_ = (r: Run) => (one(r, "command:remote:Command", "bifrost-env").inputs.stdin as { value: string }).value;
    expect(env_(run)).toContain(`\nNB_OWNER_EMAIL="${hetznerConfig["core:netbirdOwnerEmail"]}"\n`);
    expect(env_(run)).toContain(`\nAUTHENTIK_GITHUB_CLIENT_ID="${hetznerConfig["core:authentikGithubClientId"]}"\n`);
    const config: Record<string, string> = { ...hetznerConfig };
    delete config["core:authentikGithubClientId"];
    const without = await runProgram({ stack: "hetzner", config, env: { ...env, AUTHENTIK_GITHUB_SECRET: "" } });
    expect(without.error).toBeUndefined();
    expect(env_(without)).toContain('\nAUTHENTIK_GITHUB_CLIENT_ID=""\n');
    expect((one(without, "command:remote:Command", "bifrost-secrets-env").inputs.stdin as { value: string }).value).not.toContain("AUTHENTIK_GITHUB_SECRET");
  });
});
