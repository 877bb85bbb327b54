/** The renderers: deterministic files that Compose and the bootstrap both read back exactly. */
import { describe, expect, it } from "vitest";
import { entriesIn, entriesOnVps, entriesShipped } from "../../components/secrets/catalog";
import { generatedHeader, quoteEnvValue, renderEnv, renderSecretsEnv, type VpsSettings } from "../../components/secrets/render";
import { canaryValues } from "../helpers/canaries";
import { parseEnvFile } from "../docker-double/server";

/** Compose's reading of an env file (the docker double models compose-go's dotenv rules); no shell variables. */
const parseComposeEnvFile = (text: string) => parseEnvFile(text, () => undefined);

export const hostileValues = [
  "plain",
  "with space and trailing space ",
  " leading space",
  "dollar $HOME and ${HOME} and $$ and $",
  "hash # not a comment #",
  "single ' quote",
  'double " quote',
  "back\\slash and trailing backslash\\",
  '\\" backslash then quote',
  "\\n is not a newline, \\t not a tab, \\0123 not octal",
  "mixed $'\"\\# all at once",
  "`backticks` and $(command substitution) and !history",
  "=starts with equals",
  "ünïcödé ✓",
];

const settings: VpsSettings = {
  domain: "edge.example.test",
  acmeEmail: "ops@example.test",
  netbirdOwnerEmail: "owner@example.test",
  netbirdUserApproval: true,
  netbirdUsersGroup: "netbird-users",
  netbirdAdminSources: ["198.51.100.0/24"],
  authentikAdminSources: ["203.0.113.0/24"],
  publicServices: [
    { name: "grafana", upstream: "http://100.64.0.10:3000" },
    { name: "home", upstream: "https://100.64.0.11" },
  ],
  dataRoot: "/var/lib/bifrost",
  // The benchmarking range (RFC 2544), never a private or public network.
  networkSubnet: "198.18.0.0/24",
  traefikAddress: "198.18.0.10",
  databaseSubnet: "198.18.1.0/24",
  volumeDevice: "/dev/disk/by-id/scsi-0HC_Volume_4242",
};

describe("quoteEnvValue", () => {
  it.each(hostileValues)("Compose reads back %j exactly", (value) => {
    expect(parseComposeEnvFile(`X=${quoteEnvValue(value)}\n`).X).toBe(value);
  });

  it("refuses what one line cannot carry", () => {
    for (const bad of ["a\nb", "a\rb", "a\0b"]) expect(() => quoteEnvValue(bad)).toThrow(/newline, carriage return or NUL/);
  });

  it("the model is strict enough to catch a missing escape", () => {
    expect(parseComposeEnvFile('X="cost $HOME"\n').X).toBe("cost ");
    expect(parseComposeEnvFile('X="a\\\\b"\n').X).toBe("a\\b");
  });
});

describe("renderSecretsEnv and renderEnv", () => {
  // SOPS and generated values: the stack renders both.
  const secrets = canaryValues("hetzner", "render");
  const shippedIn = (file: ".env" | ".secrets.env") => entriesShipped((k) => secrets[k] !== undefined).filter((e) => e.where.includes(file));

  it("start with the generated-file header and list variables in catalog order", () => {
    const text = renderSecretsEnv(secrets);
    expect(text.startsWith(`${generatedHeader(".secrets.env")}\n`)).toBe(true);
    const names = text.split("\n").filter((l) => /^[A-Z]/.test(l)).map((l) => l.split("=")[0]);
    expect(names).toEqual(shippedIn(".secrets.env").map((e) => e.key));
  });

  it("are deterministic", () => {
    expect(renderSecretsEnv(secrets)).toBe(renderSecretsEnv({ ...secrets }));
    expect(renderEnv(settings, secrets)).toBe(renderEnv(settings, { ...secrets }));
  });

  it("leave out absent optional secrets", () => {
    const optional = entriesIn(".secrets.env").filter((e) => e.optional).map((e) => e.key);
    const without = { ...secrets };
    for (const k of optional) delete without[k];
    const parsed = parseComposeEnvFile(renderSecretsEnv(without));
    for (const k of optional) expect(parsed).not.toHaveProperty(k);
  });

  it("put each secret only in its own file, and the settings in .env", () => {
    const env = parseComposeEnvFile(renderEnv(settings, secrets));
    const secretsEnv = parseComposeEnvFile(renderSecretsEnv(secrets));
    for (const e of shippedIn(".env")) expect(env[e.key]).toBe(secrets[e.key]);
    for (const e of shippedIn(".secrets.env")) expect(secretsEnv[e.key]).toBe(secrets[e.key]);
    expect(Object.keys(secretsEnv).filter((k) => k in env)).toEqual([]);
    expect(env).toMatchObject({
      BIFROST_DOMAIN: settings.domain,
      ACME_EMAIL: settings.acmeEmail,
      NB_USER_APPROVAL_REQUIRED: "true",
      BIFROST_NETBIRD_USERS_GROUP: "netbird-users",
      BIFROST_PUBLIC_SERVICES: "grafana=http://100.64.0.10:3000 home=https://100.64.0.11",
      BIFROST_DATA: "/var/lib/bifrost",
      BIFROST_VOLUME_DEVICE: settings.volumeDevice,
    });
    expect(parseComposeEnvFile(renderEnv({ ...settings, netbirdUserApproval: false }, secrets)).NB_USER_APPROVAL_REQUIRED).toBe("false");
    expect(parseComposeEnvFile(renderEnv({ ...settings, netbirdAdminSources: [] }, secrets)).BIFROST_NETBIRD_ADMIN_SOURCES).toBe("");
    // CLOUDFLARE_DNS_TOKEN is among the secrets, so it stands in for CLOUDFLARE_API_TOKEN.
    expect(env.BIFROST_REQUIRED_SECRETS.split(" ").sort()).toEqual(
      [...entriesOnVps().filter((e) => e.requiredFor.includes("hetzner") && e.key !== "CLOUDFLARE_API_TOKEN").map((e) => e.key), "CLOUDFLARE_DNS_TOKEN"].sort(),
    );
  });

  it("send Traefik's narrower DNS token in place of the zone token when SOPS has one, and require it instead", () => {
    const required = (v: Record<string, string>) => parseComposeEnvFile(renderEnv(settings, v)).BIFROST_REQUIRED_SECRETS.split(" ");
    const withDns = parseComposeEnvFile(renderSecretsEnv(secrets));
    expect(withDns.CLOUDFLARE_DNS_TOKEN).toBe(secrets.CLOUDFLARE_DNS_TOKEN);
    expect(withDns).not.toHaveProperty("CLOUDFLARE_API_TOKEN");
    expect(renderSecretsEnv(secrets)).not.toContain(secrets.CLOUDFLARE_API_TOKEN);
    expect(required(secrets)).toContain("CLOUDFLARE_DNS_TOKEN");
    expect(required(secrets)).not.toContain("CLOUDFLARE_API_TOKEN");
    const { CLOUDFLARE_DNS_TOKEN: _dns, ...zoneOnly } = secrets;
    const without = parseComposeEnvFile(renderSecretsEnv(zoneOnly));
    expect(without.CLOUDFLARE_API_TOKEN).toBe(secrets.CLOUDFLARE_API_TOKEN);
    expect(without).not.toHaveProperty("CLOUDFLARE_DNS_TOKEN");
    expect(required(zoneOnly)).toContain("CLOUDFLARE_API_TOKEN");
    expect(required(zoneOnly)).not.toContain("CLOUDFLARE_DNS_TOKEN");
  });

  it("round-trip hostile values through Compose's parser in either file", () => {
    const values = Object.fromEntries(shippedIn(".secrets.env").map((e, i) => [e.key, hostileValues[i % hostileValues.length]]));
    expect(parseComposeEnvFile(renderSecretsEnv(values))).toMatchObject(values);
  });
});

