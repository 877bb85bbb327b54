/**
 * `just secrets new|rotate|recipients` (scripts/secrets.sh) end to end against the sops double
 * (test/sops-double/sops): values go from the catalog's generator through a pipe into
 * `sops set --value-stdin`, recipients through `.sops.yaml` and `sops updatekeys`. No value
 * may appear in any output, in a logged command line, or in any file in clear.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { entry } from "../../components/secrets/catalog";
import { projectRoot } from "../../components/stack/paths";
import { ageKeyFile, newRecipient, readSopsFile, scratchProject, sopsDoubleDir, writeSopsFile } from "../helpers/sopsDouble";
import { stackFixtures } from "../helpers/stackFixtures";

let root: string;
let project: string;
let me: string;
const sopsFile = () => join(project, "secrets", "bootstrap.sops.yaml");
const calls = (): string[][] =>
  existsSync(join(root, "calls.log")) ? readFileSync(join(root, "calls.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]) : [];
const existing = { HCLOUD_TOKEN: "CANARYhcloudtokenexisting".padEnd(64, "Z"), NB_RELAY_SECRET: "", AUTHENTIK_SECRET_KEY: "CANARYauthentiksecretkey".padEnd(60, "x"), NB_DATA_STORE_KEY: `${"CANARYdatastore".padEnd(42, "A")}A=` };

/** Every regular file under root (the scratch project's own files and the test's), not the linked project code. */
function ownFiles(dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isSymbolicLink()) return [];
    return e.isDirectory() ? ownFiles(path) : [path];
  });
}

function secrets(args: string[], input = "", env: Record<string, string> = {}) {
  const run = spawnSync("bash", [join(project, "scripts", "secrets.sh"), ...args], {
    encoding: "utf8",
    input,
    env: { PATH: `${sopsDoubleDir}:${process.env.PATH}`, HOME: root, SOPS_AGE_KEY_FILE: join(root, "age.key"), SOPS_DOUBLE_LOG: join(root, "calls.log"), ...env },
  });
  return { ...run, output: run.stdout + run.stderr };
}

