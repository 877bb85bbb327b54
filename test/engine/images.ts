/**
 * The images the engine tests run, built here because nothing can be pulled: each is tagged
 * with the exact name docker-compose.yml pins, from one Debian root filesystem
 * (scripts/conformance-tools.sh, mmdebstrap) and the stand-ins of standin/main.ts. The
 * authentik-postgres slot runs Debian's real PostgreSQL behind the official image's
 * entrypoint behaviour (standin/postgres-entrypoint.sh). Every image runs as the uid its real
 * image runs as, so bind-mount ownership is tested for real, and states its start-up cost.
 * Built once per content (a hash of every input) and kept as a `docker save` tarball, which a
 * new daemon loads.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import ts from "typescript";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { authentikImageVersion } from "../docker-double/authentik";
import { bifrostSource, repoRoot } from "../docker-double/harness";
import { releaseLinesFile, shippedReleaseLines } from "../bifrost/bootstrap/olderBundle";
import { toolsDir, type Engine } from "./daemon";

const rootfsTar = path.join(toolsDir, "standin-rootfs.tar");
const standinSources = ["test/engine/standin/main.ts", "test/engine/standin/pgStore.ts", "test/docker-double/apis.ts", "test/docker-double/authentik.ts", "test/docker-double/blueprintTags.ts", "test/docker-double/netbirdAccounts.ts", "test/docker-double/netbirdMesh.ts"];
const programs = ["traefik", "ak", "netbird-server", "netbird-dashboard", "netbird-proxy", "netbird"];

/** Milliseconds an `ak` management command boots Django before it acts (as the bootstrap bench states it). */
export const akCommandMs = 2000;

interface ImageSpec {
  /** The stand-in's stated start-up cost in milliseconds (STANDIN_START_MS); none for the real PostgreSQL. */
  startMs?: number;
  /** Extra Dockerfile lines after the stand-in is in place. */
  lines: string[];
}

/**
 * Per compose service: the real image's user and entrypoint (each cited), and the stand-in's
 * stated start-up cost in milliseconds (STANDIN_START_MS).
 */
export const imageSpecs: Record<string, ImageSpec> = {
  // The official traefik image's Dockerfile (read for v3.6.2; the pin is v3.7.14): root,
  // ENTRYPOINT /entrypoint.sh → traefik with the flags.
  traefik: { startMs: 500, lines: ['ENTRYPOINT ["traefik"]'] },
  // docker-library/postgres 16/alpine3.24 Dockerfile (16.15, 9d15534): uid/gid 70, PGDATA, ENTRYPOINT
  // docker-entrypoint.sh, CMD postgres, STOPSIGNAL SIGINT.
  "authentik-postgres": {
    lines: [
      "RUN usermod -u 70 postgres && groupmod -g 70 postgres && mkdir -p /var/run/postgresql && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql",
      "ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data",
      "COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh",
      'ENTRYPOINT ["docker-entrypoint.sh"]',
      'CMD ["postgres"]',
      "STOPSIGNAL SIGINT",
    ],
  },
  // goauthentik lifecycle/container/Dockerfile: USER 1000, ENTRYPOINT dumb-init -- ak, CMD server.
  "authentik-server": {
    startMs: 2000,
    lines: [
      // 2025.12 Dockerfile: /data and /media made and owned by authentik (1000).
      "RUN mkdir -p /data /media && chown 1000:1000 /data /media",
      `ENV STANDIN_AK_COMMAND_MS=${akCommandMs} STANDIN_DISCOVERY_BOOTSTRAP_MS=0 STANDIN_DISCOVERY_INSTANCES_MS=1000 STANDIN_DISCOVERY_APPLIED_MS=3000`,
      "USER 1000",
      'ENTRYPOINT ["ak"]',
      'CMD ["server"]',
    ],
  },
  // netbird combined/Dockerfile: ubuntu:24.04, root, ENTRYPOINT /go/bin/netbird-server.
  "netbird-server": { startMs: 1000, lines: ['ENTRYPOINT ["netbird-server"]'] },
  // netbirdio/dashboard Dockerfile: nginx under supervisord, root.
  "netbird-dashboard": { startMs: 300, lines: ['ENTRYPOINT ["netbird-dashboard"]'] },
  // netbird proxy/Dockerfile: distroless base:debug (busybox in /busybox), USER netbird (1000).
  "netbird-proxy": { startMs: 500, lines: ["RUN mkdir -p /busybox && ln -s /bin/busybox /busybox/wget", "USER 1000", 'ENTRYPOINT ["netbird-proxy"]'] },
  // netbird client/Dockerfile: root, ENTRYPOINT netbird-entrypoint.sh (runs `netbird up`).
  "netbird-agent": { startMs: 500, lines: ['ENTRYPOINT ["netbird", "up"]'] },
};

/** The start-up cost a compose service's stand-in states (authentik-worker runs authentik-server's image). */
export const statedStartMs = (service: string): number => imageSpecs[service === "authentik-worker" ? "authentik-server" : service]?.startMs ?? 0;

/** The image each compose service runs, exactly as docker-compose.yml pins it. */
export function composeImages(): Record<string, string> {
  const compose = parseYaml(fs.readFileSync(path.join(bifrostSource, "docker-compose.yml"), "utf8")) as { services: Record<string, { image: string }> };
  return Object.fromEntries(Object.entries(compose.services).map(([service, s]) => [service, s.image]));
}

