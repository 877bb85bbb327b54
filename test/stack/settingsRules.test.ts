/**
 * Every stack setting's rule on its own: what is required, each default, each refusal with the
 * key and problem it names (never the value), and every problem of one config reported at once.
 */
import { describe, expect, it } from "vitest";
import { checkClusterSettings, checkGithubLogin, checkHetznerDataSettings, checkHetznerSettings, defaultKubeconfig, reservedLabels, traefikAddress, vpsSettingsOf } from "../../components/stack/settings";
import { minimalHetznerConfig } from "../helpers/stackSettings";

/** The minimal config by bare key, as the checks ask for it. */
const hetzner = Object.fromEntries(Object.entries(minimalHetznerConfig).map(([k, v]) => [k.slice("core:".length), v]));
const checkH = (over: Record<string, string | undefined> = {}) => checkHetznerSettings((k) => ({ ...hetzner, ...over })[k]);
const problemsH = (over: Record<string, string | undefined>) => checkH(over).problems;
const one = (key: string, problem: string) => [{ key: `core:${key}`, problem }];

describe("hetzner settings", () => {
  it("takes the minimal config with every default", () => {
    const r = checkH();
    expect(r.problems).toEqual([]);
    expect(r.settings).toEqual({
      name: "bifrost",
      domain: "edge.example.test",
      cloudflareZone: "example.test",
      acmeEmail: "ops@example.test",
      netbirdOwnerEmail: "owner@example.test",
      netbirdUserApproval: true,
      netbirdUsersGroup: "netbird-users",
      authentikGithubClientId: undefined,
      authentikGithubOrg: undefined,
      serverType: "cx23",
      image: "debian-13",
      sshPublicKey: hetzner.sshPublicKey,
      sshUser: "root",
      sshPrivateKeyPath: undefined,
      operatorSshSources: ["198.51.100.7/32"],
      netbirdAdminSources: [],
      authentikAdminSources: [],
      publicServices: [],
      extraFirewallRules: [],
      dataRoot: "/var/lib/bifrost",
      networkSubnet: "172.30.0.0/24",
      databaseSubnet: "172.30.1.0/24",
      dataStack: "organization/core/hetzner-data",
    });
  });

  it.each(["domain", "cloudflareZone", "acmeEmail", "netbirdOwnerEmail", "serverType", "image", "sshPublicKey", "operatorSshSources", "dataStack"])("requires %s", (key) => {
    expect(problemsH({ [key]: undefined })).toEqual(one(key, "missing from the stack config"));
    if (key !== "operatorSshSources") expect(problemsH({ [key]: "  " })).toEqual(one(key, "missing from the stack config"));
  });

  it("reports every problem of one config at once", () => {
    const r = checkH({ domain: "Not A Name", acmeEmail: "x", sshUser: "admin", dataRoot: "relative" });
    expect(r.settings).toBeUndefined();
    expect(r.problems.map((p) => p.key)).toEqual(["core:domain", "core:acmeEmail", "core:sshUser", "core:dataRoot"]);
  });

  describe("names", () => {
    it.each([
      ["example.org", true],
      ["a.b.example.org", true],
      ["x-1.example.org", true],
      [`${"a".repeat(63)}.org`, true],
      [`${"a".repeat(64)}.org`, false],
      ["-a.example.org", false],
      ["a-.example.org", false],
      ["Example.org", false],
      ["example", false],
      ["example.o", false],
      ["example.org.", false],
      [" example.org", false],
      ["example.org ", false],
      [`${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.${"d".repeat(60)}.org`, true],
      [`${"a".repeat(62)}.${"b".repeat(62)}.${"c".repeat(62)}.${"d".repeat(62)}.org`, false],
    ])("domain %j valid: %s", (domain, ok) => {
      const problems = problemsH({ domain, cloudflareZone: domain });
      expect(problems).toEqual(ok ? [] : [...one("domain", "expected a lower-case DNS name such as example.org"), ...one("cloudflareZone", "expected a lower-case DNS name such as example.org")]);
    });

    it("needs the domain inside the Cloudflare zone, or the zone itself", () => {
      expect(problemsH({ domain: "example.test" })).toEqual([]);
      expect(problemsH({ domain: "a.b.example.test" })).toEqual([]);
      expect(problemsH({ domain: "edge.otherexample.test" })).toEqual(one("domain", "must be the Cloudflare zone or a name inside it (core:cloudflareZone)"));
      expect(problemsH({ domain: "edgeexample.test" })).toEqual(one("domain", "must be the Cloudflare zone or a name inside it (core:cloudflareZone)"));
    });

    it("takes one DNS label as the server name, default bifrost", () => {
      expect(checkH({ name: "edge-2" }).settings?.name).toBe("edge-2");
      for (const bad of ["Edge", "-edge", "edge-", "a.b", "a".repeat(64)]) expect(problemsH({ name: bad })).toEqual(one("name", "expected one DNS label (a-z, 0-9, -)"));
      expect(checkH({ name: "a".repeat(63) }).problems).toEqual([]);
      expect(checkH({ name: "a" }).problems).toEqual([]);
    });
  });

  it.each(["acmeEmail", "netbirdOwnerEmail"])("%s: an e-mail address, without quotes, spaces or $", (key) => {
    expect(problemsH({ [key]: "a@b.co" })).toEqual([]);
    for (const bad of ["a@b", "@b.co", "a@.co", "a b@c.co", "a@b.co ", "a\"@b.co", "a'@b.co", "$a@b.co", "a@@b.co", "a@b.c@o"])
      expect(problemsH({ [key]: bad }), bad).toEqual(one(key, "expected an e-mail address"));
  });

  it("authentikGithubClientId: optional, 8 to 64 characters [A-Za-z0-9._-]", () => {
    expect(checkH({ authentikGithubClientId: "" })).toMatchObject({ problems: [], settings: { authentikGithubClientId: undefined } });
    expect(checkH({ authentikGithubClientId: "Ov23li.k_-" }).settings?.authentikGithubClientId).toBe("Ov23li.k_-");
    expect(problemsH({ authentikGithubClientId: "k".repeat(8) })).toEqual([]);
    expect(problemsH({ authentikGithubClientId: "k".repeat(64) })).toEqual([]);
    const expected = one("authentikGithubClientId", "expected a GitHub OAuth client id (8 to 64 characters [A-Za-z0-9._-], such as Ov23li…)");
    for (const bad of ["k".repeat(7), "k".repeat(65), "kkkkkkkk kk", "kkkkkkkk/", "kkkkkkkk\n"]) expect(problemsH({ authentikGithubClientId: bad })).toEqual(expected);
  });

  it("authentikGithubOrg: optional, a GitHub organisation name (what reaches the blueprint's Python string)", () => {
    expect(checkH({ authentikGithubOrg: "" })).toMatchObject({ problems: [], settings: { authentikGithubOrg: undefined } });
    for (const ok of ["a", "homelab-people", "A1-b2-C3", "k".repeat(39)]) expect(problemsH({ authentikGithubOrg: ok }), ok).toEqual([]);
    const expected = one("authentikGithubOrg", "expected a GitHub organisation name (up to 39 letters, digits and single hyphens inside)");
    for (const bad of ["k".repeat(40), "-lead", "trail-", "two--hyphens", 'org" + x', "org\\n", "org_name", "o rg"]) expect(problemsH({ authentikGithubOrg: bad }), bad).toEqual(expected);
  });

  it("sshPublicKey: one OpenSSH public key line of a known type", () => {
    for (const ok of ["ssh-ed25519 AAAA", "ssh-rsa AAAA+/= c", "ecdsa-sha2-nistp256 AAAA", "ecdsa-sha2-nistp384 AAAA", "ecdsa-sha2-nistp521 AAAA", "sk-ssh-ed25519@openssh.com AAAA x y"])
      expect(problemsH({ sshPublicKey: ok }), ok).toEqual([]);
    for (const bad of ["ssh-dss AAAA", "ecdsa-sha2-nistp512 AAAA", "ssh-ed25519", "ssh-ed25519 AA!A", " ssh-ed25519 AAAA", "xssh-ed25519 AAAA", "ssh-ed25519  AAAA"])
      expect(problemsH({ sshPublicKey: bad }), bad).toEqual(one("sshPublicKey", "expected an OpenSSH public key line (ssh-ed25519 AAAA…)"));
  });

  it("sshUser: root only, and says why", () => {
    expect(checkH({ sshUser: "root" }).settings?.sshUser).toBe("root");
    expect(problemsH({ sshUser: "admin" })).toEqual(one("sshUser", "expected root: the bootstrap writes /etc/bifrost, mounts the volume and runs Docker as root, and nothing uses sudo"));
  });

  it("sshPrivateKeyPath: optional and taken as given", () => {
    expect(checkH({ sshPrivateKeyPath: "~/.ssh/id_ed25519" }).settings?.sshPrivateKeyPath).toBe("~/.ssh/id_ed25519");
    expect(checkH({ sshPrivateKeyPath: "" })).toMatchObject({ problems: [], settings: { sshPrivateKeyPath: undefined } });
  });

  describe("authentikAdminSources", () => {
    it("takes address ranges, defaults to none (Authentik's admin side closed from outside), and names a bad entry", () => {
      expect(checkH({ authentikAdminSources: JSON.stringify(["198.51.100.0/24", "2001:db8::/48"]) }).settings?.authentikAdminSources).toEqual(["198.51.100.0/24", "2001:db8::/48"]);
      expect(checkH({}).settings?.authentikAdminSources).toEqual([]);
      expect(problemsH({ authentikAdminSources: JSON.stringify(["office"]) })).toEqual(one("authentikAdminSources[0]", "expected an address range such as 192.0.2.10/32 or 2001:db8::/64"));
    });
  });

  describe("netbirdAdminSources", () => {
    it("takes address ranges, and an empty list for everyone", () => {
      expect(checkH({ netbirdAdminSources: JSON.stringify(["198.51.100.0/24", "2001:db8::/48"]) }).settings?.netbirdAdminSources).toEqual(["198.51.100.0/24", "2001:db8::/48"]);
      expect(checkH({ netbirdAdminSources: "[]" }).settings?.netbirdAdminSources).toEqual([]);
    });

    it("names each entry that is no address range", () => {
      expect(problemsH({ netbirdAdminSources: JSON.stringify(["198.51.100.0/24", "office"]) })).toEqual(one("netbirdAdminSources[1]", "expected an address range such as 192.0.2.10/32 or 2001:db8::/64"));
    });
  });

  describe("operatorSshSources", () => {
    it("takes IPv4 and IPv6 ranges", () => {
      expect(checkH({ operatorSshSources: JSON.stringify(["198.51.100.0/24", "2001:db8::/32", "0.0.0.0/0", "::/0", "203.0.113.9/32", "2001:db8::1/128"]) }).problems).toEqual([]);
    });

    it.each([
      [[], "expected at least one entry"],
      ["198.51.100.7/32", "expected a list"],
    ])("refuses %j: %s", (value, problem) => {
      expect(problemsH({ operatorSshSources: JSON.stringify(value) })).toEqual(one("operatorSshSources", problem));
    });

    it("refuses what is not JSON", () => {
      expect(problemsH({ operatorSshSources: "[198.51" })).toEqual(one("operatorSshSources", "is not a valid list or object"));
    });

    it.each(["198.51.100.7", "198.51.100.7/33", "2001:db8::/129", "198.51.100.7/", "/32", "198.51.100.7/3a", "198.51.100.7/1234", "198.51.100.7/24/1", "300.1.1.1/32", 7])(
      "names the entry with a bad range %j",
      (bad) => {
        expect(problemsH({ operatorSshSources: JSON.stringify(["198.51.100.7/32", bad]) })).toEqual(one("operatorSshSources[1]", "expected an address range such as 192.0.2.10/32 or 2001:db8::/64"));
      },
    );
  });

  describe("publicServices", () => {
    it("takes name and http(s) upstream pairs", () => {
      const services = [
        { name: "grafana", upstream: "http://100.64.0.10:3000" },
        { name: "a", upstream: "https://home.internal" },
      ];
      expect(checkH({ publicServices: JSON.stringify(services) }).settings?.publicServices).toEqual(services);
    });

    it("names each problem of an entry", () => {
      const bad = [{ name: "Auth", upstream: "ftp://x" }, { name: "auth", upstream: "http://x y" }, { upstream: "http://x" }, "grafana", { name: "ok", upstream: "http://$x" }, { name: "ok", upstream: "http://" }, { name: 7, upstream: "xhttp://a" }, { name: "ok", upstream: ["http://a"] }];
      expect(problemsH({ publicServices: JSON.stringify(bad) })).toEqual([
        { key: "core:publicServices[0]", problem: "name: expected one DNS label (a-z, 0-9, -)" },
        { key: "core:publicServices[0]", problem: "upstream: expected an http:// or https:// URL" },
        { key: "core:publicServices[1]", problem: "name: auth is reserved for the stack itself" },
        { key: "core:publicServices[1]", problem: "upstream: expected an http:// or https:// URL" },
        { key: "core:publicServices[2]", problem: "name: expected one DNS label (a-z, 0-9, -)" },
        { key: "core:publicServices[3]", problem: "name: expected one DNS label (a-z, 0-9, -)" },
        { key: "core:publicServices[3]", problem: "upstream: expected an http:// or https:// URL" },
        { key: "core:publicServices[4]", problem: "upstream: expected an http:// or https:// URL" },
        { key: "core:publicServices[5]", problem: "upstream: expected an http:// or https:// URL" },
        { key: "core:publicServices[6]", problem: "name: expected one DNS label (a-z, 0-9, -)" },
        { key: "core:publicServices[6]", problem: "upstream: expected an http:// or https:// URL" },
        { key: "core:publicServices[7]", problem: "upstream: expected an http:// or https:// URL" },
      ]);
    });

    it("reserves every label the stack puts in DNS", () => {
      expect([...reservedLabels]).toEqual(["auth", "netbird", "proxy"]);
      for (const name of reservedLabels)
        expect(problemsH({ publicServices: JSON.stringify([{ name, upstream: "http://x" }]) })).toEqual(one("publicServices[0]", `name: ${name} is reserved for the stack itself`));
    });
  });

  describe("extraFirewallRules", () => {
    const rule = { protocol: "tcp", port: "8443", sourceIps: ["198.51.100.7/32"], description: "why" };

    it("takes a port or a range, tcp or udp", () => {
      const rules = [rule, { ...rule, protocol: "udp", port: "60000-60100" }, { ...rule, port: "1" }, { ...rule, port: "65535" }];
      expect(checkH({ extraFirewallRules: JSON.stringify(rules) }).settings?.extraFirewallRules).toEqual(rules);
    });

    it("names each problem of a rule", () => {
      const bad = [{ ...rule, protocol: "icmp" }, { ...rule, port: 8443 }, { ...rule, port: "8443-" }, { ...rule, port: "123456" }, { ...rule, sourceIps: [] }, { ...rule, sourceIps: ["x"] }, { ...rule, sourceIps: "198.51.100.7/32" }, { ...rule, description: undefined }, null, { ...rule, sourceIps: ["198.51.100.7/32", "x"] }, { ...rule, sourceIps: [7] }];
      expect(problemsH({ extraFirewallRules: JSON.stringify(bad) })).toEqual([
        { key: "core:extraFirewallRules[0]", problem: "protocol: expected tcp or udp" },
        { key: "core:extraFirewallRules[1]", problem: 'port: expected a port or range as a string, such as "8443" or "60000-60100"' },
        { key: "core:extraFirewallRules[2]", problem: 'port: expected a port or range as a string, such as "8443" or "60000-60100"' },
        { key: "core:extraFirewallRules[3]", problem: 'port: expected a port or range as a string, such as "8443" or "60000-60100"' },
        { key: "core:extraFirewallRules[4]", problem: "sourceIps: expected a non-empty list of address ranges" },
        { key: "core:extraFirewallRules[5]", problem: "sourceIps: expected a non-empty list of address ranges" },
        { key: "core:extraFirewallRules[6]", problem: "sourceIps: expected a non-empty list of address ranges" },
        { key: "core:extraFirewallRules[7]", problem: "description: expected a short text saying why it is open" },
        { key: "core:extraFirewallRules[8]", problem: "protocol: expected tcp or udp" },
        { key: "core:extraFirewallRules[8]", problem: 'port: expected a port or range as a string, such as "8443" or "60000-60100"' },
        { key: "core:extraFirewallRules[8]", problem: "sourceIps: expected a non-empty list of address ranges" },
        { key: "core:extraFirewallRules[8]", problem: "description: expected a short text saying why it is open" },
        { key: "core:extraFirewallRules[9]", problem: "sourceIps: expected a non-empty list of address ranges" },
        { key: "core:extraFirewallRules[10]", problem: "sourceIps: expected a non-empty list of address ranges" },
      ]);
    });
  });

  it("dataRoot: an absolute path of safe characters", () => {
    expect(checkH({ dataRoot: "/srv/bifrost-data_1.x" }).settings?.dataRoot).toBe("/srv/bifrost-data_1.x");
    for (const bad of ["srv", "srv/bifrost", "/srv/a b", "/srv/$x", "/srv/a;b", "/srv/a\n"]) expect(problemsH({ dataRoot: bad })).toEqual(one("dataRoot", "expected an absolute path"));
  });

  it("dataStack: org/project/stack", () => {
    for (const ok of ["o/p/s", "my-org/core.x/hetzner_data"]) expect(problemsH({ dataStack: ok })).toEqual([]);
    for (const bad of ["p/s", "o/p/s/x", "o/p/", "o p/p/s", "/o/p/s"]) expect(problemsH({ dataStack: bad }), bad).toEqual(one("dataStack", "expected a fully qualified stack name, org/project/stack"));
  });

  it("networkSubnet: refused with what is expected", () => {
    expect(problemsH({ networkSubnet: "10.0.0.1/24" })).toEqual(
      one("networkSubnet", "expected an IPv4 network from /16 to /28 written as its first address, such as 172.30.0.0/24, that no other network of the server uses"),
    );
  });
});

