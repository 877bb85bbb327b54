/**
 * Each format rule of the secret catalog pinned at its boundaries: the shortest and longest
 * valid value and one character beyond, a valid value with something before or after it, the
 * edges of each character class, and each refusal on its own. Values are made of repeated
 * letters, never anything that looks like a real credential.
 */
import { describe, expect, it } from "vitest";
import { catalog, entry } from "../../components/secrets/catalog";

const valid = (key: string, value: string) => expect(entry(key).format!.test(value), `${key} should take ${JSON.stringify(value)}`).toBe(true);
const invalid = (key: string, value: string) => expect(entry(key).format!.test(value), `${key} should refuse ${JSON.stringify(value)}`).toBe(false);

/** Each character class a rule uses, with characters just inside it (its edges) and ASCII neighbours just outside. */
const edges = {
  alnum: { member: /^[A-Za-z0-9]$/, inside: ["A", "Z", "a", "z", "0", "9"], outside: ["@", "[", "`", "{", "/", ":"] },
  dash: { member: /^-$/, inside: ["-"], outside: [",", "."] },
  underscore: { member: /^_$/, inside: ["_"], outside: ["^", "`"] },
  printable: { member: /^[\x20-\x7e]$/, inside: [" ", "~", "!", "\\", "$", "`"], outside: ["\x1f", "\x7f"] },
};
/** Refused by every rule: quotes, whitespace controls, NUL and non-ASCII. */
const neverTaken = ['"', "'", "\t", "\n", "\x00", "é"];

interface CharsetRule {
  key: string;
  min: number;
  /** Undefined: no upper bound (checked at min + 200). */
  max?: number;
  classes: (keyof typeof edges)[];
  prefix?: string;
}

const charsetRules: CharsetRule[] = [
  { key: "HCLOUD_TOKEN", min: 64, max: 64, classes: ["alnum"] },
  { key: "CLOUDFLARE_API_TOKEN", min: 40, classes: ["alnum", "dash", "underscore"] },
  { key: "CLOUDFLARE_DNS_TOKEN", min: 40, classes: ["alnum", "dash", "underscore"] },
  { key: "AUTHENTIK_TOKEN", min: 32, classes: ["alnum"] },
  { key: "AUTHENTIK_BOOTSTRAP_PASSWORD", min: 16, classes: ["printable"] },
  { key: "NB_OWNER_PASSWORD", min: 12, max: 72, classes: ["printable"] },
  { key: "AUTHENTIK_SECRET_KEY", min: 50, classes: ["printable"] },
  { key: "AUTHENTIK_POSTGRESQL_PASSWORD", min: 16, classes: ["printable"] },
  { key: "NB_AUTHENTIK_CLIENT_SECRET", min: 64, max: 64, classes: ["alnum"] },
  { key: "NB_SESSION_COOKIE_KEY", min: 32, max: 32, classes: ["alnum"] },
  { key: "NB_PROXY_TOKEN", min: 36, max: 36, classes: ["alnum"], prefix: "nbx_" },
  { key: "AUTHENTIK_GITHUB_SECRET", min: 40, classes: ["alnum", "underscore"] },
];

const base64Rules = [
  { key: "NB_DATA_STORE_KEY", minBytes: 32, maxBytes: 32 },
  { key: "NB_RELAY_SECRET", minBytes: 32 },
  { key: "OPENBAO_UNSEAL_KEY", minBytes: 32, maxBytes: 32 },
  { key: "OPENBAO_RECOVERY_KEY", minBytes: 1 },
];

