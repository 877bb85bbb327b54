/**
 * `just bundle-render <stack> DIR`: what the hetzner stack would ship to /etc/bifrost — the
 * bundle's files and the two rendered env files — with every secret replaced by
 * `<redacted:NAME:fingerprint>`, the keyed fingerprint its bootstrap trigger entry carries
 * (components/secrets/fingerprint.ts), so a render can be read and diffed without a Pulumi run and
 * without a value. Pure: checked values and stack config in, file texts out.
 */
import { entriesOnVps, githubSecretKey, type VpsFile } from "../../components/secrets/catalog";
import type { Environment, Problem } from "../../components/secrets/env";
import { sopsFingerprint } from "../../components/secrets/fingerprint";
import { renderEnv, renderSecretsEnv, type SecretValues, type VpsSettings } from "../../components/secrets/render";
import { checkGithubLogin, checkHetznerSettings, vpsSettingsOf } from "../../components/stack/settings";

export const redacted = (key: string, fingerprint: string): string => `<redacted:${key}:${fingerprint}>`;

/**
 * Each secret the VPS files carry, redacted. A SOPS value by its keyed fingerprint; a value
 * the stack generates itself lives only in Pulumi state, so offline it is marked as such.
 */
export function redactedSecrets(values: Readonly<Record<string, string>>): SecretValues {
  return Object.fromEntries(
    entriesOnVps().flatMap((e): [string, string][] => {
      if (e.source === "generated") return [[e.key, redacted(e.key, "generated-by-the-stack")]];
      return values[e.key] === undefined ? [] : [[e.key, redacted(e.key, sopsFingerprint(values, e.key))]];
    }),
  );
}

/**
 * The VPS settings from a stack's config file (`config:` of stacks/Pulumi.<stack>.yaml), read as
 * Pulumi hands structured config to a program: strings as they are, lists and maps as JSON.
 * The volume's device needs the hetzner-data stack's volume id, which only a Pulumi run reads:
 * it is shown as a placeholder naming it.
 */
export function settingsFromStackConfig(config: Readonly<Record<string, unknown>>, env: Environment): { settings?: VpsSettings; problems: Problem[] } {
  const get = (k: string) => {
    const v = config[`core:${k}`];
    return v === undefined || v === null ? undefined : typeof v === "string" ? v : JSON.stringify(v);
  };
  const checked = checkHetznerSettings(get);
  const github = checkGithubLogin(githubSecretKey, !!env[githubSecretKey], get("authentikGithubClientId") || undefined, get("authentikGithubOrg") || undefined);
  const problems = [...checked.problems, ...github];
  if (!checked.settings || problems.length > 0) return { problems };
  return { settings: vpsSettingsOf(checked.settings, `<volumeId of ${checked.settings.dataStack}>`), problems: [] };
}

export function renderedEnvFiles(settings: VpsSettings, secrets: SecretValues): Record<VpsFile, string> {
  return { ".env": renderEnv(settings, secrets), ".secrets.env": renderSecretsEnv(secrets) };
}
