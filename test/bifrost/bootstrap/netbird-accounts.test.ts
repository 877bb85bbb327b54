/**
 * Every person who logs in to NetBird through Authentik joins the owner's account, held for
 * approval when core:netbirdUserApproval is on (issue 16, item 5). The NetBird double keeps
 * accounts and users in a real SQLite store.db under upstream's column names and follows
 * v0.77.1's login path (test/docker-double/netbirdAccounts.ts cites each function); a login is
 * a request with `Bearer sso:<user id>`, standing for the JWT Dex issues after Authentik.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Bifrost, canarySecrets } from "../../docker-double/harness";

describe("NetBird accounts after the bootstrap", () => {
  let b: Bifrost | undefined;
  afterEach(async () => {
    await b?.stop();
    b = undefined;
  });

  const call = async (method: string, path: string, authorization: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${b!.double.netbird.api.port}${path}`, {
      method,
      headers: { Authorization: authorization, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & Record<string, unknown>[] };
  };
  const owner = () => `Token ${b!.state().netbird?.pat}`;
  const login = (user: string) => call("GET", "/api/users/current", `Bearer sso:${user}`);
  const accountIds = () => b!.double.netbird.accounts().accounts().map((a) => a.id);

  it("without the repair (the owner's account as upstream's setup leaves it), each SSO user gets an account of their own", async () => {
    b = await new Bifrost({ secrets: canarySecrets() }).start();
    expect((await b.run()).code).toBe(0);
    const accounts = b.double.netbird.accounts();
    accounts.updateAccount(accounts.accounts()[0]!.id, { domain: "", domain_category: "", is_domain_primary_account: 0 });
    b.double.netbird.serverStarted();
    expect((await login("alice")).status).toBe(200);
    expect((await login("bob")).status).toBe(200);
    expect(accountIds()).toHaveLength(3);
    expect(accounts.user("alice")?.role).toBe("owner");
  });

  it("people join the owner's account, blocked until the owner approves them; a rerun changes nothing", async () => {
    b = await new Bifrost({ secrets: canarySecrets() }).start();
    const first = await b.run();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/step netbird-account: ok, people who log in join the owner's account, user approval on \(/);
    const [account] = b.double.netbird.accounts().accounts();
    expect(account).toMatchObject({ domain: "netbird.selfhosted", domain_category: "private", is_domain_primary_account: 1 });

    expect(await login("alice")).toEqual({ status: 403, body: { message: "user is blocked", code: 403 } });
    expect(await login("bob")).toMatchObject({ status: 403 });
    expect(accountIds()).toEqual([account!.id]);
    const people = (await call("GET", "/api/users", owner())).body;
    expect(people.map((u) => [u.id, u.role, u.pending_approval])).toEqual([
      [b.state().netbird?.user_id, "owner", false],
      ["alice", "user", true],
      ["bob", "user", true],
    ]);

    expect((await call("POST", "/api/users/alice/approve", owner())).status).toBe(200);
    // user.go ApproveUser: a user no longer pending is refused.
    expect(await call("POST", "/api/users/alice/approve", owner())).toEqual({ status: 422, body: { message: "user alice is not pending approval", code: 422 } });
    expect(await login("alice")).toMatchObject({ status: 200, body: { id: "alice", role: "user", status: "active" } });
    expect((await login("bob")).status).toBe(403);

    const calls = b.double.netbird.api.calls.length;
    const again = await b.run();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/step netbird-account: ok, user approval on \(/);
    expect(b.double.netbird.api.calls.slice(calls).filter((c) => !c.startsWith("GET "))).toEqual([]);
  }, 90_000);

  it("with core:netbirdUserApproval false, approval is turned off and people join active", async () => {
    b = await new Bifrost({ secrets: canarySecrets(), netbirdUserApproval: false }).start();
    const run = await b.run();
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/step netbird-account: ok, people who log in join the owner's account, user approval turned off \(/);
    expect(await login("alice")).toMatchObject({ status: 200, body: { role: "user", status: "active" } });
    expect(accountIds()).toHaveLength(1);
    // PUT rebuilt the settings from what was read: nothing else changed.
    expect(b.double.netbird.accounts().accounts()[0]).toMatchObject({ settings_peer_login_expiration_enabled: 1, settings_regular_users_view_blocked: 1, settings_groups_propagation_enabled: 1 });
  }, 90_000);

  it("an edge deployed before the repair keeps its owner's account and warns about the accounts earlier logins made", async () => {
    b = await new Bifrost({ secrets: canarySecrets() }).start();
    expect((await b.run()).code).toBe(0);
    // As an earlier bootstrap left it: the owner's account without a domain, and one person
    // who logged in then with an account of their own.
    const accounts = b.double.netbird.accounts();
    const [ownerAccount] = accounts.accounts();
    accounts.updateAccount(ownerAccount!.id, { domain: "", domain_category: "", is_domain_primary_account: 0 });
    expect((await login("carol")).status).toBe(200);
    expect(accountIds()).toHaveLength(2);
    b.double.netbird.serverStarted();

    const run = await b.run();
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("people who log in join the owner's account, warning: 1 other account(s) from earlier logins keep NetBird's single account mode off");
    expect(accounts.account(ownerAccount!.id)).toMatchObject({ domain: "netbird.selfhosted", is_domain_primary_account: 1 });
  }, 90_000);
});