describe("core:netbirdUsersGroup", () => {
  it("defaults to netbird-users and takes an Authentik group name", () => {
    expect(checkH({}).settings?.netbirdUsersGroup).toBe("netbird-users");
    for (const ok of ["mesh", "Mesh People", "a", "ops.team_1-x", "a".repeat(80)]) expect(problemsH({ netbirdUsersGroup: ok }), ok).toEqual([]);
  });

  it("refuses what would not survive !Env and Authentik's 80 characters, naming the rule", () => {
    for (const bad of ["a".repeat(81), " lead", "-lead", "quo'te", 'd"q', "semi;colon", "new\nline", "ü"]) {
      expect(problemsH({ netbirdUsersGroup: bad }), bad).toEqual(one("netbirdUsersGroup", "expected an Authentik group name: 1 to 80 letters, digits, spaces, '.', '_' or '-'"));
    }
  });
});

describe("core:databaseSubnet", () => {
  it("is refused with what is expected when it is not a network", () => {
    for (const bad of ["172.30.1.1/24", "172.30.1.0/29", "x"]) {
      expect(problemsH({ databaseSubnet: bad }), bad).toEqual(
        one("databaseSubnet", "expected an IPv4 network from /16 to /28 written as its first address, such as 172.30.1.0/24, that no other network of the server uses"),
      );
    }
  });

  it("must not share an address with core:networkSubnet; neighbours are fine", () => {
    const overlap = one("databaseSubnet", "overlaps core:networkSubnet: the two Compose networks need separate ranges");
    expect(problemsH({ networkSubnet: "172.30.0.0/16" })).toEqual(overlap);
    expect(problemsH({ networkSubnet: "172.30.1.0/24" })).toEqual(overlap);
    expect(problemsH({ networkSubnet: "172.30.1.240/28" })).toEqual(overlap);
    expect(problemsH({ networkSubnet: "172.30.0.0/24", databaseSubnet: "172.30.0.128/25" })).toEqual(overlap);
    expect(problemsH({ networkSubnet: "172.30.0.0/24", databaseSubnet: "172.30.1.0/24" })).toEqual([]);
    expect(problemsH({ networkSubnet: "172.30.2.0/24" })).toEqual([]);
    expect(problemsH({ networkSubnet: "172.30.0.240/28", databaseSubnet: "172.30.1.0/28" })).toEqual([]);
  });

  it("an invalid networkSubnet is reported once, by its own rule", () => {
    expect(problemsH({ networkSubnet: "172.30.1.5/24" }).map((p) => p.key)).toEqual(["core:networkSubnet"]);
  });
});

