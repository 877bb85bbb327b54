/**
 * Runs a stack program under `pulumi.runtime.setMocks` and records what it registers.
 * No CLI, no provider plugin: the mocks answer every resource and invoke.
 */
import * as pulumi from "@pulumi/pulumi";
import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import { vi } from "vitest";

/** The marker Pulumi's serializer puts on a secret value. */
export const secretSig = "4dabf18193072939515e22adb298388d";
const secretValue = "1b47061264138c4ac30d75fd1eb44270";

export interface Registered {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  readonly id: string;
  /** Filled from the raw registration request, which the Mocks interface does not show. */
  urn?: string;
  parent?: string;
  dependencies?: string[];
  protect?: boolean;
  deleteBeforeReplace?: boolean;
  ignoreChanges?: string[];
  retainOnDelete?: boolean;
}

export interface Run {
  readonly resources: Registered[];
  readonly outputs?: Record<string, unknown>;
  readonly error?: Error;
  /** Everything the program printed (stdout, stderr, console, pulumi.log). */
  readonly printed: string;
}

/**
 * Outputs of the mocked hetzner-data stack as stacks/hetznerData.ts exports them: ids as
 * numbers, and for IPv6 the primary IP's `ipAddress`, which is the /64's network address
 * (terraform-provider-hcloud v1.67.0 internal/primaryip/model.go: `hc.IP.String()`, the
 * network from hcloud-go's schema), not the address the server answers on.
 */
export const dataStackOutputs = {
  location: "fsn1",
  volumeId: 4242,
  ipv4Id: 5151,
  ipv4Address: "203.0.113.7",
  ipv6Id: 6262,
  ipv6Address: "2001:db8:42::",
};

/** The server's own IPv6 address in that network (…::1), where DNS must point. */
export const serverIpv6Address = "2001:db8:42::1";

export const hetznerConfig: Record<string, string> = {
  "core:kind": "hetzner",
  "core:name": "bifrost",
  "core:domain": "edge.example.test",
  "core:cloudflareZone": "example.test",
  "core:acmeEmail": "ops@example.test",
  "core:netbirdOwnerEmail": "netbird-owner@example.test",
  // With AUTHENTIK_GITHUB_SECRET among the canaries: the GitHub login is on in the test stack.
  "core:authentikGithubClientId": "Ov23liTestClientId01",
  "core:serverType": "cx23",
  "core:image": "debian-13",
  "core:sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyTestKeyTestKeyTestKeyTestKeyTest test@host",
  "core:operatorSshSources": JSON.stringify(["192.0.2.10/32", "2001:db8:1::/48"]),
  "core:publicServices": JSON.stringify([{ name: "grafana", upstream: "http://100.64.0.10:3000" }]),
  "core:dataStack": "test-org/core/hetzner-data",
};

export const hetznerDataConfig: Record<string, string> = {
  "core:kind": "hetzner-data",
  "core:name": "bifrost",
  "core:location": "fsn1",
  "core:volumeSizeGb": "20",
};

/** An SSH key already in the Hetzner project, as `hcloud.getSshKeys` lists it. */
export interface ProjectSshKey {
  readonly id: number;
  readonly name: string;
  readonly fingerprint: string;
  readonly publicKey: string;
  readonly labels: Record<string, string>;
}

/** A stable numeric id per value, so two runs of the same program get the same ids. */
function stableId(...parts: unknown[]): string {
  const digest = createHash("sha256").update(JSON.stringify(parts)).digest();
  return String(digest.readUInt32BE(0) % 90_000_000 + 10_000_000);
}

/**
 * A server's id follows what forces a new server: image, location, user_data and ssh_keys are
 * ForceNew, server_type is an in-place resize (terraform-provider-hcloud v1.67.0
 * internal/server/resource.go); any other resource keeps its id for the same name.
 */
function idFor(type: string, name: string, inputs: Record<string, unknown>, serverGeneration: number): string {
  if (type === "hcloud:index/server:Server") {
    return stableId(type, name, inputs.image, inputs.location, inputs.userData, inputs.sshKeys, serverGeneration);
  }
  return stableId(type, name);
}

/**
 * RandomBytes's `hex` and `base64` of `length` bytes (output names as @pulumi/random 4.21.2
 * randomBytes.d.ts declares them), deterministic per resource name so two runs agree.
 */
