/**
 * Where the real tools of the conformance suite live, and a loud failure when they do not.
 * scripts/conformance-tools.sh puts them there (CI runs it from .ci/run); the tests never
 * download anything themselves and never skip: a missing tool is a red test that says how to
 * get it.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export const repoRoot = path.resolve(__dirname, "../..");
/** Same default as scripts/conformance-tools.sh. */
export const toolsDir = process.env.CONFORMANCE_TOOLS_DIR ?? path.join(repoRoot, ".cache/conformance-tools");
const rootfs = path.join(toolsDir, "root");

const howToGetThem = `run 'bash scripts/conformance-tools.sh' (as root; CI runs it from .ci/run)`;

function mustExist(file: string, what: string): string {
  if (!fs.existsSync(file)) throw new Error(`${what} is missing (${file}): ${howToGetThem}`);
  return file;
}

/** Debian trixie's Compose v2 CLI plugin, unpacked: it runs standalone, `config` needs no daemon. */
export function composeBinary(): string {
  return mustExist(path.join(rootfs, "usr/libexec/docker/cli-plugins/docker-compose"), "trixie's docker-compose");
}

/**
 * The VPS's own commands where they differ from this machine's: trixie's jq (1.7.1; bookworm
 * has 1.6), which the bootstrap harness puts first on the bundle scripts' PATH.
 */
export function vpsBin(): string {
  return path.dirname(mustExist(path.join(toolsDir, "vps-bin/jq"), "trixie's jq (the VPS's)"));
}

/** Renovate's release the tools script fetched files of (RENOVATE_VERSION there). */
export const renovateVersion = "44.121.2";

/** A file of Renovate's npm package (package/…), as the tools script kept it. */
export function renovateFile(file: string): string {
  return mustExist(path.join(toolsDir, `renovate-${renovateVersion}`, "package", file), `Renovate ${renovateVersion}'s ${file}`);
}

/** The package versions the tools script unpacked ("name=version" lines). */
export function unpackedPackages(): Record<string, string> {
  const stamp = mustExist(path.join(toolsDir, "packages.txt"), "the conformance tools stamp");
  return Object.fromEntries(
    fs
      .readFileSync(stamp, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("=", 2) as [string, string]),
  );
}

/**
 * trixie's cloud-init, run from the unpacked tree by Debian's own python3 (its Depends come
 * from the machine's archive; pyenv or other pythons on PATH lack them).
 */
export function cloudInit(args: readonly string[]): SpawnSyncReturns<string> {
  const dist = mustExist(path.join(rootfs, "usr/lib/python3/dist-packages/cloudinit"), "trixie's cloud-init");
  const python = mustExist("/usr/bin/python3", "Debian's python3");
  return spawnSync(python, ["-m", "cloudinit.cmd.main", ...args], {
    encoding: "utf8",
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", PYTHONPATH: path.dirname(dist), PYTHONDONTWRITEBYTECODE: "1" },
  });
}

/** The newest PostgreSQL server binaries Debian installed (/usr/lib/postgresql/<major>/bin). */
export function postgresBin(): string {
  const base = "/usr/lib/postgresql";
  const majors = fs.existsSync(base)
    ? fs
        .readdirSync(base)
        .filter((v) => fs.existsSync(path.join(base, v, "bin/initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors.length === 0) throw new Error(`no PostgreSQL server under ${base}: ${howToGetThem}`);
  return path.join(base, majors[0], "bin");
}

/**
 * apt-cache over the trixie package lists the tools script fetched into its private apt
 * directory (the machine's own apt state never sees trixie).
 */
export function trixieAptCache(args: readonly string[]): string {
  const apt = path.join(toolsDir, "apt");
  mustExist(path.join(apt, "trixie.sources"), "the private trixie apt source");
  const r = spawnSync(
    "apt-cache",
    [
      ...["-o", `Dir::Etc::SourceList=${path.join(apt, "trixie.sources")}`, "-o", "Dir::Etc::SourceParts=/dev/null"],
      ...["-o", `Dir::State::Lists=${path.join(apt, "lists")}`, "-o", `Dir::Cache=${path.join(apt, "cache")}`],
      ...["-o", `Dir::State::status=${path.join(apt, "empty-status")}`],
      ...args,
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`apt-cache ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}
