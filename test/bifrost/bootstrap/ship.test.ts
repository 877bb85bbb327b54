/**
 * The two scripts Pulumi runs on the VPS besides the bootstrap, run for real on temp dirs:
 * install-bundle.sh (the live directory holds exactly the staged bundle) and release-volume.sh
 * (stop the stack, unmount the data root before Hetzner detaches the volume).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bifrostSource, composeStep, type Bifrost } from "../../docker-double/harness";
import { bifrostPerTest } from "../../docker-double/perTest";

let root = "";
afterEach(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
  root = "";
});

/** Stages a bundle version as CopyToRemote leaves it: <root>/staged/<version>/bifrost. */
function stage(version: string, edit: (dir: string) => void = () => undefined): string {
  const dir = path.join(root, "staged", version, "bifrost");
  fs.cpSync(bifrostSource, dir, { recursive: true });
  edit(dir);
  return dir;
}

function install(staged: string, env: Record<string, string> = {}) {
  const live = path.join(root, "etc-bifrost");
  const run = spawnSync("bash", [path.join(staged, "install-bundle.sh"), staged, live], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  return { ...run, live };
}

/** Every path below dir, relative, sorted. */
const tree = (dir: string) => fs.readdirSync(dir, { recursive: true }).map(String).sort();

describe("install-bundle.sh", () => {
  it("a first install makes the live directory exactly the bundle, logging each step with its duration", () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "core-ship-"));
    const staged = stage("v1");
    const r = install(staged);
    expect(r.status, r.stderr).toBe(0);
    expect(tree(r.live).filter((p) => p !== ".bootstrap.lock")).toEqual(tree(staged));
    for (const step of ["wait for the bootstrap lock", "install new and changed files", "remove files the bundle no longer has", "prune older staged versions"]) {
      expect(r.stderr).toMatch(new RegExp(`\\[ship\\] ${step}: ok in \\d+s`));
    }
  });

  it("a file removed from the bundle is gone after the next install; the env files and the lock stay untouched", () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "core-ship-"));
    const v1 = stage("v1", (d) => fs.writeFileSync(path.join(d, "traefik/dynamic/old-route.yml"), "http: {}\n"));
    const first = install(v1);
    expect(first.status, first.stderr).toBe(0);
    expect(fs.existsSync(path.join(first.live, "traefik/dynamic/old-route.yml"))).toBe(true);
    // What Pulumi writes beside the bundle, and what an interrupted earlier install left.
    fs.writeFileSync(path.join(first.live, ".env"), 'A="1"\n', { mode: 0o600 });
    fs.writeFileSync(path.join(first.live, ".secrets.env"), 'S="$ecret #1"\n', { mode: 0o600 });
    fs.writeFileSync(path.join(first.live, "docker-compose.yml.ship-new"), "half a file");
    fs.mkdirSync(path.join(first.live, "leftover-dir/nested"), { recursive: true });

    const v2 = stage("v2");
    const r = install(v2);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(r.live, "traefik/dynamic/old-route.yml"))).toBe(false);
    // What install-bundle.sh keeps (its KEPT list) although the bundle does not hold it.
    expect(tree(r.live).filter((p) => ![".env", ".secrets.env", ".bootstrap.lock"].includes(p))).toEqual(tree(v2));
    expect(fs.readFileSync(path.join(r.live, ".env"), "utf8")).toBe('A="1"\n');
    expect(fs.readFileSync(path.join(r.live, ".secrets.env"), "utf8")).toBe('S="$ecret #1"\n');
    expect(fs.statSync(path.join(r.live, ".secrets.env")).mode & 0o777).toBe(0o600);
    expect(r.stderr).toContain("remove files the bundle no longer has: ok");
    // v1 is pruned: only the live version stays staged.
    expect(fs.readdirSync(path.join(root, "staged"))).toEqual(["v2"]);
  });

  it("replaces a changed file by rename and leaves an unchanged one alone", () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "core-ship-"));
    const first = install(stage("v1"));
    const inode = (rel: string) => fs.statSync(path.join(first.live, rel)).ino;
    const before = { compose: inode("docker-compose.yml"), bootstrap: inode("bootstrap.sh") };
    const r = install(stage("v2", (d) => fs.appendFileSync(path.join(d, "docker-compose.yml"), "# changed\n")));
    expect(r.status, r.stderr).toBe(0);
    expect(inode("bootstrap.sh")).toBe(before.bootstrap);
    expect(inode("docker-compose.yml")).not.toBe(before.compose);
    expect(fs.readFileSync(path.join(r.live, "docker-compose.yml"), "utf8")).toMatch(/# changed\n$/);
    expect(r.stderr).toMatch(/install new and changed files: ok in \d+s \(1 file\(s\) new or changed\)/);
  });

  it("waits for a running bootstrap (the same lock) and gives up after the timeout with a clear error", async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "core-ship-"));
    const staged = stage("v1");
    const live = path.join(root, "etc-bifrost");
    fs.mkdirSync(live, { recursive: true });
    const holder = spawn("flock", [path.join(live, ".bootstrap.lock"), "sleep", "5"], { stdio: "ignore" });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = install(staged, { BIFROST_LOCK_TIMEOUT: "1" });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("a bootstrap run still holds");
      expect(fs.existsSync(path.join(live, "docker-compose.yml"))).toBe(false);
    } finally {
      holder.kill();
    }
  });

  it("refuses a staging directory that holds no bundle", () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "core-ship-"));
    const empty = path.join(root, "staged", "v1", "bifrost");
    fs.mkdirSync(empty, { recursive: true });
    fs.copyFileSync(path.join(bifrostSource, "install-bundle.sh"), path.join(empty, "install-bundle.sh"));
    const r = install(empty);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("holds no bundle");
  });
});

