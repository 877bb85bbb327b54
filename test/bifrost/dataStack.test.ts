/**
 * Persistence across reprovision: the hetzner-data stack keeps a protected volume and
 * primary IPs; the hetzner stack attaches exactly those, whatever server it builds.
 */
import { describe, expect, it } from "vitest";
import { canaryEnv } from "../helpers/canaries";
import { byType, dataStackOutputs, hetznerConfig, hetznerDataConfig, one, runProgram, serverIpv6Address } from "../helpers/pulumiMocks";

const env = { ...canaryEnv("hetzner"), SSH_AUTH_SOCK: "/run/agent.sock" };

describe("hetzner-data stack", () => {
  it("keeps an ext4 volume and primary IPv4 and IPv6, protected, never auto-deleted, in the configured location", async () => {
    const run = await runProgram({ stack: "hetzner-data", config: hetznerDataConfig, env });
    expect(run.error).toBeUndefined();
    const volume = one(run, "hcloud:index/volume:Volume");
    expect(volume.inputs).toMatchObject({ size: 20, format: "ext4", location: "fsn1", deleteProtection: true });
    const ips = byType(run, "hcloud:index/primaryIp:PrimaryIp");
    expect(ips.map((ip) => ip.inputs.type).sort()).toEqual(["ipv4", "ipv6"]);
    for (const ip of ips) {
      expect(ip.inputs).toMatchObject({ location: "fsn1", autoDelete: false, deleteProtection: true });
      // assigneeType without assigneeId only draws a provider warning on every run.
      expect(ip.inputs).not.toHaveProperty("assigneeType");
    }
    for (const r of [volume, ...ips]) expect(r.protect, r.name).toBe(true);
    expect(Object.keys(run.outputs ?? {}).sort()).toEqual(Object.keys(dataStackOutputs).sort());
    expect(run.outputs?.volumeId).toBe(Number(volume.id));
  });

  it("lifts both protections only when core:allowDestroy is true", async () => {
    const run = await runProgram({ stack: "hetzner-data", config: { ...hetznerDataConfig, "core:allowDestroy": "true" }, env });
    for (const r of [one(run, "hcloud:index/volume:Volume"), ...byType(run, "hcloud:index/primaryIp:PrimaryIp")]) {
      expect(r.protect, r.name).toBe(false);
      expect(r.inputs.deleteProtection, r.name).toBe(false);
    }
  });

  it("refuses a malformed volume size and names the key", async () => {
    const run = await runProgram({ stack: "hetzner-data", config: { ...hetznerDataConfig, "core:volumeSizeGb": "lots" }, env });
    expect(run.error?.message).toContain("core:volumeSizeGb: expected a whole number of GB from 10 to 10240");
    expect(run.resources).toEqual([]);
  });
});

describe("hetzner stack on the data stack", () => {
  const attached = async (config: Record<string, string>) => {
    const run = await runProgram({ stack: "hetzner", config, env });
    expect(run.error).toBeUndefined();
    const server = one(run, "hcloud:index/server:Server").inputs;
    const attachment = one(run, "hcloud:index/volumeAttachment:VolumeAttachment").inputs;
    const records = byType(run, "cloudflare:index/dnsRecord:DnsRecord").map((r) => `${r.inputs.type} ${r.inputs.content}`);
    return { run, publicNets: server.publicNets, volumeId: attachment.volumeId, records: [...new Set(records)].sort() };
  };

  it("attaches the data stack's volume and primary IPs, and points DNS at them", async () => {
    const { publicNets, volumeId, records } = await attached(hetznerConfig);
    expect(publicNets).toEqual([{ ipv4Enabled: true, ipv4: dataStackOutputs.ipv4Id, ipv6Enabled: true, ipv6: dataStackOutputs.ipv6Id }]);
    expect(volumeId).toBe(dataStackOutputs.volumeId);
    // AAAA: the server's own address in the kept /64, not the network address the data stack exports.
    expect(records).toEqual([`A ${dataStackOutputs.ipv4Address}`, `AAAA ${serverIpv6Address}`]);
  });

  it("a replaced server (new image and type) keeps the same volume, addresses and DNS content", async () => {
    const before = await attached(hetznerConfig);
    const after = await attached({ ...hetznerConfig, "core:image": "ubuntu-24.04", "core:serverType": "cx33" });
    expect(one(after.run, "hcloud:index/server:Server").inputs).toMatchObject({ image: "ubuntu-24.04", serverType: "cx33" });
    expect(after.publicNets).toEqual(before.publicNets);
    expect(after.volumeId).toBe(before.volumeId);
    expect(after.records).toEqual(before.records);
  });

  it("tells the bootstrap the volume's stable device path", async () => {
    const { run } = await attached(hetznerConfig);
    // The .env content is secret-wrapped; the settings hash is its plain shadow, so check the render instead.
    const { renderEnv } = await import("../../components/secrets/render");
    expect(renderEnv({ domain: "d.test", acmeEmail: "a@d.test", netbirdOwnerEmail: "owner@example.test", netbirdUserApproval: true, netbirdUsersGroup: "netbird-users", netbirdAdminSources: [], authentikAdminSources: [], publicServices: [], dataRoot: "/x", networkSubnet: "198.18.0.0/24", traefikAddress: "198.18.0.10", databaseSubnet: "198.18.1.0/24", volumeDevice: `/dev/disk/by-id/scsi-0HC_Volume_${dataStackOutputs.volumeId}` }, {})).toContain(
      `BIFROST_VOLUME_DEVICE="/dev/disk/by-id/scsi-0HC_Volume_${dataStackOutputs.volumeId}"`,
    );
    const stdin = one(run, "command:remote:Command", "bifrost-env").inputs.stdin as { value: string };
    expect(stdin.value).toContain(`BIFROST_VOLUME_DEVICE="/dev/disk/by-id/scsi-0HC_Volume_${dataStackOutputs.volumeId}"`);
  });

  it("puts the server in the data stack's location", async () => {
    const { run } = await attached(hetznerConfig);
    expect(one(run, "hcloud:index/server:Server").inputs.location).toBe(dataStackOutputs.location);
    const elsewhere = await runProgram({ stack: "hetzner", config: hetznerConfig, env, dataOutputs: { ...dataStackOutputs, location: "hel1" } });
    expect(one(elsewhere, "hcloud:index/server:Server").inputs.location).toBe("hel1");
  });
});
