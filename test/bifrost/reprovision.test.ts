/**
 * Reprovision under mocks that answer as the real providers do: a server whose id changes
 * (replaced, or a ForceNew input changed) gets every remote resource again, identical input
 * changes nothing, the volume is released before it is detached, and an existing SSH key is
 * adopted rather than created twice.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it, vi } from "vitest";
import { hetznerFingerprint } from "../../components/bifrost/ssh";
import { canaryEnv } from "../helpers/canaries";
import { byType, hetznerConfig, one, runProgram, type Registered, type Run, type RunOptions } from "../helpers/pulumiMocks";

// A private copy of the user data, so a test can change it as an operator would.
const files = vi.hoisted(() => ({ root: "", userData: "" }));
vi.mock("../../components/stack/paths", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../components/stack/paths")>();
  const { mkdtempSync, copyFileSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  files.root = mkdtempSync(join(tmpdir(), "core-reprovision-"));
  files.userData = join(files.root, "user-data.yaml");
  copyFileSync(original.cloudInitFile, files.userData);
  return { ...original, cloudInitFile: files.userData };
});
afterAll(() => rmSync(files.root, { recursive: true, force: true }));

const env = { ...canaryEnv("hetzner"), SSH_AUTH_SOCK: "/run/user/1000/agent.1234" };
const hetzner = (options: Partial<RunOptions> = {}) =>
  runProgram({ stack: "hetzner", config: hetznerConfig, env, ...options }).then((run) => {
    expect(run.error).toBeUndefined();
    return run;
  });

const remoteResources = (run: Run) => run.resources.filter((r) => r.type.startsWith("command:remote:"));
const inputsByName = (run: Run) => new Map(run.resources.map((r) => [`${r.type}::${r.name}`, JSON.stringify(r.inputs)]));
const serverId = (run: Run) => one(run, "hcloud:index/server:Server").id;

/** Names of the remote resources whose `triggers` (replaceOnChanges in pulumi-command) differ between two runs. */
function remoteWithChangedTriggers(a: Run, b: Run): string[] {
  return remoteResources(a)
    .filter((r) => JSON.stringify(r.inputs.triggers) !== JSON.stringify(one(b, r.type, r.name).inputs.triggers))
    .map((r) => r.name)
    .sort();
}
const allRemote = (run: Run) => remoteResources(run).map((r) => r.name).sort();

describe("a replaced server gets everything again", () => {
  it("every remote resource keys on the server's id, so a new id replaces each of them", async () => {
    const before = await hetzner();
    const after = await hetzner({ serverGeneration: 1 });
    expect(serverId(after)).not.toBe(serverId(before));
    expect(allRemote(before)).toEqual([
      "bifrost-env",
      "bifrost-files",
      "bifrost-install",
      "bifrost-run",
      "bifrost-secrets-env",
      "bifrost-volume-release",
    ]);
    expect(remoteWithChangedTriggers(before, after)).toEqual(allRemote(before));
    for (const r of remoteResources(after)) expect(JSON.stringify(r.inputs.triggers), r.name).toContain(serverId(after));
  });

  it("with the same server id, no resource's inputs differ", async () => {
    const [a, b] = [await hetzner(), await hetzner()];
    expect(serverId(a)).toBe(serverId(b));
    expect(inputsByName(b)).toEqual(inputsByName(a));
  });

  it("a new image (ForceNew) gives a new server and re-runs every remote resource", async () => {
    const before = await hetzner();
    const after = await hetzner({ config: { ...hetznerConfig, "core:image": "debian-13-arm64" } });
    expect(serverId(after)).not.toBe(serverId(before));
    expect(remoteWithChangedTriggers(before, after)).toEqual(allRemote(before));
  });

  it("new user data (ForceNew) gives a new server and re-runs every remote resource", async () => {
    const before = await hetzner();
    const original = readFileSync(files.userData, "utf8");
    try {
      writeFileSync(files.userData, `${original}\n# changed by the test\n`);
      const after = await hetzner();
      expect(serverId(after)).not.toBe(serverId(before));
      expect(remoteWithChangedTriggers(before, after)).toEqual(allRemote(before));
    } finally {
      writeFileSync(files.userData, original);
    }
  });

  it("a new server type is an in-place resize: same server, nothing re-runs", async () => {
    const before = await hetzner();
    const after = await hetzner({ config: { ...hetznerConfig, "core:serverType": "cx33" } });
    expect(serverId(after)).toBe(serverId(before));
    expect(remoteWithChangedTriggers(before, after)).toEqual([]);
  });

  it("the server is deleted before its replacement is created: the primary IPs fit one server at a time", async () => {
    expect(one(await hetzner(), "hcloud:index/server:Server").deleteBeforeReplace).toBe(true);
  });
});

describe("nothing machine-local in any input", () => {
  it("another ssh-agent socket changes no resource's inputs", async () => {
    const a = await hetzner();
    const b = await hetzner({ env: { ...env, SSH_AUTH_SOCK: "/tmp/ssh-XXXXotherSession/agent.9999" } });
    expect(inputsByName(b)).toEqual(inputsByName(a));
    expect(JSON.stringify(a.resources)).not.toContain("agent.1234");
  });
});

