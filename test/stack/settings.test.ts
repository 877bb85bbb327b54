/**
 * core:networkSubnet: the Compose network's range, and Traefik's fixed address in it that
 * netbird-proxy trusts for PROXY protocol headers (NetBird's getting-started.sh: 172.30.0.0/24,
 * Traefik 172.30.0.10).
 */
import { describe, expect, it } from "vitest";
import { checkHetznerSettings, traefikAddress, vpsSettingsOf } from "../../components/stack/settings";
import { minimalHetznerConfig } from "../helpers/stackSettings";

const base = minimalHetznerConfig;
const check = (extra: Record<string, string> = {}) => checkHetznerSettings((k) => ({ ...base, ...extra })[`core:${k}`]);

describe("core:networkSubnet", () => {
  it("defaults to upstream's 172.30.0.0/24, with Traefik at .10", () => {
    const r = check();
    expect(r.problems).toEqual([]);
    expect(r.settings?.networkSubnet).toBe("172.30.0.0/24");
    expect(vpsSettingsOf(r.settings!, 1).traefikAddress).toBe("172.30.0.10");
  });

  it.each([
    ["198.18.0.0/24", "198.18.0.10"],
    ["10.20.0.0/16", "10.20.0.10"],
    ["192.168.7.16/28", "192.168.7.26"],
  ])("takes %s (Traefik at %s)", (subnet, address) => {
    expect(check({ "core:networkSubnet": subnet }).problems).toEqual([]);
    expect(traefikAddress(subnet)).toBe(address);
  });

  it.each(["172.30.0.1/24", "172.30.0.0/29", "172.30.0.0/15", "300.1.1.0/24", "172.30.0.0", "fd00::/64", " 172.30.0.0/24"])("refuses %j, naming the key and not the value", (subnet) => {
    const r = check({ "core:networkSubnet": subnet });
    expect(r.settings).toBeUndefined();
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0].key).toBe("core:networkSubnet");
    // The same text whatever the value: it never echoes what was given.
    expect(r.problems[0].problem).toBe(check({ "core:networkSubnet": "x" }).problems[0].problem);
    expect(r.problems[0].problem).toMatch(/an IPv4 network from \/16 to \/28/);
  });
});

describe("core:netbirdUserApproval", () => {
  it("defaults to on, and reaches .env as NB_USER_APPROVAL_REQUIRED", () => {
    const r = check();
    expect(r.settings?.netbirdUserApproval).toBe(true);
    expect(vpsSettingsOf(r.settings!, 1).netbirdUserApproval).toBe(true);
    expect(check({ "core:netbirdUserApproval": "false" }).settings?.netbirdUserApproval).toBe(false);
  });

  it.each(["yes", "False", "1", " true"])("refuses %j, naming the key and not the value", (value) => {
    const r = check({ "core:netbirdUserApproval": value });
    expect(r.settings).toBeUndefined();
    expect(r.problems).toEqual([{ key: "core:netbirdUserApproval", problem: "expected true or false" }]);
  });
});