/** The value is nowhere but (encoded) in the SOPS file: not in the output, the logged argv or any file in clear. */
function expectNowhere(value: string, output: string) {
  expect(value.length).toBeGreaterThan(20);
  expect(output).not.toContain(value);
  for (const f of ownFiles()) expect(readFileSync(f, "utf8"), f).not.toContain(value);
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "core-secrets-"));
  project = scratchProject(root);
  me = newRecipient();
  ageKeyFile(join(root, "age.key"), me);
  writeFileSync(join(project, ".sops.yaml"), readFileSync(join(projectRoot, ".sops.yaml"), "utf8").replace(/age1\S+/g, me));
  writeSopsFile(sopsFile(), existing, [me]);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("just secrets new", () => {
  it("stores a value made by the catalog's generator, through stdin, and shows it nowhere", () => {
    const run = secrets(["new", "NB_RELAY_SECRET"]);
    expect(run.status, run.output).toBe(0);
    const { values } = readSopsFile(sopsFile());
    expect(entry("NB_RELAY_SECRET").format!.test(values.NB_RELAY_SECRET)).toBe(true);
    expect(values).toEqual({ ...existing, NB_RELAY_SECRET: values.NB_RELAY_SECRET });
    expect(calls()).toEqual([
      ["sops", "--disable-version-check", "--version"],
      ["sops", "set", "--value-stdin", "secrets/bootstrap.sops.yaml", '["NB_RELAY_SECRET"]'],
    ]);
    expectNowhere(values.NB_RELAY_SECRET, run.output);
    const steps = run.stderr.split("\n").filter((l) => / in \d+s$/.test(l));
    expect(steps).toHaveLength(3);
    for (const l of steps) expect(l).toMatch(/^\[secrets\] .+: ok in \d+s$/);
  });

  it.each([
    [["new", "AUTHENTIK_SECRET_KEY"], "AUTHENTIK_SECRET_KEY already has a value in secrets/bootstrap.sops.yaml; replace it with: just secrets rotate AUTHENTIK_SECRET_KEY"],
    [["new", "CLOUDFLARE_API_TOKEN"], "CLOUDFLARE_API_TOKEN cannot be generated here; obtain it from Cloudflare dashboard"],
    [["new", "NB_RELAY_SECRTE"], "NB_RELAY_SECRTE is not in the secret catalog (components/secrets/catalog.ts); did you mean NB_RELAY_SECRET?"],
    [["new", "PROXMOX_PASSWORD"], "PROXMOX_PASSWORD is used elsewhere"],
    [["rotate", "NB_DATA_STORE_KEY"], "NB_DATA_STORE_KEY is never rotated: NetBird's database is encrypted with it"],
    [["rotate", "NB_RELAY_SECRET"], "NB_RELAY_SECRET has no value in secrets/bootstrap.sops.yaml yet; make one with: just secrets new NB_RELAY_SECRET"],
    [["new", "nb relay"], "'nb relay' is not a secret key name"],
    [["new"], "usage: just secrets new KEY"],
  ])("refuses %j, naming the key and the reason, touching nothing", (args, reason) => {
    const before = readFileSync(sopsFile(), "utf8");
    const run = secrets(args);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(reason);
    expect(readFileSync(sopsFile(), "utf8")).toBe(before);
    expect(calls().filter((c) => c[1] === "set")).toEqual([]);
  });

  it("refuses a sops without --value-stdin, a missing age key and a missing file, before any value exists", () => {
    expect(secrets(["new", "NB_RELAY_SECRET"], "", { SOPS_DOUBLE_VERSION: "3.10.2" }).stderr).toContain("sops 3.10 cannot read a value from stdin; install sops 3.11 or newer");
    expect(secrets(["new", "NB_RELAY_SECRET"], "", { SOPS_AGE_KEY_FILE: join(root, "missing") }).stderr).toContain(`age key not readable at SOPS_AGE_KEY_FILE=${join(root, "missing")}`);
    rmSync(sopsFile());
    expect(secrets(["new", "NB_RELAY_SECRET"]).stderr).toContain("secrets/bootstrap.sops.yaml missing: create it first");
    expect(calls().filter((c) => c[1] === "set")).toEqual([]);
  });

  it("fails when sops cannot write, leaving the file as it was", () => {
    const before = readFileSync(sopsFile(), "utf8");
    const run = secrets(["new", "NB_RELAY_SECRET"], "", { SOPS_DOUBLE_FAIL: "set" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/generate NB_RELAY_SECRET into secrets\/bootstrap\.sops\.yaml: failed \(exit 1\)/);
    expect(readFileSync(sopsFile(), "utf8")).toBe(before);
    // No success before sops succeeded, and no stack trace (issue 18, item 4).
    expect(run.output).not.toContain("done:");
    expect(run.output).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  });
});

describe("just secrets recipients list without sops (issue 18, item 4)", () => {
  it("reads .sops.yaml alone: no sops on PATH, no call to it", () => {
    const bin = join(root, "bin-without-sops");
    mkdirSync(bin);
    for (const tool of ["node", "bash", "dirname", "cat", "env"]) {
      const found = spawnSync("bash", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
      if (found) symlinkSync(found, join(bin, tool));
    }
    const run = spawnSync("bash", [join(project, "scripts", "secrets.sh"), "recipients", "list"], { encoding: "utf8", env: { PATH: bin, HOME: root } });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe(`${me}\n`);
    expect(existsSync(join(root, "calls.log"))).toBe(false);
    const add = spawnSync("bash", [join(project, "scripts", "secrets.sh"), "recipients", "add", newRecipient()], { encoding: "utf8", env: { PATH: bin, HOME: root } });
    expect(add.stderr).toContain("not installed: sops");
  });
});

describe("just secrets rotate", () => {
  it("replaces a `yes` key's value without asking and says which containers the next up recreates", () => {
    writeSopsFile(sopsFile(), { ...existing, NB_RELAY_SECRET: "CANARYoldrelaysecretvalue".padEnd(42, "A") + "A=" }, [me]);
    const run = secrets(["rotate", "NB_RELAY_SECRET"]);
    expect(run.status, run.output).toBe(0);
    expect(run.stderr).toContain("the next just core hetzner up recreates: netbird-server");
    expect(run.stderr).toContain("what users notice: all peers reconnect");
    const value = readSopsFile(sopsFile()).values.NB_RELAY_SECRET;
    expect(value).not.toContain("CANARYoldrelay");
    expectNowhere(value, run.output);
  });

  it("asks before a `with care` key, and rotates only on yes", () => {
    const refused = secrets(["rotate", "AUTHENTIK_SECRET_KEY"], "no\n");
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain("what users notice: sessions end");
    expect(refused.stderr).toContain("the next just core hetzner up recreates: authentik-server, authentik-worker");
    expect(refused.stderr).toContain("AUTHENTIK_SECRET_KEY not rotated: not confirmed");
    expect(readSopsFile(sopsFile()).values.AUTHENTIK_SECRET_KEY).toBe(existing.AUTHENTIK_SECRET_KEY);
    expect(secrets(["rotate", "AUTHENTIK_SECRET_KEY"]).stderr).toContain("not confirmed");

    const run = secrets(["rotate", "AUTHENTIK_SECRET_KEY"], "yes\n");
    expect(run.status, run.output).toBe(0);
    const value = readSopsFile(sopsFile()).values.AUTHENTIK_SECRET_KEY;
    expect(value).not.toBe(existing.AUTHENTIK_SECRET_KEY);
    expect(entry("AUTHENTIK_SECRET_KEY").format!.test(value)).toBe(true);
    expectNowhere(value, run.output);
    for (const old of Object.values(existing).filter((v) => v !== "")) expect(run.output).not.toContain(old);
  });
});

describe("a sandbox stack's own file", () => {
  it("new, rotate and recipients act on the file the stack maps to, never production's", () => {
    const sandbox = join(project, "secrets", "sandbox.sops.yaml");
    const sandboxOperator = newRecipient();
    for (const stack of ["hetzner", "hetzner-sandbox"]) writeFileSync(join(project, "stacks", `Pulumi.${stack}.yaml`), readFileSync(join(stackFixtures, `Pulumi.${stack}.yaml`)));
    writeFileSync(join(project, ".sops.yaml"), readFileSync(join(projectRoot, ".sops.yaml"), "utf8").replace(/age1\S+/, sandboxOperator).replace(/age1replace\S+/, me));
    writeSopsFile(sandbox, { NB_RELAY_SECRET: "" }, [sandboxOperator]);
    ageKeyFile(join(root, "age.key"), sandboxOperator);
    const production = readFileSync(sopsFile(), "utf8");

    const made = secrets(["new", "NB_RELAY_SECRET", "hetzner-sandbox"]);
    expect(made.status, made.output).toBe(0);
    expect(made.stderr).toContain("[secrets] stack hetzner-sandbox: secrets/sandbox.sops.yaml");
    expect(entry("NB_RELAY_SECRET").format!.test(readSopsFile(sandbox).values.NB_RELAY_SECRET)).toBe(true);
    expect(secrets(["recipients", "list", "hetzner-sandbox"]).stdout).toBe(`${sandboxOperator}\n`);
    const other = newRecipient();
    expect(secrets(["recipients", "add", other, "hetzner-sandbox"]).status).toBe(0);
    expect(readSopsFile(sandbox).recipients).toEqual([sandboxOperator, other]);
    expect(readFileSync(sopsFile(), "utf8")).toBe(production);
    expect(calls().every((c) => !c.includes("secrets/bootstrap.sops.yaml"))).toBe(true);
    expect(secrets(["new", "NB_RELAY_SECRET", "staging"]).stderr).toContain("no stack config stacks/Pulumi.staging.yaml");
  });
});

describe("just secrets recipients", () => {
  it("lists, adds (re-encrypting the data key) and removes age recipients", () => {
    expect(secrets(["recipients", "list"]).stdout).toBe(`${me}\n`);
    const other = newRecipient();
    const add = secrets(["recipients", "add", other]);
    expect(add.status, add.output).toBe(0);
    expect(readSopsFile(sopsFile()).recipients).toEqual([me, other]);
    expect(secrets(["recipients", "list"]).stdout).toBe(`${me}\n${other}\n`);
    expect(calls().filter((c) => c[1] === "updatekeys")).toEqual([["sops", "updatekeys", "--yes", "secrets/bootstrap.sops.yaml"]]);
    expect(add.stderr).toMatch(/\[secrets\] re-encrypt the data key of secrets\/bootstrap\.sops\.yaml \(sops updatekeys\): ok in \d+s/);

    const remove = secrets(["recipients", "remove", other]);
    expect(remove.status, remove.output).toBe(0);
    expect(readSopsFile(sopsFile()).recipients).toEqual([me]);
    expect(readSopsFile(sopsFile()).values).toEqual(existing);
  });

  it.each([
    [["recipients", "add", "age1notakey"], "age1notakey is not an age public key"],
    [["recipients", "remove", "ME"], "is the last recipient of secrets/bootstrap.sops.yaml; add another one first"],
    [["recipients", "remove", "OTHER"], "is not a recipient of secrets/bootstrap.sops.yaml"],
    [["recipients", "add", "ME"], "is already a recipient of secrets/bootstrap.sops.yaml"],
    [["recipients", "add"], "usage: just secrets"],
  ])("refuses %j and changes neither file", (args, reason) => {
    const resolved = args.map((a) => (a === "ME" ? me : a === "OTHER" ? newRecipient() : a));
    const config = readFileSync(join(project, ".sops.yaml"), "utf8");
    const file = readFileSync(sopsFile(), "utf8");
    const run = secrets(resolved);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(reason);
    expect(readFileSync(join(project, ".sops.yaml"), "utf8")).toBe(config);
    expect(readFileSync(sopsFile(), "utf8")).toBe(file);
  });

  it("puts .sops.yaml back when sops updatekeys fails, so it never disagrees with the file", () => {
    const config = readFileSync(join(project, ".sops.yaml"), "utf8");
    const run = secrets(["recipients", "add", newRecipient()], "", { SOPS_DOUBLE_FAIL: "updatekeys" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("sops updatekeys failed; .sops.yaml restored, secrets/bootstrap.sops.yaml unchanged");
    expect(readFileSync(join(project, ".sops.yaml"), "utf8")).toBe(config);
    expect(readSopsFile(sopsFile()).recipients).toEqual([me]);
  });

  it("cannot re-encrypt for others without being a recipient itself (sops needs the data key)", () => {
    ageKeyFile(join(root, "age.key"), newRecipient());
    const run = secrets(["recipients", "add", newRecipient()]);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("Failed to get the data key required to decrypt the SOPS file.");
    expect(statSync(sopsFile()).size).toBeGreaterThan(0);
    expect(readSopsFile(sopsFile()).recipients).toEqual([me]);
  });
});
