import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { catalog, composeServices } from "../../../components/secrets/catalog";
import { bifrostSource } from "../../docker-double/harness";

const compose = parseYaml(fs.readFileSync(path.join(bifrostSource, "docker-compose.yml"), "utf8")) as {
  services: Record<string, { environment?: Record<string, string>; volumes?: string[]; command?: unknown }>;
};
const references = (text: string) => [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]);

/**
 * Files bootstrap.sh renders from a template of the bundle into the data root, by the mount
 * that carries them into a container (bootstrap.sh step_netbird_config).
 */
const renderedMounts: Record<string, string> = { "${BIFROST_DATA:-/var/lib/bifrost}/netbird-config": "netbird/config.yaml.tmpl" };

/** Variables each service sees: its environment entries plus the placeholders of every rendered file it mounts. */
function variablesOf(service: string): Set<string> {
  const s = compose.services[service];
  const vars = new Set(Object.values(s.environment ?? {}).flatMap((v) => references(String(v))));
  for (const volume of s.volumes ?? []) {
    const source = Object.keys(renderedMounts).find((m) => volume.startsWith(`${m}:`));
    const template = source && renderedMounts[source];
    if (template) for (const v of references(fs.readFileSync(path.join(bifrostSource, template), "utf8"))) vars.add(v);
  }
  return vars;
}

const vpsSecrets = catalog.filter((e) => e.where.includes(".env") || e.where.includes(".secrets.env"));

const reachesExactlyItsConsumers = (e: (typeof vpsSecrets)[number]) => {
  const users = composeServices.filter((s) => variablesOf(s).has(e.key));
  expect(users).toEqual([...e.consumers]);
};

describe("secret consumers", () => {
  it("docker-compose.yml defines exactly the catalog's services", () => {
    expect(Object.keys(compose.services).sort()).toEqual([...composeServices].sort());
  });

  it.each(vpsSecrets.map((e) => [e.key, e] as const))("%s reaches exactly its catalog consumers", (_key, e) => reachesExactlyItsConsumers(e));

  it("the rendered NetBird config is mounted into netbird-server", () => {
    expect(compose.services["netbird-server"].volumes).toContain("${BIFROST_DATA:-/var/lib/bifrost}/netbird-config:/etc/netbird:ro");
  });

  it("no service reads a whole env file, and secrets never reach a command line", () => {
    for (const [name, s] of Object.entries(compose.services)) {
      expect(s, name).not.toHaveProperty("env_file");
      const command = JSON.stringify(s.command ?? "");
      for (const e of vpsSecrets) expect(command, `${name} command`).not.toContain(e.key);
    }
  });

  // Rotating each secret on the real engine and on the docker double, both compared with
  // blastRadius(key): test/engine/bifrost.engine.test.ts.
});
