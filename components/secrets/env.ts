/**
 * env → config: reads the SOPS-decrypted environment (as `sops exec-env` sets it) for one
 * stack's catalog entries and checks every one of them before anything is registered.
 * Problems name the key and the rule it breaks, never the value.
 */
import * as pulumi from "@pulumi/pulumi";
import { sopsEntriesFor, type StackKind } from "./catalog";

export interface Problem {
  readonly key: string;
  readonly problem: string;
}

/** One error for every problem found in the stack's input, so the operator fixes them in one go. */
export class ConfigError extends pulumi.RunError {
  constructor(
    readonly source: string,
    readonly problems: readonly Problem[],
  ) {
    super(
      `${source}: ${problems.length} problem${problems.length === 1 ? "" : "s"}, nothing was created or changed:\n` +
        problems.map((p) => `  - ${p.key}: ${p.problem}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

export type Environment = Readonly<Record<string, string | undefined>>;

/** The raw checked values; kept inside the program's pure steps, never exported as-is. */
export interface CheckedSecrets {
  readonly values: Readonly<Record<string, string>>;
  readonly problems: readonly Problem[];
}

export function checkSecrets(stack: StackKind, env: Environment): CheckedSecrets {
  const values: Record<string, string> = {};
  const problems: Problem[] = [];
  // Generated entries are the stack's own: they are not in the environment, nothing to check.
  for (const e of sopsEntriesFor(stack)) {
    const value = env[e.key];
    const optional = e.optional !== undefined;
    // A key the tooling can make says how (scripts/secrets.sh, from the catalog's generator).
    const howToMake = e.generator ? `; run \`just secrets new ${e.key}\`` : "";
    if (value === undefined || (optional && value === "")) {
      if (!optional) problems.push({ key: e.key, problem: `missing from secrets/bootstrap.sops.yaml${howToMake}` });
      continue;
    }
    const wrong = [
      value === "" && `empty${howToMake}`,
      /[\r\n]/.test(value) && "contains a newline",
      value.includes("\0") && "contains a NUL byte",
    ].filter((p): p is string => p !== false);
    if (wrong.length === 0 && e.format && !e.format.test(value)) {
      const broken = e.format.failed?.(value) ?? [];
      wrong.push(broken.length > 0 ? `wrong format: breaks ${broken.map((b) => `"${b}"`).join(" and ")} (expected ${e.format.rule})` : `wrong format: expected ${e.format.rule}`);
    }
    if (wrong.length > 0) problems.push({ key: e.key, problem: wrong.join("; ") });
    else values[e.key] = value;
  }
  return { values, problems };
}

/** Every secret the stack needs, each wrapped with `pulumi.secret`. */
export type SecretInputs = Readonly<Record<string, pulumi.Output<string>>>;

export function wrapSecrets(values: Readonly<Record<string, string>>): SecretInputs {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, pulumi.secret(v)]));
}
