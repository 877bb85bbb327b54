/**
 * `just doctor` (issue 18, item 2): example values left in a stack's config and the placeholder
 * age recipient are named by field, all at once, never by value; a filled-in config passes.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { projectRoot } from "../../components/stack/paths";
import { exampleValues, placeholderRecipients } from "../../scripts/lib/doctor";
import { scratchProject } from "../helpers/sopsDouble";
import { stackFixtures } from "../helpers/stackFixtures";

const shipped = (stack: string) => (parse(readFileSync(join(stackFixtures, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> }).config;

describe("example values in a stack's config", () => {
  it("names every example the shipped hetzner config carries", () => {
    expect(exampleValues(shipped("hetzner")).map((f) => f.field)).toEqual([
      "core:domain",
      "core:cloudflareZone",
      "core:acmeEmail",
      "core:netbirdOwnerEmail",
      "core:sshPublicKey",
      "core:operatorSshSources[0]",
      "core:operatorSshSources[1]",
    ]);
  });

  it("names the cluster config's example address, and nothing in the data stack's", () => {
    expect(exampleValues(shipped("cluster")).map((f) => f.field)).toEqual(["core:openbaoAddr"]);
    expect(exampleValues(shipped("hetzner-data"))).toEqual([]);
  });

  it("lets real names and addresses through, lookalikes included", () => {
    expect(
      exampleValues({
        "core:domain": "edge.homelab.de",
        "core:acmeEmail": "me@myexample.net",
        "core:cloudflareZone": "example.network",
        "core:operatorSshSources": ["192.0.20.10/32", "2001:db9::/48", "203.0.114.1/32"],
        "core:sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8x1 me@laptop",
      }),
    ).toEqual([]);
  });

  it("says why without repeating the value", () => {
    for (const f of exampleValues(shipped("hetzner"))) expect(f.problem).not.toMatch(/example\.net|192\.0\.2|Example/);
  });
});

describe("the placeholder recipient in .sops.yaml", () => {
  const shippedSopsConfig = () => readFileSync(join(projectRoot, "test", "fixtures", "sops.yaml"), "utf8");

  it("names the rule of the stack's own SOPS file while it holds the placeholder (the shipped .sops.yaml, test/fixtures/sops.yaml)", () => {
    expect(placeholderRecipients(shippedSopsConfig(), "secrets/bootstrap.sops.yaml")).toEqual([
      { field: ".sops.yaml: the rule for secrets/bootstrap.sops.yaml", problem: "the placeholder recipient: run `just init`, or put your age public key (age-keygen -y KEYFILE)" },
    ]);
    expect(placeholderRecipients("creation_rules:\n  - path_regex: ^secrets/.*$\n    age: age1qqqq, age1zzzz\n", "secrets/bootstrap.sops.yaml")).toEqual([]);
  });
});

describe("just doctor", () => {
  it("exits 1 naming every finding; exits 0 once the config and .sops.yaml are filled in", () => {
    const root = mkdtempSync(join(tmpdir(), "doctor-"));
    try {
      const project = scratchProject(root);
      const config = parse(readFileSync(join(stackFixtures, "Pulumi.hetzner.yaml"), "utf8"));
      writeFileSync(join(project, "stacks", "Pulumi.hetzner.yaml"), stringify(config));
      writeFileSync(join(project, ".sops.yaml"), readFileSync(join(projectRoot, "test", "fixtures", "sops.yaml"), "utf8"));
      const doctor = () => spawnSync(join(projectRoot, "node_modules", ".bin", "ts-node"), ["--transpile-only", "scripts/doctor.ts", "hetzner"], { cwd: project, encoding: "utf8" });
      const before = doctor();
      expect(before.status).toBe(1);
      expect(before.stderr.trim().split("\n")).toHaveLength(8);
      expect(before.stdout).toContain("doctor hetzner: 8 to fix before `up`");

      Object.assign(config.config, {
        "core:domain": "edge.homelab.de",
        "core:cloudflareZone": "homelab.de",
        "core:acmeEmail": "hostmaster@homelab.de",
        "core:netbirdOwnerEmail": "owner@homelab.de",
        "core:sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8x1 me@laptop",
        "core:operatorSshSources": ["93.184.10.7/32"],
      });
      writeFileSync(join(project, "stacks", "Pulumi.hetzner.yaml"), stringify(config));
      writeFileSync(join(project, ".sops.yaml"), "creation_rules:\n  - path_regex: ^secrets/[^/]+\\.sops\\.yaml$\n    age: age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n");
      const after = doctor();
      expect(after.status, after.stderr).toBe(0);
      expect(after.stdout).toContain("doctor hetzner: no example value or placeholder left");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