describe("every format rule is pinned here", () => {
  it("lists each catalog entry with a format exactly once", () => {
    const pinned = [...charsetRules.map((r) => r.key), ...base64Rules.map((r) => r.key), "NB_BIFROST_SETUP_KEY", "OPENBAO_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "BIFROST_SSH_HOST_KEY"];
    expect([...pinned].sort()).toEqual(catalog.filter((e) => e.format).map((e) => e.key).sort());
  });
});

describe.each(charsetRules)("$key", ({ key, min, max, classes, prefix = "" }) => {
  const body = (n: number) => "k".repeat(n);
  const at = (n: number) => prefix + body(n);

  it("takes the shortest and the longest value, refuses one character less or more", () => {
    valid(key, at(min));
    invalid(key, at(min - 1));
    if (max === undefined) {
      valid(key, at(min + 200));
    } else {
      valid(key, at(max));
      invalid(key, at(max + 1));
    }
  });

  it("refuses a valid value with something before or after it", () => {
    for (const extra of ["\n", '"', "\x00"]) {
      invalid(key, extra + at(min));
      invalid(key, at(min) + extra);
    }
    // A rule that takes printable characters takes a printable one before or after, within its length.
    if (!classes.includes("printable")) {
      invalid(key, "#" + at(min));
      invalid(key, at(min) + "#");
    }
  });

  it("takes each edge of its character classes and refuses the neighbours outside", () => {
    const inside = classes.flatMap((c) => edges[c].inside);
    const candidates = [...Object.values(edges).flatMap((e) => [...e.inside, ...e.outside]), ...neverTaken];
    const outside = new Set(candidates.filter((ch) => neverTaken.includes(ch) || !classes.some((c) => edges[c].member.test(ch))));
    for (const ch of inside) valid(key, prefix + ch + body(min - 1));
    for (const ch of outside) {
      invalid(key, prefix + ch + body(min - 1));
      invalid(key, prefix + body(min - 1) + ch);
    }
  });

  if (prefix) {
    it("requires its prefix exactly", () => {
      invalid(key, body(min + prefix.length));
      invalid(key, prefix.toUpperCase() + body(min));
      invalid(key, prefix.slice(0, -1) + body(min + 1));
    });
  }
});

describe("AUTHENTIK_POSTGRESQL_PASSWORD: a value PostgreSQL would take for a stored hash is refused (an Authentik lockout otherwise)", () => {
  const key = "AUTHENTIK_POSTGRESQL_PASSWORD";
  const hex = "0123456789abcdef0123456789abcdef";

  it("refuses md5 and exactly 32 lower-case hex digits", () => {
    invalid(key, `md5${hex}`);
  });

  it("takes what PostgreSQL would not read as an md5 hash: other lengths, upper case, other text around it", () => {
    valid(key, `md5${hex.slice(1)}`);
    valid(key, `md5${hex}0`);
    valid(key, `md5${hex.slice(1)}A`);
    valid(key, `MD5${hex}`);
    valid(key, `xmd5${hex}`);
    valid(key, `md5${hex.slice(1)}g`);
  });

  it("refuses what starts like a SCRAM-SHA-256 verifier, and only that", () => {
    invalid(key, "SCRAM-SHA-256$4096:kkkkkkkk$kkkk:kkkk");
    invalid(key, "SCRAM-SHA-256$kkkkkkkkkkkk");
    valid(key, "xSCRAM-SHA-256$kkkkkkkkkkkk");
    valid(key, "SCRAM-SHA-256-kkkkkkkkkkkk");
    valid(key, "scram-sha-256$kkkkkkkkkkkk");
  });

  it("still applies the length and quote rules on their own", () => {
    invalid(key, "k".repeat(15));
    invalid(key, `${"k".repeat(16)}'`);
    invalid(key, `${"k".repeat(16)}"`);
    valid(key, "k".repeat(16));
  });
});

describe.each(base64Rules)("$key: base64", ({ key, minBytes, maxBytes }) => {
  const of = (n: number) => Buffer.alloc(n, 0xa5).toString("base64");

  it("takes the fewest and the most bytes, refuses one byte fewer or more", () => {
    valid(key, of(minBytes));
    invalid(key, of(minBytes - 1));
    if (maxBytes === undefined) valid(key, of(minBytes + 100));
    else invalid(key, of(maxBytes + 1));
  });

  it("takes each padding form and refuses broken padding, other alphabets and text around it", () => {
    const sizes = maxBytes === undefined ? [minBytes + 3, minBytes + 4, minBytes + 5] : [minBytes];
    for (const n of sizes) valid(key, of(n));
    const good = of(sizes[0]!);
    for (const bad of [`${good}=`, `${good.slice(0, -1)}`, `=${good}`, ` ${good}`, `${good}\n`, good.replace(/^./, "-"), good.replace(/^./, "_"), `${good.slice(0, -4)}kk=k`])
      invalid(key, bad);
    // Both ends of the alphabet, and + and / (standard base64, not base64url).
    valid(key, `A+/z09Zz${good.slice(8)}`);
  });
});

describe("NB_BIFROST_SETUP_KEY: a NetBird setup key (UUID)", () => {
  const key = "NB_BIFROST_SETUP_KEY";
  const uuid = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";

  it("takes upper and lower case hex in the 8-4-4-4-12 shape", () => {
    valid(key, uuid);
    valid(key, uuid.toUpperCase());
    valid(key, "00000000-0000-0000-0000-000000000000");
    valid(key, "ffffffff-FFFF-ffff-FFFF-ffffffffffff");
  });

  it("refuses each group one digit short or long, a non-hex digit, other separators, text around it", () => {
    const groups = uuid.split("-");
    for (let i = 0; i < groups.length; i++) {
      invalid(key, groups.map((g, j) => (j === i ? g.slice(1) : g)).join("-"));
      invalid(key, groups.map((g, j) => (j === i ? `${g}0` : g)).join("-"));
      invalid(key, groups.map((g, j) => (j === i ? `g${g.slice(1)}` : g)).join("-"));
    }
    invalid(key, uuid.replaceAll("-", ""));
    invalid(key, uuid.replaceAll("-", "_"));
    invalid(key, ` ${uuid}`);
    invalid(key, `${uuid}\n`);
    invalid(key, `{${uuid}}`);
  });
});

describe("BIFROST_SSH_HOST_KEY: an OpenSSH private key, as @pulumi/tls writes it", () => {
  const pem = (body: string) => `-----BEGIN OPENSSH PRIVATE KEY-----\n${body}\n-----END OPENSSH PRIVATE KEY-----\n`;

  it("takes the PEM armour around base64 lines, with or without the final newline", () => {
    valid("BIFROST_SSH_HOST_KEY", pem("b3BlbnNzaC1rZXktdjEAAAAA\nQUJD+/=="));
    valid("BIFROST_SSH_HOST_KEY", pem("QUJD").trimEnd());
  });

  it("refuses other armour, an empty body, characters outside base64 and text around it", () => {
    invalid("BIFROST_SSH_HOST_KEY", pem("QUJD").replace(/OPENSSH/g, "RSA"));
    invalid("BIFROST_SSH_HOST_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----\n");
    invalid("BIFROST_SSH_HOST_KEY", pem("QU JD"));
    invalid("BIFROST_SSH_HOST_KEY", `x${pem("QUJD")}`);
    invalid("BIFROST_SSH_HOST_KEY", `${pem("QUJD")}x`);
  });
});

describe("OPENBAO_TOKEN: an OpenBao service token", () => {
  const key = "OPENBAO_TOKEN";

  it("takes hvs. and s. with at least 24 characters of its alphabet", () => {
    valid(key, `hvs.${"k".repeat(24)}`);
    valid(key, `s.${"k".repeat(24)}`);
    valid(key, `hvs.${"AZaz09_.-".repeat(3)}`);
    valid(key, `hvs.${"k".repeat(200)}`);
  });

  it("refuses 23 characters, another prefix, characters outside its alphabet, text around it", () => {
    invalid(key, `hvs.${"k".repeat(23)}`);
    invalid(key, `s.${"k".repeat(23)}`);
    invalid(key, `hvb.${"k".repeat(24)}`);
    invalid(key, `hvs${"k".repeat(25)}`);
    invalid(key, `xhvs.${"k".repeat(24)}`);
    invalid(key, `HVS.${"k".repeat(24)}`);
    for (const ch of ["/", "+", "=", " ", "\n", '"', ":"]) invalid(key, `hvs.${"k".repeat(24)}${ch}`);
  });
});

describe("PULUMI_CONFIG_PASSPHRASE: printable ASCII", () => {
  const key = "PULUMI_CONFIG_PASSPHRASE";

  it("takes 16 printable characters, quotes included (it never goes into an env file)", () => {
    valid(key, "k".repeat(16));
    valid(key, ` ~"'${"k".repeat(12)}`);
    invalid(key, "k".repeat(15));
  });

  it("refuses a control or non-ASCII character anywhere", () => {
    for (const ch of ["\x1f", "\x7f", "\n", "é"]) {
      invalid(key, ch + "k".repeat(16));
      invalid(key, "k".repeat(16) + ch);
    }
  });
});
