/** A temp copy of what Pulumi ships to /etc/bifrost, with env files from the project's renderers. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { renderEnv, renderSecretsEnv, type SecretValues, type VpsSettings } from "../../components/secrets/render";
import { repoRoot } from "./tools";

export const settings: VpsSettings = {
  domain: "bifrost.example.test",
  acmeEmail: "ops@example.test",
  netbirdOwnerEmail: "owner@example.test",
  netbirdUserApproval: true,
  netbirdUsersGroup: "netbird-users",
  netbirdAdminSources: ["198.51.100.0/24", "2001:db8::/64"],
  authentikAdminSources: ["203.0.113.0/24"],
  publicServices: [
    { name: "grafana", upstream: "http://100.64.0.10:3000" },
    { name: "home", upstream: "https://100.64.0.11" },
  ],
  dataRoot: "/var/lib/bifrost",
  // The benchmarking range (RFC 2544), never a private or public network.
  networkSubnet: "198.18.0.0/24",
  traefikAddress: "198.18.0.10",
  databaseSubnet: "198.18.1.0/24",
  volumeDevice: "/dev/disk/by-id/scsi-0HC_Volume_4242",
};

/** Hostile characters for env files and SQL: every one Compose, bash or Postgres could treat specially. */
export const hostileValues = [
  "with space and trailing space ",
  " leading space",
  "dollar $HOME and ${HOME} and $$ and $",
  "hash # not a comment #",
  "single ' quote",
  'double " quote',
  "back\\slash and trailing backslash\\",
  '\\" backslash then quote',
  "\\n is not a newline, \\t not a tab, \\0123 not octal, \\x41 not hex",
  "mixed $'\"\\# all at once",
  "`backticks` and $(command substitution) and !history",
  "=starts with equals",
  "ünïcödé ✓",
];

export interface Bundle {
  readonly root: string;
  /** The copy of cloud/bifrost. */
  readonly dir: string;
  readonly compose: string;
  readonly env: string;
  readonly secretsEnv: string;
}

export function copyBundle(secrets: SecretValues, vps: VpsSettings = settings): Bundle {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "conformance-"));
  const dir = path.join(root, "bifrost");
  fs.cpSync(path.join(repoRoot, "cloud/bifrost"), dir, { recursive: true });
  const bundle = {
    root,
    dir,
    compose: path.join(dir, "docker-compose.yml"),
    env: path.join(dir, ".env"),
    secretsEnv: path.join(dir, ".secrets.env"),
  };
  fs.writeFileSync(bundle.env, renderEnv(vps, secrets), { mode: 0o600 });
  fs.writeFileSync(bundle.secretsEnv, renderSecretsEnv(secrets), { mode: 0o600 });
  return bundle;
}

export function removeBundle(bundle: Bundle): void {
  fs.rmSync(bundle.root, { recursive: true, force: true });
}