function randomBytesState(name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  const length = Number(inputs.length);
  let bytes = Buffer.alloc(0);
  for (let block = 0; bytes.length < length; block++) {
    bytes = Buffer.concat([bytes, createHash("sha256").update(`random-bytes\0${name}\0${block}`).digest()]);
  }
  bytes = bytes.subarray(0, length);
  return { hex: bytes.toString("hex"), base64: bytes.toString("base64") };
}

/** An SSH wire string: uint32 length, then the bytes (RFC 4251 section 5). */
const sshString = (bytes: Buffer | string) => {
  const body = Buffer.from(bytes);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
};

/**
 * tls:index/privateKey:PrivateKey for `algorithm: "ED25519"`, as terraform-provider-tls makes
 * it (internal/provider/common_key.go: `public_key_openssh` is ssh.MarshalAuthorizedKey,
 * "ssh-ed25519 <base64>\n"; `private_key_openssh` is the unencrypted openssh-key-v1 PEM of
 * ssh.MarshalPrivateKey, format in OpenSSH's PROTOCOL.key) but deterministic: the key's seed
 * comes from the resource's name, so two runs agree. A real key pair, so a test can check
 * that the halves belong together.
 */
export function mockEd25519Key(name: string): { privateKeyOpenssh: string; publicKeyOpenssh: string; privateKeyPem: string } {
  const seed = createHash("sha256").update(`tls-private-key\0${name}`).digest();
  // PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410 section 7).
  const privateKey = crypto.createPrivateKey({ key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]), format: "der", type: "pkcs8" });
  const publicRaw = crypto.createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(-32);
  const publicBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(publicRaw)]);
  const check = createHash("sha256").update(seed).digest().subarray(0, 4);
  let section = Buffer.concat([check, check, sshString("ssh-ed25519"), sshString(publicRaw), sshString(Buffer.concat([seed, publicRaw])), sshString("")]);
  for (let pad = 1; section.length % 8 !== 0; pad++) section = Buffer.concat([section, Buffer.from([pad])]);
  const body = Buffer.concat([Buffer.from("openssh-key-v1\0"), sshString("none"), sshString("none"), sshString(""), Buffer.from([0, 0, 0, 1]), sshString(publicBlob), sshString(section)]);
  const lines = body.toString("base64").match(/.{1,70}/g)!.join("\n");
  return {
    privateKeyOpenssh: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKeyOpenssh: `ssh-ed25519 ${publicBlob.toString("base64")}\n`,
    privateKeyPem: String(privateKey.export({ format: "pem", type: "pkcs8" })),
  };
}

/** A secret property value as the engine sends it over the wire (the SDK's rpc.js specialSigKey/specialSecretSig). */
const wireSecret = (value: unknown) => ({ [secretSig]: secretValue, value });

/**
 * RandomPassword's `result`, as terraform-provider-random makes it but deterministic: drawn
 * from the alphabet its inputs allow (upper, lower, numeric and special default to true; the
 * special set is `!@#$%&*()-_=+[]{}<>:?` unless overrideSpecial; pulumi/pulumi-random v4.21.1
 * provider/cmd/pulumi-resource-random/schema.json, random:index/randomPassword:RandomPassword),
 * seeded by the resource's name and its generation, so two runs agree and a replacement
 * (`pulumi up --replace`) gives a new value. The min* counts are not modelled.
 */
export function mockRandomPassword(name: string, generation: number, inputs: Record<string, unknown>): string {
  const on = (k: string) => inputs[k] !== false;
  const special = typeof inputs.overrideSpecial === "string" ? inputs.overrideSpecial : "!@#$%&*()-_=+[]{}<>:?";
  const alphabet = [
    on("upper") ? "ABCDEFGHIJKLMNOPQRSTUVWXYZ" : "",
    on("lower") ? "abcdefghijklmnopqrstuvwxyz" : "",
    on("numeric") && on("number") ? "0123456789" : "",
    on("special") ? special : "",
  ].join("");
  const length = Number(inputs.length);
  let out = "";
  for (let block = 0; out.length < length; block++) {
    for (const byte of createHash("sha256").update(`random-password\0${name}\0${generation}\0${block}`).digest()) out += alphabet[byte % alphabet.length];
  }
  return out.slice(0, length);
}