describe("traefikAddress", () => {
  it.each([
    ["172.30.0.0/24", "172.30.0.10"],
    ["10.20.0.0/16", "10.20.0.10"],
    ["192.168.7.16/28", "192.168.7.26"],
    ["255.255.255.0/24", "255.255.255.10"],
    ["1.2.3.0/24", "1.2.3.10"],
    ["10.0.250.0/24", "10.0.250.10"],
  ])("%s → %s", (subnet, address) => expect(traefikAddress(subnet)).toBe(address));

  it.each(["172.30.0.0/15", "172.30.0.0/29", "256.0.0.0/24", "172.30.0.1/24", "172.30.1.0/16", "172.30.0.0", "172.30.0/24", "x172.30.0.0/24", "172.30.0.0/24x", "1172.30.0.0/24", "172.30.0.0/024"])(
    "refuses %s",
    (subnet) => expect(traefikAddress(subnet)).toBeUndefined(),
  );
});

describe("vpsSettingsOf", () => {
  it("carries what the VPS files need, with Traefik's address and the volume's stable device path", () => {
    const s = checkH({ networkSubnet: "198.18.0.0/24", authentikGithubClientId: "Ov23likkkk", netbirdUserApproval: "false", netbirdAdminSources: JSON.stringify(["198.51.100.0/24"]), authentikAdminSources: JSON.stringify(["2001:db8:5::/48"]), publicServices: JSON.stringify([{ name: "g", upstream: "http://x" }]) }).settings!;
    expect(vpsSettingsOf(s, 4242)).toEqual({
      domain: "edge.example.test",
      acmeEmail: "ops@example.test",
      netbirdOwnerEmail: "owner@example.test",
      netbirdUserApproval: false,
      netbirdUsersGroup: "netbird-users",
      authentikGithubClientId: "Ov23likkkk",
      netbirdAdminSources: ["198.51.100.0/24"],
      authentikAdminSources: ["2001:db8:5::/48"],
      publicServices: [{ name: "g", upstream: "http://x" }],
      dataRoot: "/var/lib/bifrost",
      networkSubnet: "198.18.0.0/24",
      traefikAddress: "198.18.0.10",
      databaseSubnet: "172.30.1.0/24",
      volumeDevice: "/dev/disk/by-id/scsi-0HC_Volume_4242",
    });
  });
});

