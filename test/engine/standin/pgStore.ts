/**
 * Authentik's database in the real PostgreSQL of authentik-postgres, reached as Authentik
 * reaches it: over the compose network with AUTHENTIK_POSTGRESQL__HOST/USER/NAME/PASSWORD
 * (authentik/lib/default.yml postgresql.*), so a wrong or rotated password is refused by the
 * real server. The whole database is one JSON row; writers (the server's API, the worker's
 * discovery, `ak` commands in `docker exec`) are separate processes, so every change is an
 * optimistic transaction: it is retried when another writer got there first.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { emptyAuthentikDb, type AuthentikDb, type AuthentikStore } from "../../docker-double/authentik";

export class PgStore implements AuthentikStore {
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  /** Authentik's migrations (lifecycle/migrate.py) run before anything reads the database. */
  migrate(): void {
    this.sql("CREATE TABLE IF NOT EXISTS standin_authentik (id int PRIMARY KEY, version int NOT NULL, db jsonb NOT NULL);");
  }

  /** The versions that ran the database, oldest first; the table as lifecycle/system_migrations/version_history_create.py makes it (2025.10.4). */
  versions(): string[] {
    this.sql('CREATE TABLE IF NOT EXISTS authentik_version_history (id BIGSERIAL PRIMARY KEY, "timestamp" timestamp with time zone NOT NULL, version text NOT NULL, build text NOT NULL);');
    return this.sql("SELECT version FROM authentik_version_history ORDER BY timestamp;").split("\n").filter(Boolean);
  }

  /** version_history_update.py's row: the version, now. */
  recordVersion(version: string): void {
    this.sql(`INSERT INTO authentik_version_history ("timestamp", version, build) VALUES (now(), '${version.replace(/'/g, "")}', 'standin');`);
  }

  read(): AuthentikDb {
    return this.load().db;
  }

  transact<T>(change: (db: AuthentikDb) => T): T {
    for (;;) {
      const { version, db } = this.load();
      const result = change(db);
      const tag = `$j${randomBytes(6).toString("hex")}$`;
      const json = `${tag}${JSON.stringify(db)}${tag}::jsonb`;
      const written =
        version === 0
          ? this.sql(`INSERT INTO standin_authentik VALUES (1, 1, ${json}) ON CONFLICT (id) DO NOTHING RETURNING version;`)
          : this.sql(`UPDATE standin_authentik SET db = ${json}, version = version + 1 WHERE id = 1 AND version = ${version} RETURNING version;`);
      if (written.trim()) return result;
    }
  }

  private load(): { version: number; db: AuthentikDb } {
    const row = this.sql("SELECT version, db::text FROM standin_authentik WHERE id = 1;").trim();
    if (!row) return { version: 0, db: emptyAuthentikDb() };
    const bar = row.indexOf("|");
    return { version: Number(row.slice(0, bar)), db: JSON.parse(row.slice(bar + 1)) };
  }

  /** One statement through psql, the password in its environment and the SQL on stdin, never on a command line. */
  private sql(statement: string): string {
    try {
      return execFileSync("psql", ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", this.env.AUTHENTIK_POSTGRESQL__HOST ?? "", "-U", this.env.AUTHENTIK_POSTGRESQL__USER ?? "", "-d", this.env.AUTHENTIK_POSTGRESQL__NAME ?? ""], {
        input: statement,
        env: { PATH: process.env.PATH, PGPASSWORD: this.env.AUTHENTIK_POSTGRESQL__PASSWORD ?? "", PGCONNECT_TIMEOUT: "3" },
        encoding: "utf8",
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (e) {
      const stderr = String((e as { stderr?: string }).stderr ?? "").trim();
      throw new Error(`django.db.utils.OperationalError: ${stderr || (e as Error).message}`);
    }
  }
}
