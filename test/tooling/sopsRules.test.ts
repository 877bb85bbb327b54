/**
 * The age recipient check and the SOPS file helpers at their edges: each Bech32 refusal on
 * its own (the checksum is BIP 173's, restated here to make keys that are wrong in exactly one
 * way), the keys of a SOPS file, typo suggestions, and the `.sops.yaml` rule sops would pick.
 */
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ageRecipientProblem, encodeAgeRecipient } from "../../scripts/lib/ageRecipient";
import { addRecipient, claimRecipient, closestCatalogKey, recipientsFor, removeRecipient, reportFileKeys, sopsConfigFile, sopsFileKeys } from "../../scripts/lib/sopsFile";

const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/** BIP 173's checksum over the human-readable part and 5-bit data, as the reference code computes it. */
function bech32(hrp: string, data: number[]): string {
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  const polymod = (values: number[]) => {
    let chk = 1;
    for (const v of values) {
      const b = chk >>> 25;
      chk = (((chk & 0x1ffffff) << 5) ^ v) >>> 0;
      for (let i = 0; i < 5; i++) if ((b >>> i) & 1) chk = (chk ^ gen[i]!) >>> 0;
    }
    return chk;
  };
  const expand = [...hrp].map((c) => c.charCodeAt(0) >> 5).concat([0], [...hrp].map((c) => c.charCodeAt(0) & 31));
  const mod = polymod([...expand, ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = [0, 1, 2, 3, 4, 5].map((p) => (mod >>> (5 * (5 - p))) & 31);
  return `${hrp}1${[...data, ...checksum].map((d) => charset[d]).join("")}`;
}

/** 8-bit bytes as 5-bit groups, zero-padded at the end. */
function toFive(bytes: number[]): number[] {
  const bits = bytes.map((b) => b.toString(2).padStart(8, "0")).join("");
  const padded = bits.padEnd(Math.ceil(bits.length / 5) * 5, "0");
  return padded.match(/.{5}/g)!.map((g) => parseInt(g, 2));
}

describe("ageRecipientProblem", () => {
  const point = Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256);

  it("accepts a 32-byte point encoded with the age prefix, exactly as encodeAgeRecipient makes it", () => {
    expect(bech32("age", toFive(point))).toBe(encodeAgeRecipient(Uint8Array.from(point)));
    expect(ageRecipientProblem(bech32("age", toFive(point)))).toBeUndefined();
    expect(ageRecipientProblem(bech32("age", toFive(new Array(32).fill(0))))).toBeUndefined();
    expect(ageRecipientProblem(bech32("age", toFive(new Array(32).fill(255))))).toBeUndefined();
  });

  it("names the byte count of a point too short or too long", () => {
    expect(ageRecipientProblem(bech32("age", toFive(point.slice(1))))).toBe("holds 31 bytes, an X25519 public key has 32");
    expect(ageRecipientProblem(bech32("age", toFive([...point, 1])))).toBe("holds 33 bytes, an X25519 public key has 32");
  });

  it("encodes any length as the reference does, a last group of 1 to 4 bits or none", () => {
    for (const bytes of [new Array(32).fill(255), new Array(40).fill(255), point.slice(0, 5)])
      expect(encodeAgeRecipient(Uint8Array.from(bytes))).toBe(bech32("age", toFive(bytes)));
  });

  it("decodes data that ends on a byte boundary, and a separator right after a one-letter type", () => {
    // 64 groups are 320 bits: exactly 40 bytes, nothing left over.
    expect(ageRecipientProblem(bech32("age", toFive(new Array(40).fill(7))))).toBe("holds 40 bytes, an X25519 public key has 32");
    expect(ageRecipientProblem(bech32("x", toFive(point)))).toBe('type "x" is not "age" (an X25519 public key starts with age1)');
  });

  it("refuses padding bits that are not zero, and a whole extra group of padding", () => {
    const data = toFive(point);
    // 256 bits in 52 groups: the last group carries 1 data bit and 4 padding bits.
    const dirty = [...data.slice(0, -1), data[data.length - 1]! | 1];
    expect(ageRecipientProblem(bech32("age", dirty))).toBe("non-zero padding");
    // 54 groups are 270 bits: 33 bytes and 6 bits left over, more than one group of padding.
    expect(ageRecipientProblem(bech32("age", [...data, 0, 0]))).toBe("illegal zero padding");
    // 57 groups are 285 bits: 35 bytes and exactly one group of padding left over.
    expect(ageRecipientProblem(bech32("age", [...data, 0, 0, 0, 0, 0]))).toBe("illegal zero padding");
  });

  it("refuses each malformation on its own, with its own words", () => {
    const good = bech32("age", toFive(point));
    expect(ageRecipientProblem(good.replace("age1", "AGE1"))).toBe("not all lowercase (age reads only lowercase age1… keys)");
    expect(ageRecipientProblem(bech32("agf", toFive(point)))).toBe('type "agf" is not "age" (an X25519 public key starts with age1)');
    expect(ageRecipientProblem(`1${good.slice(4)}`)).toBe("no Bech32 separator '1' followed by a checksum");
    expect(ageRecipientProblem("age1qqqqq")).toBe("no Bech32 separator '1' followed by a checksum");
    expect(ageRecipientProblem(bech32("age", []))).toBe("holds 0 bytes, an X25519 public key has 32");
    expect(ageRecipientProblem(`${good.slice(0, 10)}i${good.slice(11)}`)).toBe('character "i" is not in the Bech32 alphabet');
    const swapped = `${good.slice(0, 10)}${good[10] === "q" ? "p" : "q"}${good.slice(11)}`;
    expect(ageRecipientProblem(swapped)).toBe("Bech32 checksum does not match (a typo or a truncated key)");
    expect(ageRecipientProblem(good.slice(0, -1))).toBe("Bech32 checksum does not match (a typo or a truncated key)");
  });
});

describe("sopsFileKeys", () => {
  it("lists the data keys in file order, empty and null as no value", () => {
    expect(sopsFileKeys("B: ENC[x]\nA: ''\nC: null\nD: ~\nsops: {}\n")).toEqual([
      { key: "B", hasValue: true },
      { key: "A", hasValue: false },
      { key: "C", hasValue: false },
      { key: "D", hasValue: false },
    ]);
  });

  it("refuses a file that is no map or carries no sops metadata", () => {
    for (const text of ["- a\n", "just text\n", ""]) expect(() => sopsFileKeys(text), text).toThrow("its top level is not a YAML map");
    expect(() => sopsFileKeys("A: x\n")).toThrow("it is not encrypted by sops (no sops metadata)");
  });
});

describe("closestCatalogKey and reportFileKeys", () => {
  it("suggests the key in another case, or one up to three edits away, the closest first", () => {
    expect(closestCatalogKey("hcloud_token")).toBe("HCLOUD_TOKEN");
    expect(closestCatalogKey("HCLOUD_TOKENXYZ")).toBe("HCLOUD_TOKEN");
    expect(closestCatalogKey("HCLOUD_TOKENWXYZ")).toBeUndefined();
    expect(closestCatalogKey("HCLOUD_TOKN")).toBe("HCLOUD_TOKEN");
    expect(closestCatalogKey("XCLOUD_TOKEN")).toBe("HCLOUD_TOKEN");
    expect(closestCatalogKey("CLOUD_TOKEN")).toBe("HCLOUD_TOKEN");
    expect(closestCatalogKey("OPENBAO_TOKEM")).toBe("OPENBAO_TOKEN");
    expect(closestCatalogKey("NOTHING_LIKE_IT")).toBeUndefined();
  });

  it("reports unknown keys with a suggestion and keys kept for others", () => {
    expect(reportFileKeys(["HCLOUD_TOKEN", "HCLOUD_TOKN", "STRANGER_THINGS_HERE", "PROXMOX_PASSWORD"])).toEqual({
      unknown: [
        { key: "HCLOUD_TOKN", suggestion: "HCLOUD_TOKEN" },
        { key: "STRANGER_THINGS_HERE", suggestion: undefined },
      ],
      elsewhere: ["PROXMOX_PASSWORD"],
    });
  });
});

describe(".sops.yaml rules", () => {
  const file = "secrets/bootstrap.sops.yaml";
  const a = encodeAgeRecipient(Buffer.alloc(32, 1));
  const b = encodeAgeRecipient(Buffer.alloc(32, 2));
  const c = encodeAgeRecipient(Buffer.alloc(32, 3));

  it("is the file sops reads its creation rules from", () => {
    expect(sopsConfigFile).toBe(".sops.yaml");
  });

  it("takes the first rule whose path_regex matches, or one without a path_regex, skipping what is no map", () => {
    const config = `creation_rules:\n  - just a string\n  - path_regex: ^other/\n    age: ${b}\n  - path_regex: ""\n    age: ${a}\n  - age: ${c}\n`;
    expect(recipientsFor(config, file)).toEqual([a]);
    expect(recipientsFor(`creation_rules:\n  - age: ${c}\n  - path_regex: ^secrets/\n    age: ${a}\n`, file)).toEqual([c]);
    expect(recipientsFor(`creation_rules:\n  - path_regex: bootstrap\n    age: ${b}\n`, file)).toEqual([b]);
  });

  it("reads no recipient from a rule without age, and trims and drops empty ones", () => {
    expect(recipientsFor(`creation_rules:\n  - path_regex: ^secrets/\n`, file)).toEqual([]);
    expect(recipientsFor(`creation_rules:\n  - age: " ${a} ,, ${b} "\n`, file)).toEqual([a, b]);
    expect(recipientsFor(`creation_rules:\n  - age:\n      - " ${a} "\n      - ""\n`, file)).toEqual([a]);
  });

  it("refuses what it cannot edit safely, saying why", () => {
    expect(() => recipientsFor("keys: []\n", file)).toThrow(".sops.yaml has no creation_rules list");
    expect(() => recipientsFor(`creation_rules:\n  - age: 7\n`, file)).toThrow("the rule's age field is neither a string nor a list");
    expect(() => recipientsFor(`creation_rules:\n  - key_groups: []\n    age: ${a}\n`, file)).toThrow("the rule uses key_groups; edit .sops.yaml by hand");
  });

  it("writes the first recipient of a rule without age as a folded string", () => {
    const added = addRecipient(`creation_rules:\n  - path_regex: ^secrets/\n`, file, a);
    if (!added.ok) throw new Error(added.refusal);
    expect(added.config).toContain("age: >-");
  });

  it("writes recipients back as a folded string, or as the list it found", () => {
    const added = addRecipient(`creation_rules:\n  - age: ${a}\n`, file, b);
    if (!added.ok) throw new Error(added.refusal);
    expect(added.recipients).toEqual([a, b]);
    expect(added.config).toContain("age: >-");
    expect(parse(added.config).creation_rules[0].age).toBe(`${a}, ${b}`);
    const fromList = addRecipient(`creation_rules:\n  - age:\n      - ${a}\n`, file, b);
    if (!fromList.ok) throw new Error(fromList.refusal);
    expect(parse(fromList.config).creation_rules[0].age).toEqual([a, b]);
  });

  describe("claimRecipient (just init)", () => {
    const placeholder = "age1replacewithyouragepublickeyreplacewithyouragepublickeyxxxxxxxxxx";
    const sandbox = "secrets/sandbox.sops.yaml";
    const shipped = `creation_rules:\n  - path_regex: ^secrets/sandbox\\.sops\\.yaml$\n    age: >-\n      ${placeholder}\n  - path_regex: ^secrets/[^/]+\\.sops\\.yaml$\n    age: >-\n      ${placeholder}\n`;

    it("puts the key in place of the placeholder in the file's own rule only", () => {
      const claimed = claimRecipient(shipped, file, a);
      if (!claimed?.ok) throw new Error("not claimed");
      expect(claimed.recipients).toEqual([a]);
      expect(recipientsFor(claimed.config, file)).toEqual([a]);
      expect(recipientsFor(claimed.config, sandbox)).toEqual([placeholder]);
    });

    it("keeps real recipients, adds the key after them, and drops a placeholder beside the key", () => {
      const withReal = claimRecipient(`creation_rules:\n  - age: ${b}, ${placeholder}\n`, file, a);
      if (!withReal?.ok) throw new Error("not claimed");
      expect(withReal.recipients).toEqual([b, a]);
      const beside = claimRecipient(`creation_rules:\n  - age: ${a}, ${placeholder}\n`, file, a);
      if (!beside?.ok) throw new Error("not claimed");
      expect(beside.recipients).toEqual([a]);
    });

    it("changes nothing when the key is there and no placeholder is left", () => {
      expect(claimRecipient(`creation_rules:\n  - age: ${b}, ${a}\n`, file, a)).toBeUndefined();
    });

    it("refuses what is no age public key, saying so", () => {
      expect(claimRecipient(shipped, file, "age1notakey")).toEqual({ ok: false, refusal: expect.stringMatching(/^age1notakey is not an age public key: /) });
    });
  });

  it("removes one of several, and refuses with the exact words", () => {
    const two = `creation_rules:\n  - age: ${a}, ${b}\n`;
    const removed = removeRecipient(two, file, a);
    expect(removed).toEqual({ ok: true, config: expect.any(String), recipients: [b] });
    expect(addRecipient(two, file, "age1nope")).toEqual({ ok: false, refusal: `age1nope is not an age public key: ${ageRecipientProblem("age1nope")}` });
    expect(addRecipient(two, file, b)).toEqual({ ok: false, refusal: `${b} is already a recipient of ${file}` });
    expect(removeRecipient(two, file, c)).toEqual({ ok: false, refusal: `${c} is not a recipient of ${file}; recipients: ${a}, ${b}` });
    expect(removeRecipient(`creation_rules:\n  - age: ${a}\n`, file, a)).toEqual({ ok: false, refusal: `${a} is the last recipient of ${file}; add another one first, or nobody could decrypt it` });
  });
});
