/**
 * The AUTHENTIK_POSTGRESQL_PASSWORD rotation of bootstrap.sh against a real PostgreSQL.
 *
 * Postgres reads POSTGRES_PASSWORD only when it initialises its data directory, so the
 * bootstrap's step_postgres_password changes the role's password with SQL sent through
 * `docker exec -i authentik-postgres psql`. Here the script's own functions run (sourced from
 * the bundle's bootstrap.sh, which only defines them when sourced) with env files from the project's
 * renderers, and test/conformance/postgres-shim/docker forwards that one docker call to a real
 * psql and a real server started on a temp dir. Logging in afterwards goes over TCP with
 * scram-sha-256, the way Authentik connects from its own container.
 */
import { entriesFor } from "../../components/secrets/catalog";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canary, canaryValues } from "../helpers/canaries";
import { copyBundle, removeBundle, settings, type Bundle } from "./bundle";
import { postgresBin } from "./tools";

const shimDir = path.join(__dirname, "postgres-shim");

/** A free TCP port on loopback (the server binds it right after). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function mustSucceed(r: SpawnSyncReturns<string>, what: string): string {
  if (r.error || r.status !== 0) throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr ?? ""}${r.stdout ?? ""}`);
  return r.stdout;
}

/** A private PostgreSQL server, initialised as the postgres image does for Authentik. */
class Postgres {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), "conformance-pg-"));
  readonly data = path.join(this.root, "data");
  readonly socketDir = path.join(this.root, "sock");
  readonly bin = postgresBin();
  port = 0;
  /** initdb refuses to run as root: as root, the server runs as Debian's postgres user. */
  private readonly runAs = process.getuid?.() === 0 ? "postgres" : undefined;

  private run(command: string, args: readonly string[], input?: string) {
    const [file, argv] = this.runAs ? ["runuser", ["-u", this.runAs, "--", command, ...args]] : [command, [...args]];
    return spawnSync(file, argv, { encoding: "utf8", input, cwd: this.root, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" } });
  }

  async start(initialPassword: string): Promise<void> {
    this.port = await freePort();
    fs.mkdirSync(this.socketDir);
    // As the image's entrypoint (docker-library/postgres 16/alpine3.22/docker-entrypoint.sh):
    //   initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD")
    // then CREATE DATABASE "$POSTGRES_DB". Its image initialises with en_US.utf8, a UTF8 database.
    const pwfile = path.join(this.root, "pwfile");
    fs.writeFileSync(pwfile, `${initialPassword}\n`, { mode: 0o600 });
    if (this.runAs) {
      const uid = Number(mustSucceed(spawnSync("id", ["-u", this.runAs], { encoding: "utf8" }), `id -u ${this.runAs}`));
      const gid = Number(mustSucceed(spawnSync("id", ["-g", this.runAs], { encoding: "utf8" }), `id -g ${this.runAs}`));
      for (const p of [this.root, this.socketDir, pwfile]) fs.chownSync(p, uid, gid);
    }
    mustSucceed(
      this.run(path.join(this.bin, "initdb"), ["-D", this.data, "--username=authentik", `--pwfile=${pwfile}`, "--encoding=UTF8", "--no-locale", "--no-sync"]),
      "initdb",
    );
    // Authentication as in the container: local (unix socket) connections are trusted (initdb's
    // default, which the image keeps), so `docker exec … psql` needs no password; network
    // clients such as Authentik get the line the entrypoint appends,
    // "host all all all scram-sha-256" (password_encryption's default since PostgreSQL 14).
    fs.writeFileSync(path.join(this.data, "pg_hba.conf"), "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n");
    fs.appendFileSync(
      path.join(this.data, "postgresql.conf"),
      [`listen_addresses = '127.0.0.1'`, `port = ${this.port}`, `unix_socket_directories = '${this.socketDir}'`, "fsync = off", ""].join("\n"),
    );
    mustSucceed(this.run(path.join(this.bin, "pg_ctl"), ["-D", this.data, "-l", path.join(this.root, "server.log"), "-w", "-t", "60", "start"]), "pg_ctl start");
    mustSucceed(this.psqlSocket(["--dbname=postgres", "-c", 'CREATE DATABASE "authentik"']), "CREATE DATABASE");
  }

  stop(): void {
    if (fs.existsSync(path.join(this.data, "postmaster.pid"))) this.run(path.join(this.bin, "pg_ctl"), ["-D", this.data, "-m", "immediate", "-w", "stop"]);
    fs.rmSync(this.root, { recursive: true, force: true });
  }

  private psqlSocket(args: readonly string[]) {
    return spawnSync(path.join(this.bin, "psql"), [`--host=${this.socketDir}`, `--port=${this.port}`, "--username=authentik", "--no-psqlrc", ...args], {
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
    });
  }

  /** A password login over TCP (scram-sha-256), as Authentik makes it. */
  login(password: string) {
    return spawnSync(
      path.join(this.bin, "psql"),
      ["--host=127.0.0.1", `--port=${this.port}`, "--username=authentik", "--dbname=authentik", "--no-psqlrc", "--tuples-only", "--no-align", "-c", "select current_user"],
      { encoding: "utf8", env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", PGPASSWORD: password, PGPASSFILE: "/dev/null", PGSSLMODE: "disable" } },
    );
  }
}

describe("AUTHENTIK_POSTGRESQL_PASSWORD rotation against a real PostgreSQL", () => {
  const initial = canary("AUTHENTIK_POSTGRESQL_PASSWORD", "pg").value;
  const pg = new Postgres();
  let bundle: Bundle | undefined;
  let current = initial;

  beforeAll(async () => {
    await pg.start(initial);
  });
  afterAll(() => {
    pg.stop();
    if (bundle) removeBundle(bundle);
  });

  /** Pulumi's part (render both env files), then the bootstrap's step_postgres_password. */
  function rotateTo(password: string) {
    if (bundle) removeBundle(bundle);
    bundle = copyBundle({ ...canaryValues("hetzner", "pg"), AUTHENTIK_POSTGRESQL_PASSWORD: password }, { ...settings, dataRoot: path.join(pg.root, "bifrost-data") });
    const script = [
      'source "$1"',
      "load_env_file .env",
      "load_env_file .secrets.env",
      'DATA=${CONF[BIFROST_DATA]}',
      "step_postgres_password",
      'printf "note=%s\\n" "$STEP_NOTE"',
    ].join("\n");
    // Sourced, bootstrap.sh defines its functions (and sources its parts) without running.
    return spawnSync("bash", ["-c", script, "rotate", path.join(bundle.dir, "bootstrap.sh")], {
      cwd: bundle.dir,
      encoding: "utf8",
      env: {
        PATH: `${shimDir}:/usr/bin:/bin`,
        // A private HOME: bash reads ~/.bashrc when it guesses that a remote shell daemon started
        // it from its stdin being a socket (bash(1), INVOCATION), and node's pipes are sockets.
        HOME: bundle.root,
        BIFROST_DIR: bundle.dir,
        CONFORMANCE_PSQL: path.join(pg.bin, "psql"),
        CONFORMANCE_PG_SOCKET_DIR: pg.socketDir,
        CONFORMANCE_PG_PORT: String(pg.port),
      },
    });
  }

  function expectRotation(next: string) {
    const previous = current;
    const r = rotateTo(next);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("note=role password set\n");
    expect(r.status).toBe(0);
    current = next;
    const withNew = pg.login(next);
    expect(withNew.stderr).toBe("");
    expect(withNew.stdout.trim()).toBe("authentik");
    const withOld = pg.login(previous);
    expect(withOld.status).not.toBe(0);
    expect(withOld.stderr).toContain('password authentication failed for user "authentik"');
  }

  it("the initial password (set by initdb, as the image does) logs in", () => {
    expect(pg.login(initial).stdout.trim()).toBe("authentik");
    expect(pg.login(`${initial}x`).status).not.toBe(0);
  });

  // Within the catalog's format (≥ 16 printable ASCII characters, no quote): each rotation
  // starts from the password the previous one set.
  it.each([
    ["backslashes", "back\\slash \\\\ double and trailing\\"],
    ["dollars", "dollar $1 $HOME ${HOME} $$ $$tag$$ end$"],
    ["SQL and psql syntax", "semi; -- comment /* c */ \\q \\gexec :var :'var' :\"var\""],
    ["spaces at both ends", "  spaced out password  "],
    ["shell syntax", "`backticks` $(subst) !history #hash &amp | > <"],
    ["every printable ASCII but quotes", Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).filter((c) => c !== "'" && c !== '"').join("")],
  ])("rotates to a password with %s: the new one logs in, the old one no longer does", (_name, password) => {
    expectRotation(password);
  });

  // Beyond the catalog's format: the SQL quoting alone must still hold.
  it.each([
    ["single quotes", "it's '' a 'quoted' password'"],
    ["a double quote", 'double " quote password'],
    ["unicode", "ünïcödé ✓ pässwörd 密码"],
    ["an E-string look-alike", "E'\\x41\\' still literal \\'"],
  ])("rotates to a password with %s (outside the catalog format)", (_name, password) => {
    expectRotation(password);
  });

  it("does nothing when the password did not change", () => {
    const r = rotateTo(current);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("note=unchanged\n");
    expect(pg.login(current).stdout.trim()).toBe("authentik");
  });

  // PostgreSQL stores a password string that already looks like an MD5 or SCRAM verifier
  // as that verifier (CREATE ROLE docs, "ENCRYPTED"; src/backend/libpq/crypt.c
  // get_password_type), so such a value would lock Authentik out after a rotation: the real
  // server proves the hazard, and the catalog's format refuses the value before it gets there.
  it("a password shaped like an MD5 verifier cannot log in after a rotation, so the catalog refuses it", () => {
    const verifierShaped = `md5${"0123456789abcdef".repeat(2)}`;
    const r = rotateTo(verifierShaped);
    expect(r.status).toBe(0);
    expect(pg.login(verifierShaped).stderr).toContain('password authentication failed for user "authentik"');
    const format = entriesFor("hetzner").find((e) => e.key === "AUTHENTIK_POSTGRESQL_PASSWORD")!.format!;
    expect(format.test(verifierShaped)).toBe(false);
    expect(format.test("SCRAM-SHA-256$4096:c2FsdHNhbHQ=$a:b")).toBe(false);
    expect(format.test(`${verifierShaped}x`)).toBe(true);
    // Put a loginable password back for any later test.
    expect(rotateTo(current).status).toBe(0);
    expect(pg.login(current).stdout.trim()).toBe("authentik");
  });
});
