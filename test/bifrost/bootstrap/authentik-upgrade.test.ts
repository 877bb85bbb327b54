/**
 * Authentik's version move (issue 16, item 8): an edge whose database an older release line
 * last ran steps through every line in between before the pinned Authentik starts, and its
 * files move from /media to /data (Authentik 2025.12's layout). The Authentik double refuses
 * a skipped line as upstream does (test/docker-double/authentik.ts authentikServerStart cites
 * lifecycle/migrate.py), so a bootstrap that did not step would fail here.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { authentikImageVersion, authentikReleaseLines, authentikServerStart, releaseLineOf } from "../../docker-double/authentik";
import { Bifrost, bifrostSource, canarySecrets } from "../../docker-double/harness";
import { asDeployedWithAuthentik202510, shippedReleaseLines } from "./olderBundle";

const pinned = /image: (ghcr\.io\/goauthentik\/server:\S+)/.exec(fs.readFileSync(path.join(bifrostSource, "docker-compose.yml"), "utf8"))![1]!;
const version = (image: string) => authentikImageVersion(image)!;


describe("Authentik moves to the pinned release line one line at a time", () => {
  let b: Bifrost | undefined;
  afterEach(async () => {
    await b?.stop();
    b = undefined;
  });

  async function edgeOn202510(): Promise<Bifrost> {
    b = await new Bifrost({ secrets: canarySecrets() }).start();
    const restore = asDeployedWithAuthentik202510(b.dir, pinned);
    const old = await b.run();
    expect(old.code, old.stderr).toBe(0);
    expect(b.double.authentik.versions()).toEqual(["2025.10.4"]);
    // A file Authentik wrote under /media (an uploaded icon).
    fs.mkdirSync(path.join(b.data, "authentik/media/public"), { recursive: true });
    fs.writeFileSync(path.join(b.data, "authentik/media/public/icon.svg"), "<svg/>");
    restore();
    return b;
  }

  it("steps an edge on 2025.10.4 through 2025.12, 2026.2 and 2026.5 to the pin, keeps its files, and a rerun changes nothing", async () => {
    const edge = await edgeOn202510();
    const up = await edge.run();
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain("step data-dirs: ok, moved authentik/media to authentik/data/media (Authentik 2025.12's layout)");
    const lines = up.stdout.split("\n").filter((l) => l.startsWith("[bootstrap] authentik: release line"));
    expect(lines).toEqual([
      "[bootstrap] authentik: release line 2025.12 runs on the database first (ghcr.io/goauthentik/server:2025.12.5)",
      "[bootstrap] authentik: release line 2026.2 runs on the database first (ghcr.io/goauthentik/server:2026.2.4)",
      "[bootstrap] authentik: release line 2026.5 runs on the database first (ghcr.io/goauthentik/server:2026.5.8)",
    ]);
    expect(up.stdout).toMatch(/step authentik: ok, database stepped from 2025\.10 through 2025\.12 2026\.2 2026\.5 to 2026\.8 \(/);
    expect(edge.double.authentik.versions()).toEqual(["2025.10.4", "2025.12.5", "2026.2.4", "2026.5.8", version(pinned)]);
    expect(fs.readFileSync(path.join(edge.data, "authentik/data/media/public/icon.svg"), "utf8")).toBe("<svg/>");
    expect(fs.existsSync(path.join(edge.data, "authentik/media"))).toBe(false);
    for (const service of ["authentik-server", "authentik-worker"]) {
      expect(edge.double.containers.get(service)?.config.image).toBe(pinned);
      expect(edge.double.healthOf(service)).toBe("healthy");
    }
    expect(edge.state().authentik?.release_line_pending).toBeUndefined();

    const events = edge.double.events.length;
    const again = await edge.run();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).not.toContain("release line");
    expect(edge.double.events.slice(events).filter((e) => ["create", "recreate", "restart", "stop", "pull"].includes(e.kind))).toEqual([]);
  }, 120_000);

  it("without the lines in between, the pinned Authentik refuses the database, records nothing, and the bootstrap says why", async () => {
    const edge = await edgeOn202510();
    const lines = path.join(edge.dir, "authentik/release-lines");
    fs.writeFileSync(lines, fs.readFileSync(lines, "utf8").replace(/^2025\.12 .*\n|^2026\..*\n/gm, ""));
    const up = await edge.run();
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(/authentik-server did not become healthy/);
    const kept = /last \d+ log lines of authentik-server: (\S+)/.exec(up.stderr)![1]!;
    expect(fs.readFileSync(kept, "utf8")).toContain("Major version skips are not allowed. Please upgrade one major version at a time.");
    expect(edge.double.authentik.versions()).toEqual(["2025.10.4"]);
  }, 120_000);

  it("a line cut off before its migrations finished runs again on the next bootstrap", async () => {
    const edge = await edgeOn202510();
    // 2025.12.5 records itself, then its migrations never finish (the server stays unhealthy).
    edge.double.configure({ unhealthy: ["authentik-server"] });
    const cut = await edge.run();
    expect(cut.code).not.toBe(0);
    expect(edge.double.authentik.versions()).toEqual(["2025.10.4", "2025.12.5"]);
    expect(edge.state().authentik?.release_line_pending).toBe("2025.12");
    edge.double.configure({ unhealthy: [] });
    const up = await edge.run();
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout.split("\n").filter((l) => l.startsWith("[bootstrap] authentik: release line")).map((l) => l.split(" ")[4])).toEqual(["2025.12", "2026.2", "2026.5"]);
    expect(edge.double.authentik.versions().at(-1)).toBe(version(pinned));
  }, 120_000);

  it("refuses a database a newer Authentik ran before anything is stopped or started", async () => {
    b = await new Bifrost({ secrets: canarySecrets() }).start();
    expect((await b.run()).code).toBe(0);
    const file = path.join(b.dir, "docker-compose.yml");
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replaceAll(pinned, "ghcr.io/goauthentik/server:2026.5.8"));
    const events = b.double.events.length;
    const down = await b.run();
    expect(down.code).not.toBe(0);
    expect(down.stderr).toContain("Authentik's database was last run by release line 2026.8, which is neither the pinned 2026.5 nor a line this bootstrap can step from");
    // The pull step fetches the image the bundle names; nothing of Authentik is stopped or (re)started.
    expect(b.double.events.slice(events).filter((e) => e.kind !== "pull" && e.service.startsWith("authentik-"))).toEqual([]);
  }, 120_000);

  it("stops when both the old and the new files directory exist, naming them", async () => {
    const edge = await edgeOn202510();
    fs.mkdirSync(path.join(edge.data, "authentik/data/media"), { recursive: true });
    const up = await edge.run();
    expect(up.code).not.toBe(0);
    expect(up.stderr).toContain("both authentik/media and authentik/data/media exist under");
    expect(edge.double.authentik.versions()).toEqual(["2025.10.4"]);
  }, 120_000);
});

describe("authentik/release-lines", () => {
  it("lists every release line from the oldest this project pinned to the one before the pin, each with an image of that line", () => {
    const rows = shippedReleaseLines();
    const pinnedLine = releaseLineOf(version(pinned));
    expect(rows.map(([line]) => line)).toEqual(authentikReleaseLines.slice(0, authentikReleaseLines.indexOf(pinnedLine)));
    for (const [line, image] of rows) expect([line, releaseLineOf(version(image))]).toEqual([line, line]);
    expect(rows.every(([, image]) => image.startsWith("ghcr.io/goauthentik/server:"))).toBe(true);
  });
});

describe("the Authentik double's start, as lifecycle/migrate.py decides it", () => {
  it.each([
    ["a new database takes any version", "2026.8.7", [], { record: true }],
    ["the same line", "2026.8.7", ["2026.8.6"], { record: true }],
    ["the same version again records nothing", "2026.8.7", ["2026.8.7"], { record: false }],
    ["from the line before", "2026.8.7", ["2025.10.4", "2026.5.8"], { record: true }],
    ["2026.8 refuses a skip before migrating, recording nothing", "2026.8.7", ["2026.2.3"], { record: false, refusal: "RuntimeError: Major version skips are not allowed. Please upgrade one major version at a time." }],
    ["2026.8 refuses a database a newer line ran", "2026.5.8", ["2026.8.7"], { record: true, refusal: "django.db.utils.ProgrammingError: migrations failed: the database skipped from 2026.8.7 to 2026.5.8" }],
    ["before 2026.8 a skip records the version, then its migrations fail", "2026.2.3", ["2025.10.4"], { record: true, refusal: "django.db.utils.ProgrammingError: migrations failed: the database skipped from 2025.10.4 to 2026.2.3" }],
  ] as const)("%s", (_name, image, history, expected) => {
    expect(authentikServerStart(image, history)).toEqual(expected);
  });
});