describe("release-volume.sh", () => {
  const bifrost = bifrostPerTest();
  const device = "/dev/disk/by-id/scsi-0HC_Volume_4242";
  const hostCalls = (b: Bifrost) => fs.readFileSync(path.join(b.hostState, "calls.log"), "utf8").trim().split("\n");

  it("stops every container of the project, then unmounts the data root; a second run finds nothing to do", async () => {
    const b = await bifrost({ volumeDevice: device });
    expect((await b.run({ hostTools: true })).code).toBe(0);
    const running = [...b.double.containers.keys()];
    expect(running.length).toBeGreaterThan(0);

    const r = await b.run({ hostTools: true, script: "release-volume.sh", args: [b.data] });
    expect(r.code, r.stderr).toBe(0);
    expect(b.double.eventsOf("stop").map((e) => e.service).sort()).toEqual(running.sort());
    expect(hostCalls(b).at(-1)).toBe(`umount ${b.data}`);
    expect(r.stderr).toMatch(new RegExp(`\\[release\\] stop the stack: ok in \\d+s \\(${running.length} container\\(s\\) stopped\\)`));
    expect(r.stderr).toMatch(/\[release\] unmount .*: ok in \d+s \(unmounted\)/);
    // The stop came before the unmount: the last docker call is the stop.
    expect(b.double.calls.at(-1)).toMatch(/^stop --time 60 /);

    const again = await b.run({ hostTools: true, script: "release-volume.sh", args: [b.data] });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("(nothing running)");
    expect(again.stderr).toContain("(not mounted)");
  });

  it("a bootstrap after a release starts the stopped stack again", async () => {
    const b = await bifrost({ volumeDevice: device });
    expect((await b.run({ hostTools: true })).code).toBe(0);
    expect((await b.run({ hostTools: true, script: "release-volume.sh", args: [b.data] })).code).toBe(0);
    const r = await b.run({ hostTools: true });
    expect(r.code, r.stderr).toBe(0);
    expect([...b.double.containers.values()].every((c) => c.running)).toBe(true);
    expect(b.double.calls.filter((c) => composeStep(c)?.startsWith("up")).length).toBeGreaterThan(0);
  });
});
