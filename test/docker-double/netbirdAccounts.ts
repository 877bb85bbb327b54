/**
 * NetBird's accounts and users as netbird-server v0.77.1 keeps them: rows in the SQLite file
 * store.db in its data directory, under the names GORM gives upstream's structs
 * (management/server/types/account.go Account: id, created_by, domain, domain_category,
 * is_domain_primary_account, Settings embedded with prefix settings_ and its Extra with
 * settings_extra_; types/user.go User: id, account_id, role, blocked, pending_approval). Only
 * the columns the doubles use exist. A real SQLite file, so the bootstrap's own sqlite3 edit of
 * the owner's account (steps/netbird.sh) meets the schema it would meet on the VPS.
 *
 * The login path follows the same version: GetAccountIDFromUserAuth (account.go:1528) →
 * updateUserAuthWithSingleMode (1573) → getAccountIDWithAuthorizationClaims (1787).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export const storeDbFile = "store.db";

/** management/internals/server/server.go DefaultSelfHostedDomain. */
export const defaultSelfHostedDomain = "netbird.selfhosted";

export interface AccountRow {
  id: string;
  created_by: string;
  domain: string;
  domain_category: string;
  is_domain_primary_account: number;
  settings_peer_login_expiration_enabled: number;
  settings_peer_login_expiration: number;
  settings_regular_users_view_blocked: number;
  settings_groups_propagation_enabled: number;
  settings_extra_peer_approval_enabled: number;
  settings_extra_user_approval_required: number;
}

export interface UserRow {
  id: string;
  account_id: string;
  role: "owner" | "admin" | "user";
  blocked: number;
  pending_approval: number;
}

const schema = `
CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, created_by TEXT, domain TEXT, domain_category TEXT,
  is_domain_primary_account NUMERIC, settings_peer_login_expiration_enabled NUMERIC, settings_peer_login_expiration INTEGER,
  settings_regular_users_view_blocked NUMERIC, settings_groups_propagation_enabled NUMERIC,
  settings_extra_peer_approval_enabled NUMERIC, settings_extra_user_approval_required NUMERIC);
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, account_id TEXT, role TEXT, blocked NUMERIC, pending_approval NUMERIC);`;

const quote = (v: string | number) => (typeof v === "number" ? String(v) : `'${v.replaceAll("'", "''")}'`);

/** xid.New().String(): 20 characters of base32hex, lower case (github.com/rs/xid). */
const xid = () => Array.from(randomBytes(20), (b) => "0123456789abcdefghijklmnopqrstuv"[b % 32]).join("");

/** account.go:1797 isDomainValid. */
const isDomainValid = (domain: string) => /^([a-z0-9]+(-[a-z0-9]+)*\.)+[a-z]{2,}$/.test(domain);

export class NetbirdAccounts {
  private readonly file: string;

  constructor(dir: string) {
    this.file = path.join(dir, storeDbFile);
  }

  private sql<T>(statements: string): T[] {
    // NetBird opens its store with _busy_timeout=30000 (store/sql_store.go NewSqliteStore); so do we.
    const out = execFileSync("sqlite3", ["-json", "-cmd", ".timeout 30000", this.file, schema + statements], { encoding: "utf8" });
    return out.trim() ? (JSON.parse(out) as T[]) : [];
  }

  accounts(): AccountRow[] {
    return fs.existsSync(this.file) ? this.sql<AccountRow>("SELECT * FROM accounts ORDER BY rowid;") : [];
  }

  account(id: string): AccountRow | undefined {
    return this.sql<AccountRow>(`SELECT * FROM accounts WHERE id = ${quote(id)};`)[0];
  }

  user(id: string): UserRow | undefined {
    return fs.existsSync(this.file) ? this.sql<UserRow>(`SELECT * FROM users WHERE id = ${quote(id)};`)[0] : undefined;
  }

