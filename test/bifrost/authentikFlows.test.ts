/**
 * Who may start Authentik's source flows and which stages they meet, over what a fresh install
 * ships (Authentik's default blueprints, vendored) with this project's blueprint on top, as
 * Authentik's planner and policy engine decide it (test/docker-double/authentikFlows.ts cites
 * the upstream files). Issue 35: with upstream's `return ak_is_sso_flow` bound beside our gate
 * and the flow's engine mode left at `any`, the gate decided nothing.
 */
import { describe, expect, it } from "vitest";
import { loadFlow, planFlow, stagesMet } from "../docker-double/authentikFlows";

const env = {
  BIFROST_DOMAIN: "bifrost.example.test",
  NB_AUTHENTIK_CLIENT_SECRET: "flows-test-client-secret",
  AUTHENTIK_GITHUB_CLIENT_ID: "flows-test-github-client",
  AUTHENTIK_GITHUB_SECRET: "flows-test-github-secret",
  AUTHENTIK_GITHUB_ORG: "homelab-people",
};
const object = (attrs: Record<string, unknown>) => ({ __object__: attrs });
/** The plan context the source flow manager gives a flow it starts (core/sources/flow_manager.py; is_sso = PLAN_CONTEXT_SSO). */
const fromGitHub = (extra: Record<string, unknown> = {}) => ({
  is_sso: true,
  source: object({ slug: "github", provider_type: "github" }),
  "goauthentik.io/sources/connection": object({ access_token: "gho_user" }),
  oauth_userinfo: { login: "alice" },
  ...extra,
});
const member = { token: "gho_user", memberships: { "homelab-people": "active" } };
const outsider = { token: "gho_user", memberships: { "other-org": "active" } };

describe("Authentik's source flows as a fresh install has them, with our blueprint applied", () => {
  it("carries upstream's own bindings, loaded from its default blueprints", () => {
    expect(loadFlow("default-source-enrollment", env).policies.map((p) => p.policy)).toContain("default-source-enrollment-if-sso");
    expect(loadFlow("default-source-authentication", env).policies.map((p) => p.policy)).toContain("default-source-authentication-if-sso");
    // Without the GitHub login our blueprint leaves the flows as upstream ships them: mode any.
    expect(loadFlow("default-source-enrollment", {}).mode).toBe("any");
    expect(loadFlow("default-source-enrollment", env).mode).toBe("all");
  });

  it("opening the source enrollment flow directly is refused", () => {
    expect(planFlow("default-source-enrollment", env, {}).passing).toBe(false);
    expect(planFlow("default-source-authentication", env, {}).passing).toBe(false);
  });

  it("a GitHub user outside the organisation is refused at sign-up, and a former member at login", () => {
    const signup = planFlow("default-source-enrollment", env, fromGitHub(), outsider);
    expect(signup.passing).toBe(false);
    expect(signup.messages).toContain("Only members of the GitHub organisation homelab-people can sign in with GitHub here.");
    expect(planFlow("default-source-authentication", env, fromGitHub(), outsider).passing).toBe(false);
  });

  it("an active member of the organisation signs up and logs in through GitHub", () => {
    expect(planFlow("default-source-enrollment", env, fromGitHub(), member).passing).toBe(true);
    expect(planFlow("default-source-authentication", env, fromGitHub(), member).passing).toBe(true);
  });

  it("a flow another source started is refused: the gate is for GitHub", () => {
    const ldap = fromGitHub({ source: object({ slug: "ldap", provider_type: "ldap" }) });
    expect(planFlow("default-source-enrollment", env, ldap, member).passing).toBe(false);
  });

  it("a superuser coming through the GitHub source meets the second factor before the login; others do not", () => {
    const admin = fromGitHub({ pending_user: object({ username: "akadmin", is_superuser: true }) });
    expect(stagesMet("default-source-authentication", env, admin, member)).toEqual(["homelab-core-admin-mfa", "default-source-authentication-login"]);
    const person = fromGitHub({ pending_user: object({ username: "alice", is_superuser: false }) });
    expect(stagesMet("default-source-authentication", env, person, member)).toEqual(["default-source-authentication-login"]);
  });

  it("an error in the administrators policy still runs the second factor: the binding fails closed", () => {
    // A user object without is_superuser makes the expression raise (AttributeError).
    const broken = fromGitHub({ pending_user: object({ username: "akadmin" }) });
    expect(stagesMet("default-source-authentication", env, broken, member)).toContain("homelab-core-admin-mfa");
    expect(stagesMet("default-authentication-flow", env, { pending_user: object({ username: "akadmin" }) })).toContain("homelab-core-admin-mfa");
  });
});