function mocks(resources: Registered[], opts: RunOptions): pulumi.runtime.Mocks {
  const dataOutputs = opts.dataOutputs ?? dataStackOutputs;
  const sshKeys = opts.sshKeys ?? [];
  return {
    newResource(args) {
      if (args.type === "pulumi:pulumi:StackReference") {
        const id = String(args.inputs.name);
        resources.push({ type: args.type, name: args.name, inputs: args.inputs, id });
        return { id, state: { name: args.inputs.name, outputs: dataOutputs, secretOutputNames: [] } };
      }
      const id = idFor(args.type, args.name, args.inputs, opts.serverGeneration ?? 0);
      resources.push({ type: args.type, name: args.name, inputs: args.inputs, id });
      switch (args.type) {
        case "random:index/randomPassword:RandomPassword": {
          // Every schema property comes back, inputs with their defaults (schema.json above).
          // `result` and `bcryptHash` are secret: the SDK lists them in additionalSecretOutputs
          // (@pulumi/random 4.21.2 randomPassword.js; pulumi-random v4.21.1
          // sdk/nodejs/randomPassword.ts), which the engine applies when the provider answers
          // (pulumi/pulumi pkg/resource/deploy/source_eval.go). The mock monitor ignores that
          // list (@pulumi/pulumi runtime/mocks.js registerResource), so the mock marks them.
          // bcryptHash has a bcrypt hash's shape ($2a$10$ + 53 characters), not a real hash.
          const result = mockRandomPassword(args.name, opts.randomGeneration?.[args.name] ?? 0, args.inputs);
          const hash = createHash("sha256").update(result).digest("base64").replace(/[+=]/g, "").slice(0, 43);
          const defaults = { lower: true, upper: true, numeric: true, number: true, special: true, minLower: 0, minUpper: 0, minNumeric: 0, minSpecial: 0 };
          return {
            // terraform-provider-random sets the id of a random_password to "none".
            id: "none",
            state: { ...defaults, ...args.inputs, result: wireSecret(result), bcryptHash: wireSecret(`$2a$10$${hash.padEnd(53, ".")}`) },
          };
        }
        case "hcloud:index/primaryIp:PrimaryIp":
          // IPv6: the network address (see dataStackOutputs).
          return { id, state: { ...args.inputs, ipAddress: args.inputs.type === "ipv4" ? "198.51.100.1" : "2001:db8:99::" } };
        case "tls:index/privateKey:PrivateKey": {
          // The private encodings are secret outputs (@pulumi/tls 5.6.1 privateKey.js,
          // additionalSecretOutputs); the mock monitor does not apply that list, so the mock marks them.
          const key = mockEd25519Key(args.name);
          return { id, state: { ...args.inputs, publicKeyOpenssh: key.publicKeyOpenssh, privateKeyOpenssh: wireSecret(key.privateKeyOpenssh), privateKeyPem: wireSecret(key.privateKeyPem) } };
        }
        case "random:index/randomBytes:RandomBytes":
          return { id, state: { ...args.inputs, ...randomBytesState(args.name, args.inputs) } };
        default:
          return { id, state: args.inputs };
      }
    },
    call(args) {
      if (args.token === "cloudflare:index/getZone:getZone") {
        return { id: "zone-for-test", zoneId: "zone-for-test", name: args.inputs.filter?.name };
      }
      // Every key of the project (@pulumi/hcloud 1.41 getSshKeys.d.ts: GetSshKeysResult.sshKeys).
      if (args.token === "hcloud:index/getSshKeys:getSshKeys") {
        return { id: "ssh-keys", sshKeys: sshKeys.map((k) => ({ ...k })) };
      }
      throw new Error(`unexpected invoke ${args.token}`);
    },
  };
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getDependenciesList(): string[];
  getProtect(): boolean;
  getDeletebeforereplace(): boolean;
  getIgnorechangesList(): string[];
  getRetainondelete(): boolean | undefined;
}
type Callback = (err: unknown, response?: { getUrn(): string }) => void;