  users(accountId: string): UserRow[] {
    return this.sql<UserRow>(`SELECT * FROM users WHERE account_id = ${quote(accountId)} ORDER BY rowid;`);
  }

  /** account.go:2037 newAccountWithId with its settings, and the user as the account's owner. */
  private newAccount(userId: string, domain: string, category: string, primary: boolean): string {
    const id = xid();
    this.sql(
      `INSERT INTO accounts VALUES (${[id, userId, domain, category, primary ? 1 : 0, 1, 86400 * 24 * 1_000_000_000, 1, 1, 0, 1].map(quote).join(", ")});` +
        `INSERT INTO users VALUES (${[userId, id, "owner", 0, 0].map(quote).join(", ")});`,
    );
    return id;
  }

  /** user.go:990 GetOrCreateAccountByUser: the user's account, or a new one they own with `domain` as given. */
  getOrCreateAccountByUser(userId: string, domain: string): string {
    const existing = this.user(userId);
    if (existing) {
      const account = this.account(existing.account_id)!;
      if (domain !== "" && account.domain !== domain.toLowerCase() && existing.role === "owner")
        this.sql(`UPDATE accounts SET domain = ${quote(domain.toLowerCase())} WHERE id = ${quote(account.id)};`);
      return account.id;
    }
    return this.newAccount(userId, domain.toLowerCase(), "", false);
  }

  /**
   * A person's first request with a JWT from the embedded IdP (Dex), whose claims carry no
   * domain (shared/auth/jwt/extractor.go reads one only from wt_account_domain claims, which Dex
   * does not set). `mode` is what the server decided at its start.
   */
  accountOfSsoUser(userId: string, mode: SingleAccountMode): string {
    let domain = "";
    let category = "";
    if (mode.enabled) {
      // updateUserAuthWithSingleMode: the domain of any existing account, else the mode's domain.
      category = "private";
      domain = this.accounts()[0]?.domain ?? mode.domain;
    }
    // getAccountIDWithAuthorizationClaims: a public or invalid domain → an account per user.
    if (category !== "private" || !isDomainValid(domain)) return this.getOrCreateAccountByUser(userId, domain);
    const primary = this.sql<{ id: string }>(
      `SELECT id FROM accounts WHERE domain = ${quote(domain)} AND is_domain_primary_account = 1 AND domain_category = 'private';`,
    )[0];
    const own = this.user(userId);
    if (own) return own.account_id;
    if (primary) {
      // addNewUserToDomainAccount (1364): a regular user, blocked pending approval when the account requires it.
      const pending = this.account(primary.id)!.settings_extra_user_approval_required ? 1 : 0;
      this.sql(`INSERT INTO users VALUES (${[userId, primary.id, "user", pending, pending].map(quote).join(", ")});`);
      return primary.id;
    }
    // addNewPrivateAccount (1333).
    return this.newAccount(userId, domain, "private", true);
  }

  approve(userId: string): void {
    this.sql(`UPDATE users SET blocked = 0, pending_approval = 0 WHERE id = ${quote(userId)};`);
  }

  updateAccount(accountId: string, columns: Partial<AccountRow>): void {
    const assignments = Object.entries(columns).map(([column, value]) => `${column} = ${quote(value as number)}`);
    this.sql(`UPDATE accounts SET ${assignments.join(", ")} WHERE id = ${quote(accountId)};`);
  }
}

/**
 * What netbird-server decides once, at its start: the combined server resolves the mode's
 * domain from the store (management/internals/server/server.go ResolveDomains: the default
 * self-hosted domain on a fresh install or when the account's domain is empty), and single
 * account mode holds only while the store has at most one account (account.go:242).
 */
export interface SingleAccountMode {
  enabled: boolean;
  domain: string;
}

export function singleAccountModeAtStart(accounts: NetbirdAccounts): SingleAccountMode {
  const all = accounts.accounts();
  return { enabled: all.length <= 1, domain: all[0]?.domain || defaultSelfHostedDomain };
}
