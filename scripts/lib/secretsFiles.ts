/**
 * Which SOPS file a stack reads. Production stacks read secrets/bootstrap.sops.yaml; a sandbox
 * stack (a `sandbox` word in its name: hetzner-sandbox, hetzner-sandbox-data) reads the file its
 * config names in core:secretsFile, never the production one, so trying a change can never
 * touch a production secret. scripts/core.sh asks this before it decrypts anything.
 */
export const productionSecretsFile = "secrets/bootstrap.sops.yaml";

/** Decided by the stack's name, which its config cannot change. */
export const isSandboxStack = (stack: string): boolean => /(^|-)sandbox(-|$)/.test(stack);

export type SecretsFile = { readonly file: string } | { readonly problem: string };

export function secretsFileFor(stack: string, config: Readonly<Record<string, unknown>>): SecretsFile {
  const configured = config["core:secretsFile"];
  const file = configured === undefined ? productionSecretsFile : configured;
  if (typeof file !== "string" || !/^secrets\/[a-z0-9][a-z0-9-]*\.sops\.yaml$/.test(file))
    return { problem: `core:secretsFile of stack ${stack} must be secrets/<name>.sops.yaml` };
  if (isSandboxStack(stack) && file === productionSecretsFile)
    return { problem: `stack ${stack} is a sandbox and must never read ${productionSecretsFile}; set core:secretsFile to its own file (secrets/sandbox.sops.yaml)` };
  if (!isSandboxStack(stack) && file !== productionSecretsFile)
    return { problem: `stack ${stack} is not a sandbox: it reads ${productionSecretsFile}, not ${file} (a sandbox stack has sandbox in its name)` };
  return { file };
}