describe("the rendered files' frame", () => {
  it("begin with the generated-do-not-edit header naming the file, one variable per line after it", () => {
    expect(generatedHeader(".env")).toBe(
      "# .env — generated by homelab core (Pulumi). Do not edit: the next `just core hetzner up`\n# overwrites it. Change the value in secrets/bootstrap.sops.yaml or the stack config instead.",
    );
    expect(generatedHeader(".secrets.env")).toContain("# .secrets.env — generated by homelab core (Pulumi).");
    const text = renderSecretsEnv({ NB_RELAY_SECRET: "kkkk" });
    expect(text).toBe(`${generatedHeader(".secrets.env")}\nNB_RELAY_SECRET="kkkk"\n`);
  });

  it("writes every setting into .env, the GitHub client id empty when unset", () => {
    expect(renderEnv(settings, {}).startsWith(`${generatedHeader(".env")}\nBIFROST_DOMAIN=`)).toBe(true);
    const env = parseComposeEnvFile(renderEnv(settings, {}));
    const { BIFROST_REQUIRED_SECRETS: _required, ...rest } = env;
    expect(rest).toEqual({
      BIFROST_DOMAIN: "edge.example.test",
      ACME_EMAIL: "ops@example.test",
      NB_OWNER_EMAIL: "owner@example.test",
      NB_USER_APPROVAL_REQUIRED: "true",
      BIFROST_NETBIRD_USERS_GROUP: "netbird-users",
      AUTHENTIK_GITHUB_CLIENT_ID: "",
      AUTHENTIK_GITHUB_ORG: "",
      BIFROST_NETBIRD_ADMIN_SOURCES: "198.51.100.0/24",
      BIFROST_AUTHENTIK_ADMIN_SOURCES: "203.0.113.0/24",
      BIFROST_PUBLIC_SERVICES: "grafana=http://100.64.0.10:3000 home=https://100.64.0.11",
      BIFROST_DATA: settings.dataRoot,
      BIFROST_NETWORK_SUBNET: settings.networkSubnet,
      BIFROST_TRAEFIK_ADDRESS: settings.traefikAddress,
      BIFROST_DATABASE_SUBNET: settings.databaseSubnet,
      BIFROST_VOLUME_DEVICE: settings.volumeDevice,
    });
    expect(parseComposeEnvFile(renderEnv({ ...settings, authentikGithubClientId: "Ov23likkkk" }, {})).AUTHENTIK_GITHUB_CLIENT_ID).toBe("Ov23likkkk");
    expect(parseComposeEnvFile(renderEnv({ ...settings, authentikGithubOrg: "homelab-people" }, {})).AUTHENTIK_GITHUB_ORG).toBe("homelab-people");
    expect(parseComposeEnvFile(renderEnv({ ...settings, publicServices: [] }, {})).BIFROST_PUBLIC_SERVICES).toBe("");
  });
});