describe("checkGithubLogin", () => {
  it("needs both halves or neither, naming the one that is missing", () => {
    expect(checkGithubLogin("AUTHENTIK_GITHUB_SECRET", false, undefined)).toEqual([]);
    expect(checkGithubLogin("AUTHENTIK_GITHUB_SECRET", true, "Ov23likkkk")).toEqual([]);
    expect(checkGithubLogin("AUTHENTIK_GITHUB_SECRET", true, undefined)).toEqual([
      { key: "core:authentikGithubClientId", problem: "missing from the stack config while AUTHENTIK_GITHUB_SECRET is set: the GitHub login needs both, or neither" },
    ]);
    expect(checkGithubLogin("AUTHENTIK_GITHUB_SECRET", false, "Ov23likkkk")).toEqual([
      { key: "AUTHENTIK_GITHUB_SECRET", problem: "missing from secrets/bootstrap.sops.yaml while core:authentikGithubClientId is set: the GitHub login needs both, or neither" },
    ]);
  });

  it("refuses an organisation while the GitHub login is off, and takes it with the login on", () => {
    expect(checkGithubLogin("AUTHENTIK_GITHUB_SECRET", false, undefined, "homelab-people")).toEqual([
      { key: "core:authentikGithubOrg", problem: "set while the GitHub login is off: it needs core:authentikGithubClientId and AUTHENTIK_GITHUB_SECRET" },
    ]);
    expect(checkGithubLogin("AUTHENTIK_GITHUB_SECRET", true, "Ov23likkkk", "homelab-people")).toEqual([]);
  });
});