/** Adds parent, dependencies, protect and deleteBeforeReplace to each registered resource: the request has them, the mocks do not. */
function recordRequests(resources: Registered[]): void {
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: RegisterRequest, cb: Callback): void };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) =>
    register(req, (err, response) => {
      const r = resources.find((x) => x.type === req.getType() && x.name === req.getName() && x.urn === undefined);
      if (r && response) {
        r.urn = response.getUrn();
        r.parent = req.getParent();
        r.dependencies = req.getDependenciesList();
        r.protect = req.getProtect();
        r.deleteBeforeReplace = req.getDeletebeforereplace();
        r.ignoreChanges = req.getIgnorechangesList();
        r.retainOnDelete = req.getRetainondelete() ?? false;
      }
      cb(err, response);
    });
}

/** Lets the mock monitor finish every registration the program started. */
async function settle(resources: Registered[]): Promise<void> {
  let seen = -1;
  while (seen !== resources.length) {
    seen = resources.length;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RunOptions {
  readonly stack: "hetzner" | "hetzner-data" | "cluster" | "hetzner-sandbox";
  readonly config: Record<string, string>;
  /** The SOPS environment the program sees (plus SSH_AUTH_SOCK etc.). */
  readonly env: Record<string, string | undefined>;
  readonly preview?: boolean;
  readonly dataOutputs?: Record<string, unknown>;
  /** SSH keys already in the Hetzner project; none unless a test says so. */
  readonly sshKeys?: readonly ProjectSshKey[];
  /** Bump to have the server come back with a new id, as after `pulumi up --replace` or a loss. */
  readonly serverGeneration?: number;
  /** Per RandomPassword name: bump to have it generate a new result, as after `pulumi up --replace <urn>`. */
  readonly randomGeneration?: Readonly<Record<string, number>>;
}

/** Runs index.ts, the real entry point, for one stack and collects what it did. */
export async function runProgram(opts: RunOptions): Promise<Run> {
  const resources: Registered[] = [];
  const printed: string[] = [];
  const capture = (chunk: unknown) => {
    printed.push(String(chunk));
    return true;
  };
  const spies = [
    vi.spyOn(process.stdout, "write").mockImplementation(capture),
    vi.spyOn(process.stderr, "write").mockImplementation(capture),
    ...(["log", "info", "warn", "error", "debug"] as const).map((m) =>
      vi.spyOn(console, m).mockImplementation((...a: unknown[]) => void capture(a.map(String).join(" "))),
    ),
  ];
  const savedEnv = process.env;
  process.env = { ...opts.env, PULUMI_CONFIG: JSON.stringify(opts.config) };
  try {
    await pulumi.runtime.setMocks(mocks(resources, opts), "core", opts.stack, opts.preview ?? false);
    recordRequests(resources);
    // The runtime caches PULUMI_CONFIG after its first read; set it again for this run.
    pulumi.runtime.setAllConfig(opts.config);
    vi.resetModules();
    let outputs: Record<string, unknown> | undefined;
    let error: Error | undefined;
    try {
      // As Pulumi's Node runtime does: call an exported function, await what it returns
      // (@pulumi/pulumi cmd/run/run.js).
      const exported: unknown = (await import("../../index")).default;
      outputs = (await (typeof exported === "function" ? exported() : exported)) as Record<string, unknown>;
    } catch (e) {
      error = e as Error;
    }
    await settle(resources);
    const resolved = outputs ? await resolveOutputs(outputs) : undefined;
    return { resources, outputs: resolved, error, printed: printed.join("") };
  } finally {
    process.env = savedEnv;
    for (const s of spies) s.mockRestore();
  }
}

async function resolveOutputs(outputs: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve) => pulumi.output(outputs).apply((v) => resolve(v as Record<string, unknown>)));
}

/** Inputs with every secret-wrapped node removed: what Pulumi would store in clear. */
export function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (o[secretSig] === secretValue) return "[secret]";
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, withoutSecrets(v)]));
  }
  return value;
}

export function isSecretNode(value: unknown): boolean {
  return !!value && typeof value === "object" && (value as Record<string, unknown>)[secretSig] === secretValue;
}

export const byType = (run: Run, type: string) => run.resources.filter((r) => r.type === type);
export const one = (run: Run, type: string, nameIncludes = "") => {
  const found = byType(run, type).filter((r) => r.name.includes(nameIncludes));
  if (found.length !== 1) throw new Error(`expected one ${type} named *${nameIncludes}*, found ${found.length}`);
  return found[0];
};
