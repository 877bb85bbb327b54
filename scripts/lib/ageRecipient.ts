/**
 * age X25519 recipients ("age1…"), checked as age itself parses them: a lowercase Bech32
 * string with human-readable part "age" whose data is a 32-byte Curve25519 point
 * (FiloSottile/age v1.3.1 x25519.go ParseX25519Recipient; internal/bech32/bech32.go, BIP 173
 * with the length limit lifted). Only X25519 recipients: plugin (age1yubikey1…) and SSH
 * recipients are not handled by the tooling.
 */

const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const generator = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: readonly number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = (((chk & 0x1ffffff) << 5) ^ v) >>> 0;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk = (chk ^ generator[i]) >>> 0;
  }
  return chk;
}

function hrpExpand(hrp: string): number[] {
  const codes = [...hrp].map((c) => c.charCodeAt(0));
  return [...codes.map((c) => c >> 5), 0, ...codes.map((c) => c & 31)];
}

/** Regroups bits (8 → 5 with padding, or 5 → 8 refusing non-zero padding), as bech32.go convertBits. */
function convertBits(data: readonly number[], from: number, to: number, pad: boolean): number[] | string {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const max = (1 << to) - 1;
  for (const value of data) {
    acc = (acc << from) | value;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & max);
    }
    acc &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & max);
  } else if (bits >= from) {
    return "illegal zero padding";
  } else if ((acc << (to - bits)) & max) {
    return "non-zero padding";
  }
  return out;
}

/** Why `s` is not an age X25519 recipient, or undefined when it is one. Never throws. */
export function ageRecipientProblem(s: string): string | undefined {
  if (s !== s.toLowerCase()) return "not all lowercase (age reads only lowercase age1… keys)";
  const pos = s.lastIndexOf("1");
  if (pos < 1 || pos + 7 > s.length) return "no Bech32 separator '1' followed by a checksum";
  const hrp = s.slice(0, pos);
  if (hrp !== "age") return `type "${hrp}" is not "age" (an X25519 public key starts with age1)`;
  const data: number[] = [];
  for (const c of s.slice(pos + 1)) {
    const d = charset.indexOf(c);
    if (d < 0) return `character "${c}" is not in the Bech32 alphabet`;
    data.push(d);
  }
  if (polymod([...hrpExpand(hrp), ...data]) !== 1) return "Bech32 checksum does not match (a typo or a truncated key)";
  const bytes = convertBits(data.slice(0, -6), 5, 8, false);
  if (typeof bytes === "string") return bytes;
  if (bytes.length !== 32) return `holds ${bytes.length} bytes, an X25519 public key has 32`;
  return undefined;
}

/** The age1… form of a 32-byte public key (bech32.go Encode); the tests use it to make recipients. */
export function encodeAgeRecipient(point: Uint8Array): string {
  const data = convertBits([...point], 8, 5, true) as number[];
  const mod = polymod([...hrpExpand("age"), ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = [0, 1, 2, 3, 4, 5].map((p) => (mod >>> (5 * (5 - p))) & 31);
  return `age1${[...data, ...checksum].map((d) => charset[d]).join("")}`;
}
