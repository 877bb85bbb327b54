/**
 * The API doubles answer in upstream's order, unkind answers included (each case cites the
 * upstream code it follows in test/docker-double/apis.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Bifrost, canarySecrets } from "../../docker-double/harness";

describe("NetBird double: POST /api/setup (netbird v0.77.1 instance_handler.go, setup_service.go, manager.go)", () => {
  let b: Bifrost;
  const setup = async (body: unknown) => {
    const res = await fetch(`http://127.0.0.1:${b.double.netbird.api.port}/api/setup`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const valid = { email: "owner@example.test", password: "long enough", name: "Owner", create_pat: true, pat_expire_in: 30 };

  beforeAll(async () => {
    b = await new Bifrost({ secrets: canarySecrets() }).start();
    expect((await b.run()).code).toBe(0);
  });
  afterAll(() => b.stop());

  it("once an owner exists, still validates before it refuses with 412", async () => {
    expect((await setup({ ...valid, password: "short" })).status).toBe(422);
    expect((await setup({ ...valid, email: "" })).body.message).toBe("email is required");
    expect((await setup({ ...valid, pat_expire_in: 366 })).body.message).toBe("pat_expire_in must be between 1 and 365");
    expect(await setup(valid)).toEqual({ status: 412, body: { message: "setup already completed", code: 412 } });
  });
});

describe("NetBird double: PUT /api/identity-providers/{id} of an unknown id (identity_provider.go UpdateIdentityProvider)", () => {
  it("answers 500, as Dex's UpdateConnector error becomes status.Internal, not 404", async () => {
    const b = await new Bifrost({ secrets: canarySecrets() }).start();
    try {
      expect((await b.run()).code).toBe(0);
      const pat = b.state().netbird?.pat;
      const res = await fetch(`http://127.0.0.1:${b.double.netbird.api.port}/api/identity-providers/unknown`, {
        method: "PUT",
        headers: { Authorization: `Token ${pat}`, "Content-Type": "application/json" },
        body: JSON.stringify({ type: "authentik", name: "Authentik", issuer: `https://auth.${b.settings.domain}/application/o/netbird/`, client_id: "netbird", client_secret: "x" }),
      });
      expect(res.status).toBe(500);
    } finally {
      await b.stop();
    }
  });
});

describe("NetBird double: POST /api/setup-keys (setupkeys_handler.go createSetupKey)", () => {
  it("requires a name, defaults auto_groups and expires_in, refuses a one-off key for several uses", async () => {
    const b = await new Bifrost({ secrets: canarySecrets() }).start();
    try {
      expect((await b.run()).code).toBe(0);
      const post = async (body: unknown) => {
        const res = await fetch(`http://127.0.0.1:${b.double.netbird.api.port}/api/setup-keys`, {
          method: "POST",
          headers: { Authorization: `Token ${b.state().netbird?.pat}`, "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      expect((await post({ type: "reusable" })).body.message).toBe("setup key name shouldn't be empty");
      expect((await post({ name: "k", type: "one-off", usage_limit: 2 })).status).toBe(422);
      expect((await post({ name: "k", type: "reusable", expires_in: -1 })).status).toBe(422);
      const ok = await post({ name: "k", type: "one-off" });
      expect(ok.status).toBe(200);
      expect(ok.body.auto_groups).toEqual([]);
    } finally {
      await b.stop();
    }
  });
});

describe("NetBird double: peers, groups, policies and setup keys (netbirdMesh.ts: server/peer.go, group.go, policy.go, setupkey.go)", () => {
  let b: Bifrost;
  const call = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${b.double.netbird.api.port}${route}`, {
      method,
      headers: { Authorization: `Token ${b.state().netbird?.pat}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const groupId = async (name: string) => ((await call("GET", "/api/groups")).body as unknown as { id: string; name: string }[]).find((g) => g.name === name)!.id;

  beforeAll(async () => {
    b = await new Bifrost({ secrets: canarySecrets() }).start();
    expect((await b.run()).code).toBe(0);
  });
  afterAll(() => b.stop());

  it("a one-off key enrols one peer; a second machine, an expired key and a revoked-by-deletion key are refused as upstream refuses them", async () => {
    const key = String((await call("POST", "/api/setup-keys", { name: "once", type: "one-off", expires_in: 86400 })).body.key);
    expect(b.double.netbird.login({ setupKey: key, publicKey: "pk-a", hostname: "a" }).status).toBe(200);
    // The same peer logs in again by its WireGuard key, with or without the key.
    expect(b.double.netbird.login({ setupKey: "", publicKey: "pk-a", hostname: "a" }).status).toBe(200);
    expect(b.double.netbird.login({ setupKey: key, publicKey: "pk-b", hostname: "b" })).toEqual({ status: 404, body: { message: "couldn't add peer: setup key is invalid", code: 5 } });
    const expiring = String((await call("POST", "/api/setup-keys", { name: "day", type: "reusable", expires_in: 86400 })).body.key);
    b.double.netbird.clockOffsetDays = 2;
    try {
      expect(b.double.netbird.login({ setupKey: expiring, publicKey: "pk-c", hostname: "c" }).status).toBe(404);
    } finally {
      b.double.netbird.clockOffsetDays = 0;
    }
    const gone = (await call("POST", "/api/setup-keys", { name: "gone", type: "reusable" })).body;
    expect((await call("DELETE", `/api/setup-keys/${String(gone.id)}`)).status).toBe(200);
    expect(b.double.netbird.login({ setupKey: String(gone.key), publicKey: "pk-d", hostname: "d" }).status).toBe(404);
    // After creation the API shows only the key's masked form.
    const listed = (await call("GET", "/api/setup-keys")).body as unknown as { key: string }[];
    expect(listed.every((k) => k.key.endsWith("****"))).toBe(true);
  });

  it("refuses All and unknown groups as a setup key's auto-groups, a second group of the same name, and a change to All", async () => {
    expect(await call("POST", "/api/setup-keys", { name: "k", type: "one-off", auto_groups: [await groupId("All")] })).toEqual({
      status: 422,
      body: { message: "can't add 'All' group to the setup key", code: 422 },
    });
    expect((await call("POST", "/api/setup-keys", { name: "k", type: "one-off", auto_groups: ["nosuchgroup"] })).status).toBe(404);
    expect((await call("POST", "/api/groups", { name: "homelab" })).status).toBe(409);
    expect((await call("PUT", `/api/groups/${await groupId("All")}`, { name: "All", peers: [] })).body.message).toBe("updating group ALL is not allowed");
  });

  it("checks a policy's rules in the handler's order and silently drops group ids that do not exist", async () => {
    const rule = { name: "r", enabled: true, action: "accept", bidirectional: false, protocol: "tcp", sources: [await groupId("homelab")], destinations: [await groupId("homelab")] };
    expect((await call("POST", "/api/policies", { name: "p", enabled: true, rules: [] })).body.message).toBe("policy rules shouldn't be empty");
    expect((await call("POST", "/api/policies", { name: "p", enabled: true, rules: [{ ...rule, protocol: "all", ports: ["22"] }] })).body.message).toBe("for ALL or ICMP protocol ports is not allowed");
    expect((await call("POST", "/api/policies", { name: "p", enabled: true, rules: [{ ...rule, ports: ["0"] }] })).body.message).toBe("valid port value is in 1..65535 range");
    expect((await call("POST", "/api/policies", { name: "p", enabled: true, rules: [{ ...rule, sources: [] }] })).status).toBe(422);
    const made = await call("POST", "/api/policies", { name: "p", enabled: true, rules: [{ ...rule, destinations: ["nosuchgroup", rule.destinations[0]] }] });
    expect(made.status).toBe(200);
    expect((made.body.rules as { destinations: { name: string }[] }[])[0].destinations.map((d) => d.name)).toEqual(["homelab"]);
    expect((await call("PUT", `/api/policies/${String(made.body.id)}`, { name: "p", enabled: true, rules: [{ ...rule, id: "other" }] })).body.message).toBe("invalid rule ID: other");
    expect((await call("DELETE", `/api/policies/${String(made.body.id)}`)).status).toBe(200);
  });
});
