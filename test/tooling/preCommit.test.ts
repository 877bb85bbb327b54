/**
 * The pre-commit guard (.githooks/pre-commit, issue 18 item 3): a secrets file typed in
 * plaintext, or decrypted in place, cannot be committed by accident; an encrypted one can. Run
 * by a real git in a scratch repository, through `core.hooksPath` as `just hooks` sets it.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { projectRoot } from "../../components/stack/paths";
import { newRecipient, writeSopsFile } from "../helpers/sopsDouble";

describe("the pre-commit guard against committing secrets", () => {
  let repo: string;
  const git = (...args: string[]) => spawnSync("git", args, { cwd: repo, encoding: "utf8", env: { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" } });
  const canary = "canaryHCLOUDTOKEN0123456789abcdef0123456789abcdef0123456789abcdef";

  beforeEach(() => {
    repo = mkdtempSync(join(tmpdir(), "precommit-"));
    git("init", "--quiet", "--initial-branch=main");
    git("config", "user.email", "operator@example.test");
    git("config", "user.name", "Operator");
    mkdirSync(join(repo, ".githooks"));
    copyFileSync(join(projectRoot, ".githooks", "pre-commit"), join(repo, ".githooks", "pre-commit"));
    copyFileSync(join(projectRoot, ".gitignore"), join(repo, ".gitignore"));
    git("config", "core.hooksPath", ".githooks");
    mkdirSync(join(repo, "secrets"));
  });
  afterEach(() => rmSync(repo, { recursive: true, force: true }));

  it("refuses a plaintext secrets file, naming it and never printing its contents", () => {
    writeFileSync(join(repo, "secrets", "bootstrap.sops.yaml"), `HCLOUD_TOKEN: ${canary}\n`);
    git("add", "-A");
    const commit = git("commit", "-m", "secrets");
    expect(commit.status).not.toBe(0);
    expect(commit.stderr).toContain("secrets/bootstrap.sops.yaml: no sops metadata, so not encrypted (encrypt it first: sops --encrypt --in-place secrets/bootstrap.sops.yaml)");
    expect(commit.stdout + commit.stderr).not.toContain(canary);
    expect(git("rev-parse", "--verify", "HEAD").status).not.toBe(0);
  });

  it("lets an encrypted secrets file through", () => {
    writeSopsFile(join(repo, "secrets", "bootstrap.sops.yaml"), { HCLOUD_TOKEN: canary }, [newRecipient()]);
    git("add", "-A");
    const commit = git("commit", "-m", "secrets");
    expect(commit.status, commit.stderr).toBe(0);
  });

  it("refuses a value typed in beside the encrypted ones, naming its key and not its value (issue 31)", () => {
    writeSopsFile(join(repo, "secrets", "bootstrap.sops.yaml"), { HCLOUD_TOKEN: canary, CLOUDFLARE_API_TOKEN: "" }, [newRecipient()]);
    const file = join(repo, "secrets", "bootstrap.sops.yaml");
    writeFileSync(file, `NB_RELAY_SECRET: ${canary}\n# a note ${canary}\n${readFileSync(file, "utf8")}`);
    git("add", "-A");
    const commit = git("commit", "-m", "secrets");
    expect(commit.status).not.toBe(0);
    expect(commit.stderr).toContain("secrets/bootstrap.sops.yaml: plaintext beside the encrypted values, in: NB_RELAY_SECRET line 2 (set values with 'npx just secrets-edit', which encrypts them)");
    expect(commit.stdout + commit.stderr).not.toContain(canary);
  });

  it("lets .sops.yaml, the creation rules init writes, through: only files under secrets/ are secrets files (issue 31)", () => {
    writeFileSync(join(repo, ".sops.yaml"), "creation_rules:\n  - path_regex: ^secrets/[^/]+\\.sops\\.yaml$\n    age: age1example\n");
    writeFileSync(join(repo, "notes.sops.yaml"), "not: secret\n");
    git("add", "-A");
    const commit = git("commit", "-m", "recipients");
    expect(commit.status, commit.stderr).toBe(0);
  });

  it("with --tracked checks every tracked file, as .ci/run runs it", () => {
    writeSopsFile(join(repo, "secrets", "bootstrap.sops.yaml"), { HCLOUD_TOKEN: canary }, [newRecipient()]);
    git("add", "-A");
    expect(git("commit", "-m", "ok").status).toBe(0);
    const hook = (...args: string[]) => spawnSync("bash", [join(repo, ".githooks", "pre-commit"), ...args], { cwd: repo, encoding: "utf8" });
    expect(hook("--tracked").status).toBe(0);
    writeFileSync(join(repo, "secrets", "sandbox.sops.yaml"), `HCLOUD_TOKEN: ${canary}\n`);
    git("add", "-A");
    git("commit", "--no-verify", "-m", "bypassed");
    const checked = hook("--tracked");
    expect(checked.status).not.toBe(0);
    expect(checked.stderr).toContain("secrets/sandbox.sops.yaml: no sops metadata");
    expect(checked.stderr).not.toContain(canary);
  });

  it("refuses decrypted env files and stray files in secrets/ even when forced past .gitignore, all named at once", () => {
    writeFileSync(join(repo, ".secrets.env"), `NB_RELAY_SECRET=${canary}\n`);
    writeFileSync(join(repo, "secrets", "notes.txt"), "x\n");
    // .gitignore keeps both out of `git add -A` …
    git("add", "-A");
    expect(git("diff", "--cached", "--name-only").stdout.split("\n")).not.toEqual(expect.arrayContaining([".secrets.env"]));
    expect(git("diff", "--cached", "--name-only").stdout).not.toContain("secrets/notes.txt");
    // … and the hook refuses them when forced in.
    git("add", "-f", ".secrets.env", "secrets/notes.txt");
    const commit = git("commit", "-m", "oops");
    expect(commit.status).not.toBe(0);
    expect(commit.stderr).toContain(".secrets.env: a decrypted env file");
    expect(commit.stderr).toContain("secrets/notes.txt: only *.sops.yaml files (encrypted) belong in secrets/");
    expect(commit.stderr).not.toContain(canary);
  });
});
