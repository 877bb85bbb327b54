/**
 * The tooling's pure helpers, called directly: which SOPS file a stack may read, and what
 * `just bundle-render` makes of secrets and stack config. Values are canaries.
 */
import { describe, expect, it } from "vitest";
import { entriesOnVps } from "../../components/secrets/catalog";
import { checkSecrets } from "../../components/secrets/env";
import { sopsFingerprint } from "../../components/secrets/fingerprint";
import { renderEnv, renderSecretsEnv } from "../../components/secrets/render";
import { redacted, redactedSecrets, renderedEnvFiles, settingsFromStackConfig } from "../../scripts/lib/bundleRender";
import { isSandboxStack, productionSecretsFile, secretsFileFor } from "../../scripts/lib/secretsFiles";
import { canaryEnv } from "../helpers/canaries";
import { minimalHetznerConfig } from "../helpers/stackSettings";

describe("secretsFileFor", () => {
  it("knows a sandbox by a whole sandbox word in the stack's name", () => {
    for (const s of ["sandbox", "hetzner-sandbox", "hetzner-sandbox-data", "sandbox-x"]) expect(isSandboxStack(s), s).toBe(true);
    for (const s of ["hetzner", "sandboxes", "mysandbox", "hetzner-sandboxdata", "xsandbox-data"]) expect(isSandboxStack(s), s).toBe(false);
  });

  it("gives a production stack the production file, configured or not", () => {
    expect(productionSecretsFile).toBe("secrets/bootstrap.sops.yaml");
    expect(secretsFileFor("hetzner", {})).toEqual({ file: productionSecretsFile });
    expect(secretsFileFor("hetzner", { "core:secretsFile": productionSecretsFile })).toEqual({ file: productionSecretsFile });
  });

  it("gives a sandbox its own file and never the production one", () => {
    expect(secretsFileFor("hetzner-sandbox", { "core:secretsFile": "secrets/sandbox.sops.yaml" })).toEqual({ file: "secrets/sandbox.sops.yaml" });
    const refusal = {
      problem: "stack hetzner-sandbox is a sandbox and must never read secrets/bootstrap.sops.yaml; set core:secretsFile to its own file (secrets/sandbox.sops.yaml)",
    };
    expect(secretsFileFor("hetzner-sandbox", {})).toEqual(refusal);
    expect(secretsFileFor("hetzner-sandbox", { "core:secretsFile": productionSecretsFile })).toEqual(refusal);
  });

  it("refuses a production stack another file", () => {
    expect(secretsFileFor("hetzner", { "core:secretsFile": "secrets/sandbox.sops.yaml" })).toEqual({
      problem: "stack hetzner is not a sandbox: it reads secrets/bootstrap.sops.yaml, not secrets/sandbox.sops.yaml (a sandbox stack has sandbox in its name)",
    });
  });

  it.each([7, ["secrets/sandbox.sops.yaml"], "secrets/x.yaml", "x/sandbox.sops.yaml", "secrets/Sandbox.sops.yaml", "secrets/-x.sops.yaml", "secrets/a/b.sops.yaml", " secrets/x.sops.yaml", "secrets/x.sops.yaml "])(
    "refuses a file name %j outside secrets/<name>.sops.yaml",
    (file) => {
      expect(secretsFileFor("hetzner-sandbox", { "core:secretsFile": file })).toEqual({ problem: "core:secretsFile of stack hetzner-sandbox must be secrets/<name>.sops.yaml" });
    },
  );
});

describe("bundle-render's helpers", () => {
  const values = checkSecrets("hetzner", canaryEnv("hetzner")).values;
  const config: Record<string, unknown> = {
    ...minimalHetznerConfig,
    // Structured config arrives as JSON values, not text.
    "core:operatorSshSources": ["198.51.100.7/32"],
    "core:authentikGithubClientId": "Ov23likkkk",
    "core:sshPrivateKeyPath": null,
  };

  it("redacts a secret as <redacted:NAME:fingerprint>", () => {
    expect(redacted("A", "f")).toBe("<redacted:A:f>");
  });

  it("redacts every VPS secret: a SOPS one by its trigger fingerprint, a generated one as such, an absent optional one not at all", () => {
    const { AUTHENTIK_GITHUB_SECRET: _absent, ...withoutOptional } = values;
    const out = redactedSecrets(withoutOptional);
    const expected = Object.fromEntries(
      entriesOnVps()
        .filter((e) => e.key !== "AUTHENTIK_GITHUB_SECRET")
        .map((e) => [e.key, e.source === "generated" ? "<redacted:" + e.key + ":generated-by-the-stack>" : `<redacted:${e.key}:${sopsFingerprint(values, e.key)}>`]),
    );
    expect(out).toEqual(expected);
    expect(Object.keys(out)).toEqual(Object.keys(expected));
  });

  it("reads structured config as Pulumi hands it over: strings as they are, lists as JSON, null as unset", () => {
    const r = settingsFromStackConfig(config, values);
    expect(r.problems).toEqual([]);
    expect(r.settings).toMatchObject({ domain: "edge.example.test", authentikGithubClientId: "Ov23likkkk", volumeDevice: "/dev/disk/by-id/scsi-0HC_Volume_<volumeId of organization/core/hetzner-data>" });
  });

  it("reports the stack's and the GitHub login's problems together, and no settings", () => {
    const { AUTHENTIK_GITHUB_SECRET: _absent, ...withoutSecret } = values;
    const r = settingsFromStackConfig({ ...config, "core:acmeEmail": "x" }, withoutSecret);
    expect(r.settings).toBeUndefined();
    expect(r.problems.map((p) => p.key)).toEqual(["core:acmeEmail", "AUTHENTIK_GITHUB_SECRET"]);
    expect(settingsFromStackConfig({ ...config, "core:authentikGithubClientId": "" }, values).problems.map((p) => p.key)).toEqual(["core:authentikGithubClientId"]);
    expect(settingsFromStackConfig(config, withoutSecret).settings).toBeUndefined();
  });

  it("takes a null setting as unset, not as the text null", () => {
    const r = settingsFromStackConfig({ ...config, "core:authentikGithubClientId": null }, values);
    expect(r.problems.map((p) => p.key)).toEqual(["core:authentikGithubClientId"]);
    expect(r.problems[0]!.problem).toContain("missing from the stack config while AUTHENTIK_GITHUB_SECRET is set");
  });

  it("renders both env files as the program does", () => {
    const settings = settingsFromStackConfig(config, values).settings!;
    const secrets = redactedSecrets(values);
    expect(renderedEnvFiles(settings, secrets)).toEqual({ ".env": renderEnv(settings, secrets), ".secrets.env": renderSecretsEnv(secrets) });
  });
});