describe("hetzner-data settings", () => {
  const checkD = (over: Record<string, string | undefined> = {}) => checkHetznerDataSettings((k) => ({ location: "fsn1", volumeSizeGb: "10", ...over })[k]);

  it("takes the minimal config with its defaults", () => {
    expect(checkD()).toEqual({ settings: { name: "bifrost", location: "fsn1", volumeSizeGb: 10, allowDestroy: false }, problems: [] });
    expect(checkD({ allowDestroy: "true", volumeSizeGb: "10240", name: "edge" }).settings).toEqual({ name: "edge", location: "fsn1", volumeSizeGb: 10240, allowDestroy: true });
  });

  it("refuses each bad value, naming it", () => {
    expect(checkD({ location: undefined }).problems).toEqual(one("location", "missing from the stack config"));
    for (const bad of ["9", "10241", "10.5", "ten", "-10"]) expect(checkD({ volumeSizeGb: bad }).problems, bad).toEqual(one("volumeSizeGb", "expected a whole number of GB from 10 to 10240"));
    expect(checkD({ allowDestroy: "yes" }).problems).toEqual(one("allowDestroy", "expected true or false"));
    expect(checkD({ name: "Edge" }).problems).toEqual(one("name", "expected one DNS label (a-z, 0-9, -)"));
    expect(checkD({ name: "Edge", allowDestroy: "no" }).settings).toBeUndefined();
  });
});

