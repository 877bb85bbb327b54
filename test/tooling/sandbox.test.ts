/**
 * The sandbox edge (stacks/Pulumi.hetzner-sandbox.yaml and its data stack): its own SOPS file,
 * names, domain and firewall. The stack → file mapping (scripts/lib/secretsFiles.ts) is proven
 * for every stack file, a mismatch is refused before anything is decrypted, and the program
 * runs under the mocks with the sandbox's config.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { projectRoot } from "../../components/stack/paths";
import { isSandboxStack, productionSecretsFile, secretsFileFor } from "../../scripts/lib/secretsFiles";
import { recipientsFor } from "../../scripts/lib/sopsFile";
import { checkHetznerSettings } from "../../components/stack/settings";
import { canaryEnv, canaryMarkers, leakedKeys } from "../helpers/canaries";
import { byType, one, runProgram } from "../helpers/pulumiMocks";
import { ageKeyFile, newRecipient, scratchProject, sopsDoubleDir, writeSopsFile } from "../helpers/sopsDouble";
import { stackFixtures } from "../helpers/stackFixtures";

const stackConfig = (stack: string) => (parse(readFileSync(join(stackFixtures, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> }).config;
const stacks = readdirSync(stackFixtures)
  .filter((f) => /^Pulumi\..+\.yaml$/.test(f))
  .map((f) => f.slice("Pulumi.".length, -".yaml".length));

describe("stack → secrets file", () => {
  it("maps every stack file: production stacks to production's file, the sandbox's two to their own", () => {
    expect(stacks.sort()).toEqual(["cluster", "hetzner", "hetzner-data", "hetzner-sandbox", "hetzner-sandbox-data"]);
    expect(Object.fromEntries(stacks.map((s) => [s, secretsFileFor(s, stackConfig(s))]))).toEqual({
      cluster: { file: productionSecretsFile },
      hetzner: { file: productionSecretsFile },
      "hetzner-data": { file: productionSecretsFile },
      "hetzner-sandbox": { file: "secrets/sandbox.sops.yaml" },
      "hetzner-sandbox-data": { file: "secrets/sandbox.sops.yaml" },
    });
  });

  it.each([
    ["hetzner-sandbox", { "core:secretsFile": productionSecretsFile }, "stack hetzner-sandbox is a sandbox and must never read secrets/bootstrap.sops.yaml"],
    ["hetzner-sandbox", {}, "stack hetzner-sandbox is a sandbox and must never read secrets/bootstrap.sops.yaml"],
    ["hetzner", { "core:secretsFile": "secrets/sandbox.sops.yaml" }, "stack hetzner is not a sandbox: it reads secrets/bootstrap.sops.yaml, not secrets/sandbox.sops.yaml"],
    ["hetzner-sandbox", { "core:secretsFile": "../secrets/bootstrap.sops.yaml" }, "core:secretsFile of stack hetzner-sandbox must be secrets/<name>.sops.yaml"],
    ["hetzner-sandbox", { "core:secretsFile": "secrets/bootstrap.sops.yaml " }, "must be secrets/<name>.sops.yaml"],
  ])("refuses %s with %j", (stack, config, problem) => {
    const mapped = secretsFileFor(stack, config);
    expect("problem" in mapped && mapped.problem).toContain(problem);
  });

  it("a sandbox is decided by the stack's name, which its config cannot change", () => {
    expect(["hetzner-sandbox", "hetzner-sandbox-data", "sandbox"].every(isSandboxStack)).toBe(true);
    expect(["hetzner", "hetzner-data", "cluster", "sandboxed", "nosandbox"].some(isSandboxStack)).toBe(false);
  });

  it("the sandbox file has its own creation rule in .sops.yaml, ahead of production's", () => {
    const config = readFileSync(join(projectRoot, ".sops.yaml"), "utf8");
    const rules = (parse(config) as { creation_rules: { path_regex: string }[] }).creation_rules;
    expect(rules.findIndex((r) => new RegExp(r.path_regex).test("secrets/sandbox.sops.yaml"))).toBe(0);
    expect(rules.findIndex((r) => new RegExp(r.path_regex).test(productionSecretsFile))).toBe(1);
    expect(recipientsFor(config, "secrets/sandbox.sops.yaml")).toHaveLength(1);
  });
});

describe("the sandbox's own names, domain and firewall", () => {
  it("differs from production in every name that could collide, and passes the stack checks", () => {
    const sandbox = stackConfig("hetzner-sandbox");
    const production = stackConfig("hetzner");
    for (const key of ["core:name", "core:domain", "core:dataStack", "core:netbirdOwnerEmail"]) expect(sandbox[key], key).not.toEqual(production[key]);
    expect(stackConfig("hetzner-sandbox-data")["core:name"]).toBe(sandbox["core:name"]);
    expect(sandbox["core:dataStack"]).toBe("organization/core/hetzner-sandbox-data");
    const get = (k: string) => {
      const v = sandbox[`core:${k}`];
      return v === undefined ? undefined : typeof v === "string" ? v : JSON.stringify(v);
    };
    expect(checkHetznerSettings(get).problems).toEqual([]);
  });

  it("runs as a hetzner program under the mocks: its server, firewall and DNS carry its own names", async () => {
    const sandbox = stackConfig("hetzner-sandbox");
    const config = Object.fromEntries(Object.entries(sandbox).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
    const env: Record<string, string> = { ...canaryEnv("hetzner", "sandbox"), SSH_AUTH_SOCK: "/tmp/agent.sock" };
    delete env.AUTHENTIK_GITHUB_SECRET;
    const run = await runProgram({ stack: "hetzner-sandbox", config, env });
    expect(run.error).toBeUndefined();
    expect(one(run, "hcloud:index/server:Server").inputs.name).toBe("bifrost-sandbox");
    expect(one(run, "hcloud:index/firewall:Firewall").inputs.name).toBe("bifrost-sandbox");
    const records = byType(run, "cloudflare:index/dnsRecord:DnsRecord").map((r) => String(r.inputs.name));
    expect(records.length).toBeGreaterThan(0);
    for (const name of records) expect(name.endsWith("sandbox.example.net"), name).toBe(true);
    expect(leakedKeys(run.printed, canaryMarkers("hetzner", "sandbox"))).toEqual([]);
  });
});

describe("core.sh reads the sandbox's file only (sops double)", () => {
  let root: string;
  let project: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "core-sandbox-"));
    project = scratchProject(root);
    for (const stack of ["hetzner", "hetzner-sandbox"]) copyFileSync(join(stackFixtures, `Pulumi.${stack}.yaml`), join(project, "stacks", `Pulumi.${stack}.yaml`));
    const me = newRecipient();
    ageKeyFile(join(root, "age.key"), me);
    writeSopsFile(join(project, "secrets", "bootstrap.sops.yaml"), canaryEnv("hetzner", "production"), [me]);
    const sandboxEnv = canaryEnv("hetzner", "sandbox");
    delete sandboxEnv.AUTHENTIK_GITHUB_SECRET;
    writeSopsFile(join(project, "secrets", "sandbox.sops.yaml"), sandboxEnv, [me]);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const check = (stack: string) => {
    writeFileSync(join(root, "calls.log"), "");
    const run = spawnSync("bash", [join(project, "scripts", "core.sh"), stack, "check-secrets"], {
      encoding: "utf8",
      env: { PATH: `${sopsDoubleDir}:${process.env.PATH}`, HOME: root, SOPS_AGE_KEY_FILE: join(root, "age.key"), SOPS_DOUBLE_LOG: join(root, "calls.log") },
    });
    const calls = readFileSync(join(root, "calls.log"), "utf8").trim();
    return { ...run, output: run.stdout + run.stderr, calls: calls === "" ? [] : calls.split("\n").map((l) => JSON.parse(l) as string[]) };
  };

  it("secrets-check hetzner-sandbox decrypts secrets/sandbox.sops.yaml, and only that", () => {
    const run = check("hetzner-sandbox");
    expect(run.status, run.output).toBe(0);
    expect(run.calls.map((c) => c.slice(0, 3))).toEqual([["sops", "exec-env", "secrets/sandbox.sops.yaml"]]);
    expect(leakedKeys(run.output, { ...canaryMarkers("hetzner", "sandbox"), ...canaryMarkers("hetzner", "production") })).toEqual([]);
  });

  it("a sandbox stack pointed at production's file is refused before sops runs", () => {
    const file = join(project, "stacks", "Pulumi.hetzner-sandbox.yaml");
    const original = readFileSync(file, "utf8");
    const stack = parse(original);
    stack.config["core:secretsFile"] = productionSecretsFile;
    writeFileSync(file, stringify(stack));
    const run = check("hetzner-sandbox");
    writeFileSync(file, original);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("stack hetzner-sandbox is a sandbox and must never read secrets/bootstrap.sops.yaml");
    expect(run.stderr).toContain("[core] error: stack hetzner-sandbox: refused its secrets file");
    expect(run.calls).toEqual([]);
    expect(existsSync(join(project, "secrets", "bootstrap.sops.yaml"))).toBe(true);
  });
});