/**
 * The engine never deletes a resource before the resources that depend on it, through their
 * dependency list or as children (pulumi/pulumi pkg/resource/graph/dependency_graph.go,
 * DependingOn; a delete-before-replace deletes those dependents first, in reverse dependency
 * order: pkg/resource/deploy/step_generator.go). Resources with no such path between them may
 * be deleted in any order, so only a path proves an order.
 */
function deletedBefore(run: Run, first: Registered, then: Registered): boolean {
  const byUrn = new Map(run.resources.filter((r) => r.urn).map((r) => [r.urn!, r]));
  const seen = new Set<string>();
  const dependsOn = (r: Registered): boolean => {
    for (const dep of [...(r.dependencies ?? []), ...(r.parent ? [r.parent] : [])]) {
      if (dep === then.urn) return true;
      if (seen.has(dep)) continue;
      seen.add(dep);
      const d = byUrn.get(dep);
      if (d && dependsOn(d)) return true;
    }
    return false;
  };
  return dependsOn(first);
}

describe("the volume is released before it is detached", () => {
  it("the stop-and-unmount step is deleted before the volume attachment, and the attachment before the server", async () => {
    const run = await hetzner();
    const command = (name: string) => one(run, "command:remote:Command", name);
    const release = command("bifrost-volume-release");
    const attachment = one(run, "hcloud:index/volumeAttachment:VolumeAttachment");
    expect(deletedBefore(run, release, attachment)).toBe(true);
    expect(deletedBefore(run, attachment, one(run, "hcloud:index/server:Server"))).toBe(true);
    // The bootstrap and the ship step go before the release: nothing writes once it has run.
    for (const name of ["bifrost-run", "bifrost-install", "bifrost-env", "bifrost-secrets-env"]) {
      expect(deletedBefore(run, command(name), release), name).toBe(true);
    }
    expect(deletedBefore(run, attachment, release)).toBe(false);
  });

  it("runs release-volume.sh with the data root on delete and nothing on create", async () => {
    const release = one(await hetzner(), "command:remote:Command", "bifrost-volume-release").inputs;
    expect(release.create).toBeUndefined();
    expect(release.delete).toBe("if [ -f '/etc/bifrost/release-volume.sh' ]; then bash '/etc/bifrost/release-volume.sh' '/var/lib/bifrost'; fi");
  });
});

describe("an SSH key already in the Hetzner project", () => {
  const publicKey = hetznerConfig["core:sshPublicKey"];
  const fingerprint = hetznerFingerprint(publicKey);
  const ownLabels = { "managed-by": "homelab-core", "homelab-core-stack": "hetzner" };

  it("computes Hetzner's MD5 fingerprint of the key blob", () => {
    // ssh-keygen -E md5 -lf prints the same digest for this blob.
    const blob = Buffer.from(publicKey.split(" ")[1], "base64");
    const { createHash } = require("node:crypto") as typeof import("node:crypto");
    expect(fingerprint).toBe(createHash("md5").update(blob).digest("hex").match(/../g)!.join(":"));
    expect(fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
  });

  it("none there: the stack creates its own, labelled and named by fingerprint", async () => {
    const run = await hetzner();
    const key = one(run, "hcloud:index/sshKey:SshKey");
    expect(key.inputs).toMatchObject({ publicKey, labels: ownLabels, name: `bifrost-${fingerprint.replace(/:/g, "").slice(0, 12)}` });
    expect(one(run, "hcloud:index/server:Server").inputs.sshKeys).toEqual([key.id]);
  });

  it("uploaded by the operator (same fingerprint): it is used as it is, not created again", async () => {
    const run = await hetzner({ sshKeys: [{ id: 777, name: "laptop", fingerprint, publicKey, labels: {} }] });
    expect(byType(run, "hcloud:index/sshKey:SshKey")).toEqual([]);
    expect(one(run, "hcloud:index/server:Server").inputs.sshKeys).toEqual(["777"]);
  });

  it("created by this stack earlier: it stays the stack's resource", async () => {
    const run = await hetzner({ sshKeys: [{ id: 778, name: "bifrost-x", fingerprint, publicKey, labels: ownLabels }] });
    expect(byType(run, "hcloud:index/sshKey:SshKey")).toHaveLength(1);
  });

  it("created by another stack (a sandbox) with the same key: adopted, never taken over", async () => {
    const labels = { ...ownLabels, "homelab-core-stack": "hetzner-sandbox" };
    const run = await hetzner({ sshKeys: [{ id: 779, name: "sandbox", fingerprint, publicKey, labels }] });
    expect(byType(run, "hcloud:index/sshKey:SshKey")).toEqual([]);
    expect(one(run, "hcloud:index/server:Server").inputs.sshKeys).toEqual(["779"]);
  });

  it("another key with another fingerprint changes nothing", async () => {
    const other = { id: 780, name: "other", fingerprint: "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff", publicKey: "ssh-ed25519 AAAA other", labels: {} };
    const run = await hetzner({ sshKeys: [other] });
    expect(byType(run, "hcloud:index/sshKey:SshKey")).toHaveLength(1);
  });
});

describe("the SSH user", () => {
  it("refuses anything but root, naming the key, before any resource", async () => {
    const run = await runProgram({ stack: "hetzner", config: { ...hetznerConfig, "core:sshUser": "deploy" }, env });
    expect(run.error?.message).toContain("core:sshUser: expected root");
    expect(run.resources).toEqual([]);
  });
});
