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
  }, 60_000);
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
  }, 60_000);
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
  }, 60_000);
});
