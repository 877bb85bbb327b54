/**
 * The server's user data against the real cloud-init schema validator of Debian trixie (the
 * VPS image's cloud-init, unpacked by scripts/conformance-tools.sh).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { userDataWithHostKey } from "../../components/bifrost/userData";
import { mockEd25519Key } from "../helpers/pulumiMocks";
import { cloudInit, repoRoot, toolsDir, trixieAptCache, unpackedPackages } from "./tools";

const userData = path.join(repoRoot, "cloud/cloud-init/user-data.yaml");

const temps: string[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) fs.rmSync(t, { recursive: true, force: true });
});

/** `cloud-init schema --config-file FILE`: exit 0 and "Valid schema" only for valid user data. */
const schemaCheck = (file: string) => cloudInit(["schema", "--config-file", file]);

describe("cloud-init from Debian trixie (cloud-init schema)", () => {
  beforeAll(() => {
    expect(unpackedPackages()["cloud-init"]).toMatch(/^\d+\./);
  });

  it("accepts the user data, with no deprecation", () => {
    const r = schemaCheck(userData);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain(`Valid schema ${userData}`);
    expect(r.stdout).not.toMatch(/deprecat/i);
    expect(r.status).toBe(0);
  });

  it("accepts the user data the stack renders, with its host key added", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cloud-init-"));
    temps.push(dir);
    const file = path.join(dir, "user-data.yaml");
    fs.writeFileSync(file, userDataWithHostKey(fs.readFileSync(userData, "utf8"), mockEd25519Key("bifrost-ssh-host-key")));
    const r = schemaCheck(file);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain(`Valid schema ${file}`);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(file, "utf8")).toMatch(/^ssh_keys:\n {2}ed25519_private: \|\n {4}-----BEGIN OPENSSH PRIVATE KEY-----\n/m);
  });

  // Broken copies: the validator must say no, naming what is wrong.
  const breakages: [string, (text: string) => string, RegExp][] = [
    ["a misspelt module key", (t) => t.replace(/^packages:/m, "packagez:"), /packagez/],
    ["a wrong type", (t) => t.replace(/^runcmd:\n(?: {2}.*\n|\n)*?(?=\S)/m, "runcmd: 5\n\n"), /runcmd: 5 is not of type 'array'/],
    ["a missing #cloud-config header", (t) => t.replace(/^#cloud-config\n/, ""), /cloud-config/],
  ];

  it.each(breakages)("rejects %s", (_name, edit, mentions) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cloud-init-"));
    temps.push(dir);
    const original = fs.readFileSync(userData, "utf8");
    const broken = edit(original);
    expect(broken, "the edit must apply to the current user-data.yaml").not.toBe(original);
    const file = path.join(dir, "user-data.yaml");
    fs.writeFileSync(file, broken);
    const r = schemaCheck(file);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(mentions);
  });

  it("reboots for an update that needs it at a fixed time, with options trixie's unattended-upgrades reads", () => {
    expect(unpackedPackages()["unattended-upgrades"]).toMatch(/^\d+\./);
    const files = (YAML.parse(fs.readFileSync(userData, "utf8")) as { write_files: { path: string; content: string }[] }).write_files;
    const reboot = files.find((f) => f.path === "/etc/apt/apt.conf.d/52bifrost-reboot");
    expect(reboot).toBeDefined();
    // apt's own parser reads the file (apt-config fails on a syntax error).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "apt-conf-"));
    temps.push(dir);
    fs.writeFileSync(path.join(dir, "52bifrost-reboot"), reboot!.content);
    const dump = spawnSync("apt-config", ["-c", path.join(dir, "52bifrost-reboot"), "dump", "Unattended-Upgrade"], { encoding: "utf8" });
    expect(dump.stderr).toBe("");
    expect(dump.stdout.trim().split("\n").sort()).toEqual([
      'Unattended-Upgrade "";',
      'Unattended-Upgrade::Automatic-Reboot "true";',
      'Unattended-Upgrade::Automatic-Reboot-Time "04:30";',
      'Unattended-Upgrade::Automatic-Reboot-WithUsers "true";',
    ]);
    // Each option is one the program itself looks up (a misspelt one would be ignored silently).
    const program = fs.readFileSync(path.join(toolsDir, "root/usr/bin/unattended-upgrade"), "utf8");
    for (const option of ["Automatic-Reboot", "Automatic-Reboot-WithUsers", "Automatic-Reboot-Time"]) expect(program).toContain(`"Unattended-Upgrade::${option}"`);
  });

  it("installs docker-cli explicitly: trixie's docker.io only recommends it", () => {
    // The fact behind the explicit entry, read from trixie's own package lists.
    const dockerIo = trixieAptCache(["show", "--no-all-versions", "docker.io"]);
    const field = (name: string) => dockerIo.match(new RegExp(`^${name}: (.*)$`, "m"))?.[1] ?? "";
    expect(field("Depends")).not.toMatch(/\bdocker-cli\b/);
    expect(field("Recommends")).toMatch(/\bdocker-cli\b/);
    const packages = (YAML.parse(fs.readFileSync(userData, "utf8")) as { packages: string[] }).packages;
    expect(packages).toEqual(expect.arrayContaining(["docker.io", "docker-cli", "docker-compose"]));
  });
});