/**
 * The local tag of an image docker-compose.yml may pin by digest as well (`name:tag@sha256:…`,
 * as Renovate's docker:pinDigests writes it): a locally built image has no registry digest, so
 * the stand-ins are tagged `name:tag` and digestOverride points Compose at them.
 */
export const localTag = (image: string): string => image.replace(/@sha256:[0-9a-f]{64}$/, "");

/**
 * A Compose override (YAML) naming the local tag for each service whose image carries a digest,
 * or undefined when none does: test-only, like compose.engine-override.yml.
 */
export function digestOverride(images: Record<string, string>): string | undefined {
  const pinned = Object.entries(images).filter(([, image]) => localTag(image) !== image);
  if (pinned.length === 0) return undefined;
  return stringifyYaml({ services: Object.fromEntries(pinned.map(([service, image]) => [service, { image: localTag(image) }])) });
}

/** Every stand-in source, transpiled to CommonJS at the same relative paths, with the yaml package beside them. */
function buildContext(dir: string): void {
  const app = path.join(dir, "opt-standin");
  for (const source of standinSources) {
    const out = path.join(app, source.replace(/\.ts$/, ".js"));
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const { outputText } = ts.transpileModule(fs.readFileSync(path.join(repoRoot, source), "utf8"), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } });
    fs.writeFileSync(out, outputText);
  }
  fs.cpSync(path.join(repoRoot, "node_modules/yaml"), path.join(app, "node_modules/yaml"), { recursive: true });
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  fs.copyFileSync(path.join(repoRoot, "test/engine/standin/standin.sh"), path.join(bin, "standin"));
  fs.chmodSync(path.join(bin, "standin"), 0o755);
  for (const program of programs) fs.symlinkSync("standin", path.join(bin, program));
  fs.copyFileSync(path.join(repoRoot, "test/engine/standin/postgres-entrypoint.sh"), path.join(dir, "postgres-entrypoint.sh"));
  fs.chmodSync(path.join(dir, "postgres-entrypoint.sh"), 0o755);
}

async function build(engine: Engine, context: string, image: string, lines: string[]): Promise<void> {
  const file = path.join(context, `Dockerfile.${image.replace(/[^a-z0-9.-]/gi, "_")}`);
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  await engine.docker(["build", "--quiet", "--tag", image, "--file", file, context], { cwd: context });
}

function contentHash(): string {
  const hash = createHash("sha256");
  for (const file of [...standinSources, "test/engine/standin/standin.sh", path.relative(repoRoot, releaseLinesFile), "test/engine/standin/postgres-entrypoint.sh", "test/engine/images.ts", "package-lock.json", "cloud/bifrost/docker-compose.yml"]) hash.update(fs.readFileSync(path.join(repoRoot, file)));
  hash.update(fs.readFileSync(`${rootfsTar}.packages`));
  return hash.digest("hex").slice(0, 16);
}

/** The version an Authentik image's stand-in runs as, from its tag (the real one has it in its code: authentik/__init__.py). */
const authentikVersion = (image: string) => [`ENV STANDIN_AUTHENTIK_VERSION=${authentikImageVersion(image) ?? ""}`];

/** Puts every compose image into the engine: loaded from the saved tarball when one matches, else built and saved. */
export async function provideImages(engine: Engine): Promise<void> {
  if (!fs.existsSync(rootfsTar)) throw new Error(`no image root filesystem at ${rootfsTar}: run scripts/conformance-tools.sh as root`);
  const saved = path.join(toolsDir, `standin-images-${contentHash()}.tar`);
  if (fs.existsSync(saved)) {
    await engine.docker(["load", "--quiet", "--input", saved]);
    return;
  }
  const context = fs.mkdtempSync(path.join(os.tmpdir(), "standin-context-"));
  try {
    buildContext(context);
    await engine.docker(["import", rootfsTar, "standin-base:local"]);
    const images = composeImages();
    const built = new Set<string>();
    for (const [service, pinned] of Object.entries(images)) {
      const image = localTag(pinned);
      if (built.has(image)) continue;
      const spec = imageSpecs[service];
      if (!spec) throw new Error(`no stand-in image for compose service ${service}`);
      const startCost = spec.startMs === undefined ? [] : [`ENV STANDIN_START_MS=${spec.startMs}`];
      const version = service.startsWith("authentik-") ? authentikVersion(image) : [];
      await build(engine, context, image, ["FROM standin-base:local", "COPY opt-standin /opt/standin", "COPY bin /usr/local/bin", ...startCost, ...version, ...spec.lines]);
      built.add(image);
    }
    // The older lines' servers: the pinned Authentik's stand-in under their names, each with its version.
    for (const image of shippedReleaseLines().map(([, image]) => image).filter((i) => !built.has(i))) {
      await build(engine, context, image, [`FROM ${localTag(images["authentik-server"]!)}`, ...authentikVersion(image)]);
      built.add(image);
    }
    for (const old of fs.readdirSync(toolsDir).filter((f) => /^standin-images-.*\.tar$/.test(f))) fs.rmSync(path.join(toolsDir, old));
    await engine.docker(["save", "--output", `${saved}.partial`, ...built]);
    fs.renameSync(`${saved}.partial`, saved);
  } finally {
    fs.rmSync(context, { recursive: true, force: true });
  }
}