describe("cluster settings", () => {
  const app = { app: "grafana", namespace: "monitoring", serviceAccount: "grafana", kvPath: "grafana", pattern: "A", keys: [{ name: "ADMIN_PASSWORD", length: 32, alphabet: "alphanumeric" }] };
  const cluster: Record<string, string> = { kubeContext: "homelab", openbaoAddr: "https://openbao.example.test", apps: JSON.stringify([app]) };
  const checkC = (over: Record<string, string | undefined> = {}) => checkClusterSettings((k) => ({ ...cluster, ...over })[k]);

  it("takes the minimal config with its defaults", () => {
    const r = checkC();
    expect(r.problems).toEqual([]);
    expect(r.settings).toMatchObject({
      kubeconfig: defaultKubeconfig,
      kubeContext: "homelab",
      openbaoAddr: "https://openbao.example.test",
      openbaoClusterAddr: "http://openbao.openbao.svc:8200",
      kubernetesHost: "https://kubernetes.default.svc",
      cloudflareSecretKey: "CLOUDFLARE_API_TOKEN",
    });
    expect(defaultKubeconfig).toBe("~/.kube/config");
    expect(r.settings?.apps).toHaveLength(1);
  });

  it("takes the kubeconfig it is given", () => {
    expect(checkC({ kubeconfig: "/etc/k3s.yaml" }).settings?.kubeconfig).toBe("/etc/k3s.yaml");
  });

  it("refuses addresses with a path, other schemes, and bad Secret keys", () => {
    const expected = "expected an http:// or https:// address without a path, such as https://openbao.example.net:8200";
    for (const ok of ["http://a:8200", "https://a/", "https://a.b.c", "https://192.0.2.1:8200", "https://[2001:db8::1]:8200", "http://[::1]"]) expect(checkC({ openbaoAddr: ok }).problems, ok).toEqual([]);
    for (const bad of ["https://a/v1", "ftp://a", "https://", "https://a b", " https://a", "https://a:x", "https://a:8200:1", "https://a:123456", "https://[a", "https://a]", "xhttps://a", "https://a/ "]) expect(checkC({ openbaoAddr: bad }).problems, bad).toEqual(one("openbaoAddr", expected));
    expect(checkC({ kubernetesHost: "kubernetes" }).problems).toEqual(one("kubernetesHost", expected));
    expect(checkC({ openbaoClusterAddr: "openbao:8200" }).problems).toEqual(one("openbaoClusterAddr", expected));
    for (const ok of ["K", "a.b-c_D", "k".repeat(253)]) expect(checkC({ cloudflareSecretKey: ok }).problems).toEqual([]);
    for (const bad of ["a b", "a/b", "k".repeat(254)]) expect(checkC({ cloudflareSecretKey: bad }).problems).toEqual(one("cloudflareSecretKey", "expected a Secret key (letters, digits, '-', '_', '.')"));
  });

  it("requires the context and at least one app, and names a bad row's problems by index", () => {
    expect(checkC({ kubeContext: undefined }).problems).toEqual(one("kubeContext", "missing from the stack config"));
    expect(checkC({ apps: "[]" }).problems).toEqual(one("apps", "expected at least one entry"));
    expect(checkC({ apps: undefined }).problems).toEqual(one("apps", "missing from the stack config"));
    const r = checkC({ apps: JSON.stringify([app, { ...app, app: "Bad" }]) });
    expect(r.settings).toBeUndefined();
    expect(r.problems).toEqual(one("apps[1]", "app: expected one DNS label (a-z, 0-9, -)"));
  });

  it("reports problems across rows (the same app twice) under core:apps", () => {
    const r = checkC({ apps: JSON.stringify([app, app]) });
    expect(r.problems.length).toBeGreaterThan(0);
    expect(r.problems.every((p) => p.key === "core:apps")).toBe(true);
  });
});
