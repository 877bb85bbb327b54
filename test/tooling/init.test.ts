/**
 * `just init` (scripts/init.sh, issue 18 item 1) from a fresh clone's state: no age key, the
 * placeholder recipient, no secrets file. Run end to end against the sops and age-keygen doubles
 * (test/sops-double/), non-interactively: the keys issued elsewhere come from the environment.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkSecrets } from "../../components/secrets/env";
import { projectRoot } from "../../components/stack/paths";
import { recipientsFor } from "../../scripts/lib/sopsFile";
import { canaryEnv } from "../helpers/canaries";
import { readSopsFile, scratchProject, sopsDoubleDir, writeSopsFile } from "../helpers/sopsDouble";
import { stackFixtures } from "../helpers/stackFixtures";

let root: string;
let project: string;
const issued = () => {
  const env = canaryEnv("hetzner", "init");
  return { HCLOUD_TOKEN: env.HCLOUD_TOKEN!, CLOUDFLARE_API_TOKEN: env.CLOUDFLARE_API_TOKEN! };
};
const keyFile = () => join(root, ".config", "sops", "age", "keys.txt");
const secretsFile = () => join(project, "secrets", "bootstrap.sops.yaml");

function init(env: Record<string, string> = issued(), args: string[] = []) {
  const run = spawnSync("bash", [join(project, "scripts", "init.sh"), ...args], {
    encoding: "utf8",
    input: "",
    env: { PATH: `${sopsDoubleDir}:${process.env.PATH}`, HOME: root, SOPS_DOUBLE_LOG: join(root, "calls.log"), ...env },
  });
  return { ...run, output: run.stdout + run.stderr };
}

const calls = () => (existsSync(join(root, "calls.log")) ? readFileSync(join(root, "calls.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]) : []);

/** Every regular file under `dir` that the test made (symlinks into the real project skipped). */
function ownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isSymbolicLink()) return [];
    return e.isDirectory() ? ownFiles(path) : [path];
  });
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "core-init-"));
  project = scratchProject(root);
  writeFileSync(join(project, "stacks", "Pulumi.hetzner.yaml"), readFileSync(join(stackFixtures, "Pulumi.hetzner.yaml"), "utf8"));
  writeFileSync(join(project, ".sops.yaml"), readFileSync(join(projectRoot, "test", "fixtures", "sops.yaml"), "utf8"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("just init on a fresh clone", () => {
  it("makes the age key and its folder, claims .sops.yaml, creates the encrypted file with every key, and shows no value", () => {
    const values = issued();
    const run = init(values);
    expect(run.status, run.output).toBe(0);
    // The age key, in a folder that did not exist (age-keygen makes none), 0600.
    expect(statSync(keyFile()).mode & 0o777).toBe(0o600);
    const recipient = /^# public key: (age1[0-9a-z]+)$/m.exec(readFileSync(keyFile(), "utf8"))![1];
    // Production's rule now names that key instead of the placeholder; the sandbox's is left alone.
    const sopsConfig = readFileSync(join(project, ".sops.yaml"), "utf8");
    expect(recipientsFor(sopsConfig, "secrets/bootstrap.sops.yaml")).toEqual([recipient]);
    expect(recipientsFor(sopsConfig, "secrets/sandbox.sops.yaml")[0]).toMatch(/^age1replacewithyouragepublickey/);
    // The file: encrypted for that key, created from a pipe in one `sops encrypt`, and
    // complete: the program's own check finds nothing missing (the local backend's passphrase
    // included, since no backend is configured).
    const file = readSopsFile(secretsFile());
    expect(file.recipients).toEqual([recipient]);
    expect(checkSecrets("hetzner", file.values).problems).toEqual([]);
    expect(file.values.PULUMI_CONFIG_PASSPHRASE).toBeDefined();
    expect(file.values.HCLOUD_TOKEN).toBe(values.HCLOUD_TOKEN);
    expect(calls().filter((c) => c[1] !== "--disable-version-check")).toEqual([["sops", "encrypt", "--filename-override", "secrets/bootstrap.sops.yaml"]]);
    // No value in the output, and none in clear in any file the run left.
    for (const value of Object.values(file.values)) {
      expect(run.output).not.toContain(value);
      for (const f of ownFiles(root)) if (f !== secretsFile()) expect(readFileSync(f, "utf8"), f).not.toContain(value);
    }
    // It ends with what is left to edit, by field.
    expect(run.stderr).toContain("stacks/Pulumi.hetzner.yaml: core:domain: an example name");
    expect(run.stderr).not.toContain("the placeholder recipient");
  });

  it("run again, changes nothing that exists", () => {
    expect(init().status).toBe(0);
    const before = { key: readFileSync(keyFile(), "utf8"), sops: readFileSync(join(project, ".sops.yaml"), "utf8"), file: readFileSync(secretsFile(), "utf8") };
    const callsBefore = calls().length;
    const again = init({});
    expect(again.status, again.output).toBe(0);
    expect(again.stderr).toContain("every key the stack needs has a value; nothing changed");
    expect({ key: readFileSync(keyFile(), "utf8"), sops: readFileSync(join(project, ".sops.yaml"), "utf8"), file: readFileSync(secretsFile(), "utf8") }).toEqual(before);
    expect(calls().slice(callsBefore)).toEqual([]);
  });

  it("completes an existing file: only the missing keys are added, the values there are kept", () => {
    expect(init().status).toBe(0);
    const made = readSopsFile(secretsFile());
    const { NB_RELAY_SECRET: _dropped, CLOUDFLARE_API_TOKEN: _asked, ...kept } = made.values;
    writeSopsFile(secretsFile(), kept, made.recipients);
    const cloudflare = issued().CLOUDFLARE_API_TOKEN.replace(/.$/, "Z");
    const run = init({ CLOUDFLARE_API_TOKEN: cloudflare });
    expect(run.status, run.output).toBe(0);
    const after = readSopsFile(secretsFile()).values;
    expect(after).toMatchObject(kept);
    expect(after.NB_RELAY_SECRET).toBeDefined();
    expect(after.NB_RELAY_SECRET).not.toBe(made.values.NB_RELAY_SECRET);
    expect(after.CLOUDFLARE_API_TOKEN).toBe(cloudflare);
  });

  it("without a terminal and without a required value, stops naming the key, and makes nothing", () => {
    const run = init({ HCLOUD_TOKEN: issued().HCLOUD_TOKEN });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("CLOUDFLARE_API_TOKEN is needed: set it in the environment for a non-interactive init, or run init in a terminal");
    expect(existsSync(keyFile())).toBe(false);
    expect(existsSync(secretsFile())).toBe(false);
    expect(readFileSync(join(project, ".sops.yaml"), "utf8")).toBe(readFileSync(join(projectRoot, "test", "fixtures", "sops.yaml"), "utf8"));
  });

  it("a value that breaks its rule is refused by name and rule, never shown, and nothing is made", () => {
    const run = init({ ...issued(), HCLOUD_TOKEN: "tooshortCANARY" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain("HCLOUD_TOKEN: wrong format: expected");
    expect(run.output).not.toContain("tooshortCANARY");
    expect(existsSync(keyFile())).toBe(false);
    expect(existsSync(secretsFile())).toBe(false);
  });

  it("in a terminal, asks with hidden input, refuses a value that breaks its rule and asks again", async () => {
    // util-linux `script` gives init a terminal. Each answer is typed only once its prompt is
    // shown, as a person would: by then `read -s` has turned the terminal's echo off.
    const values = issued();
    const answers = ["not-a-token", values.HCLOUD_TOKEN, values.CLOUDFLARE_API_TOKEN];
    const child = spawn("script", ["-qec", `bash ${join(project, "scripts", "init.sh")}`, "/dev/null"], {
      env: { PATH: `${sopsDoubleDir}:${process.env.PATH}`, HOME: root, TERM: "dumb" },
    });
    let transcript = "";
    let prompts = 0;
    const onOutput = (chunk: Buffer) => {
      transcript += chunk.toString();
      const seen = (transcript.match(/\(input hidden\): /g) ?? []).length;
      while (prompts < seen && prompts < answers.length) child.stdin.write(`${answers[prompts++]}\n`);
    };
    child.stdout.on("data", onOutput);
    child.stderr.on("data", onOutput);
    const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(status, transcript).toBe(0);
    expect(transcript.match(/\[init\] HCLOUD_TOKEN \(input hidden\): /g)).toHaveLength(2);
    expect(transcript).toContain("HCLOUD_TOKEN: wrong format: expected");
    expect(transcript).not.toContain(values.HCLOUD_TOKEN);
    expect(transcript).not.toContain(values.CLOUDFLARE_API_TOKEN);
    expect(transcript).not.toContain("not-a-token");
    expect(readSopsFile(secretsFile()).values).toMatchObject(values);
  });

  it("keeps an age key that exists, and takes its public key", () => {
    const existing = "age1lvyvwawkr0mcnnnncaghunadrqkmuf9e6507x9y920xxpp866cnql7dp2z";
    spawnSync("mkdir", ["-p", join(root, ".config", "sops", "age")]);
    writeFileSync(keyFile(), `# created: 2026-01-01T00:00:00Z\n# public key: ${existing}\nAGE-SECRET-KEY-1KEPT\n`, { mode: 0o600 });
    const run = init();
    expect(run.status, run.output).toBe(0);
    expect(run.stderr).toContain(`age key: kept ${keyFile()}`);
    expect(readSopsFile(secretsFile()).recipients).toEqual([existing]);
  });
});
