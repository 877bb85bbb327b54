/**
 * A model of Compose's env-file parser (compose-go v2 `dotenv`), for the statements our
 * renderer writes: `#` comments, `NAME=value` with an unquoted, single- or double-quoted
 * value. In double quotes the escapes of compose-go's escapeSeqRegex apply
 * (`\a \b \f \n \r \t \v \" \\ \$` and `\0` + octal), then `${VAR}`/`$VAR` are interpolated
 * from what was read before and `$$` stands for `$`. Single quotes are literal; unquoted
 * values end at ` #`. Written from compose-go's behaviour to check our quoting against,
 * not used by the product.
 */
const escapes: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", '"': '"', "\\": "\\" };

function unescapeDoubleQuoted(raw: string): string {
  return raw.replace(/\\(?:([abfnrtv"\\$])|0([0-7]{0,3}))/g, (_m, c: string | undefined, octal: string | undefined) => {
    if (c === "$") return "$$";
    if (c !== undefined) return escapes[c];
    return String.fromCharCode(parseInt(octal || "0", 8));
  });
}

function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(/\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, all: string, braced?: string, bare?: string) =>
    all === "$" ? "$" : (vars[(braced ?? bare) as string] ?? ""),
  );
}

export function parseComposeEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z0-9_.]+)\s*=\s*(.*)$/.exec(trimmed);
    if (!m) throw new Error(`compose would reject the line for ${trimmed.split("=")[0]}`);
    const [, name, rest] = m;
    if (rest.startsWith('"')) {
      const end = findClosingQuote(rest, '"');
      out[name] = interpolate(unescapeDoubleQuoted(rest.slice(1, end)), out);
    } else if (rest.startsWith("'")) {
      out[name] = rest.slice(1, findClosingQuote(rest, "'"));
    } else {
      out[name] = interpolate(rest.split(" #")[0].trimEnd(), out);
    }
  }
  return out;
}

/** compose-go skips a quote preceded by an unescaped backslash. */
function findClosingQuote(text: string, quote: string): number {
  let escaped = false;
  for (let i = 1; i < text.length; i++) {
    if (text[i] === quote && !escaped) return i;
    escaped = !escaped && text[i] === "\\";
  }
  throw new Error("unterminated quoted value");
}
