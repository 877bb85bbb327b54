/**
 * Bad input: every malformed environment or config fails with one error that lists every
 * problem by key — never a value — and registers nothing.
 */
import { describe, expect, it } from "vitest";
import { githubSecretKey, sopsEntriesFor } from "../../components/secrets/catalog";
import { checkSecrets } from "../../components/secrets/env";
import { canaryEnv, canaryMarkers, leakedKeys } from "../helpers/canaries";
import { hetznerConfig, runProgram } from "../helpers/pulumiMocks";

const good: Record<string, string> = { ...canaryEnv("hetzner", "bad"), SSH_AUTH_SOCK: "/run/agent.sock" };
const markers = canaryMarkers("hetzner", "bad");
// What the program reads from SOPS; a generated secret is the stack's own and never checked.
const required = sopsEntriesFor("hetzner").filter((e) => e.requiredFor.includes("hetzner"));
const optional = sopsEntriesFor("hetzner").filter((e) => e.optional);

type Case = readonly [label: string, key: string, mutate: (v: string) => string | undefined, expected: RegExp];
const cases: Case[] = required.flatMap((e): Case[] => [
  ["missing", e.key, () => undefined, /missing/],
  ["empty", e.key, () => "", /empty/],
  ["wrong format", e.key, () => "x", /wrong format: (breaks .* \(expected |expected )/],
  ["newline-injected", e.key, (v) => `${v.slice(0, 8)}\nEVIL=1`, /newline/],
  ["carriage-return-injected", e.key, (v) => `${v}\r`, /newline/],
  ["NUL", e.key, (v) => `${v}\0`, /NUL/],
]);
// Optional secrets may be absent, but not malformed when present.
cases.push(...optional.map((e): Case => ["wrong format (optional)", e.key, () => "not-a-token", /wrong format/]));
cases.push(...optional.map((e): Case => ["newline-injected (optional)", e.key, (v) => `${v}\n`, /newline/]));

async function failing(env: Record<string, string | undefined>, config = hetznerConfig) {
  const run = await runProgram({ stack: "hetzner", config, env });
  expect(run.error, "the program should have refused").toBeDefined();
  expect(run.error?.name).toBe("ConfigError");
  expect(run.resources).toEqual([]);
  return run;
}

describe("bad input", () => {
  it(`has at least 20 malformed environments to try (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases)("%s %s → one clear error, nothing registered", async (_label, key, mutate, expected) => {
    const env: Record<string, string | undefined> = { ...good, [key]: mutate(good[key]) };
    const run = await failing(env);
    const message = run.error!.message;
    expect(message).toMatch(new RegExp(`- ${key}: .*${expected.source}`));
    expect(message).toContain("nothing was created or changed");
    expect(message.match(/^ {2}- /gm)).toHaveLength(1);
    expect(leakedKeys(message + run.printed, markers)).toEqual([]);
    expect(message).not.toContain("EVIL");
  });

  it("reports every problem at once, the environment's and the stack config's", async () => {
    const [a, b, c] = required;
    const env = { ...good, [a.key]: undefined, [b.key]: "", [c.key]: "short" };
    const config = { ...hetznerConfig, "core:domain": "Not A Domain", "core:operatorSshSources": JSON.stringify(["0.0.0.0"]) };
    delete (config as Record<string, string>)["core:acmeEmail"];
    const run = await failing(env, config);
    const listed = run.error!.message.match(/^ {2}- [^:]+(?::[^:\s]+)?/gm)?.map((l) => l.slice(4));
    expect(listed).toEqual([a.key, b.key, c.key, "core:domain", "core:acmeEmail", "core:operatorSshSources[0]"]);
    expect(run.error!.message).toMatch(/^hetzner stack: 6 problems, nothing was created or changed/);
  });

  it("refuses an unusable SSH setup: no key path and no agent", async () => {
    const run = await failing({ ...good, SSH_AUTH_SOCK: undefined });
    expect(run.error!.message).toMatch(/core:sshPrivateKeyPath: not set and no ssh-agent/);
  });

  it("refuses a key path that cannot be read, without echoing the path's content", async () => {
    const run = await failing(good, { ...hetznerConfig, "core:sshPrivateKeyPath": "/nonexistent/id_ed25519" });
    expect(run.error!.message).toMatch(/core:sshPrivateKeyPath: the file it names cannot be read/);
  });

  it("refuses a public service on a name the stack reserves, and bad config lists", async () => {
    const config = {
      ...hetznerConfig,
      "core:publicServices": JSON.stringify([{ name: "auth", upstream: "http://x:1" }, { name: "ok", upstream: "ftp://x" }]),
      "core:extraFirewallRules": "{not json",
    };
    const run = await failing(good, config);
    expect(run.error!.message).toContain("core:publicServices[0]: name: auth is reserved");
    expect(run.error!.message).toContain("core:publicServices[1]: upstream: expected an http:// or https:// URL");
    expect(run.error!.message).toContain("core:extraFirewallRules: is not a valid list or object");
  });

  it("refuses a domain outside the Cloudflare zone", async () => {
    const run = await failing(good, { ...hetznerConfig, "core:domain": "edge.elsewhere.test" });
    expect(run.error!.message).toContain("core:domain: must be the Cloudflare zone or a name inside it");
  });

  it("refuses an unknown stack kind by name, listing the known ones", async () => {
    const run = await runProgram({ stack: "hetzner", config: { ...hetznerConfig, "core:kind": "kubernetes" }, env: good });
    expect(run.error?.message).toMatch(/core:kind "kubernetes" names no stack program.*expected one of: hetzner, hetzner-data/);
    expect(run.resources).toEqual([]);
  });

  it("refuses an owner password NetBird's /api/setup would refuse (over 72 characters, bcrypt's limit)", async () => {
    const run = await failing({ ...good, NB_OWNER_PASSWORD: "x".repeat(73) });
    expect(run.error!.message).toMatch(/- NB_OWNER_PASSWORD: wrong format: breaks "12 to 72 characters" \(expected 12 to 72 /);
    expect(checkSecrets("hetzner", { ...good, NB_OWNER_PASSWORD: "x".repeat(72) }).problems).toEqual([]);
    expect(checkSecrets("hetzner", { ...good, NB_OWNER_PASSWORD: "x".repeat(11) }).problems).toHaveLength(1);
  });

  it("needs the NetBird owner's e-mail in the stack config", async () => {
    const config: Record<string, string> = { ...hetznerConfig };
    delete config["core:netbirdOwnerEmail"];
    expect((await failing(good, config)).error!.message).toContain("core:netbirdOwnerEmail: missing from the stack config");
    const bad = await failing(good, { ...hetznerConfig, "core:netbirdOwnerEmail": "not an address" });
    expect(bad.error!.message).toContain("core:netbirdOwnerEmail: expected an e-mail address");
  });

  it("the GitHub login needs both halves: a secret without a client id is a problem naming both keys", async () => {
    const config: Record<string, string> = { ...hetznerConfig };
    delete config["core:authentikGithubClientId"];
    const run = await failing(good, config);
    expect(run.error!.message).toMatch(new RegExp(`- core:authentikGithubClientId: missing .*${githubSecretKey} is set`));
    expect(run.error!.message.match(/^ {2}- /gm)).toHaveLength(1);
  });

  it("the GitHub login needs both halves: a client id without the secret is a problem naming both keys, listed with the others", async () => {
    const run = await failing({ ...good, [githubSecretKey]: undefined, NB_RELAY_SECRET: "short" });
    const message = run.error!.message;
    expect(message).toMatch(new RegExp(`- ${githubSecretKey}: missing .*core:authentikGithubClientId is set`));
    expect(message).toContain("- NB_RELAY_SECRET: wrong format");
    expect(message.match(/^ {2}- /gm)).toHaveLength(2);
  });

  it("neither half of the GitHub login is fine; a malformed client id is reported once, as itself", async () => {
    const config: Record<string, string> = { ...hetznerConfig };
    delete config["core:authentikGithubClientId"];
    const neither = await runProgram({ stack: "hetzner", config, env: { ...good, [githubSecretKey]: undefined } });
    expect(neither.error).toBeUndefined();
    const run = await failing(good, { ...hetznerConfig, "core:authentikGithubClientId": "bad id with spaces" });
    expect(run.error!.message).toContain("core:authentikGithubClientId: expected a GitHub OAuth client id");
    expect(run.error!.message.match(/^ {2}- /gm)).toHaveLength(1);
  });

  it("treats an empty optional secret as absent, and skips it", () => {
    const key = optional[0].key;
    const checked = checkSecrets("hetzner", { ...good, [key]: "" });
    expect(checked.problems).toEqual([]);
    expect(checked.values[key]).toBeUndefined();
  });
});
