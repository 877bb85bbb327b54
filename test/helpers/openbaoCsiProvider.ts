/**
 * How OpenBao's CSI provider reads a SecretProviderClass's parameters, as
 * openbao/openbao-csi-provider v2.0.2 internal/config/config.go does: parseParameters (each
 * setting under the `bao`, `openbao` or `vault` prefix, first found wins; roleName also bare;
 * both a Kubernetes and an auth mount path is an error; `objects` a YAML list) and validate (a
 * role, at least one object, each objectName once). Returns the parsed settings or the error the
 * provider would give.
 */
import { parse } from "yaml";

export interface ProviderParameters {
  readonly roleName: string;
  readonly address: string;
  readonly authMountPath: string;
  readonly objects: readonly { objectName?: string; secretPath?: string; secretKey?: string }[];
}

const prefixed = (params: Record<string, string>, suffix: string): string | undefined => {
  for (const prefix of ["bao", "openbao", "vault"]) if (`${prefix}${suffix}` in params) return params[`${prefix}${suffix}`];
  return undefined;
};

export function openbaoProviderParameters(params: Record<string, string>): ProviderParameters | { error: string } {
  const roleName = prefixed(params, "RoleName") ?? params.roleName ?? "";
  const k8sMount = prefixed(params, "KubernetesMountPath");
  const authMount = prefixed(params, "AuthMountPath");
  if (k8sMount !== undefined && authMount !== undefined) return { error: "cannot set both openbaoKubernetesMountPath and openbaoAuthMountPath" };
  const objects = (parse(params.objects ?? "") ?? []) as ProviderParameters["objects"];
  if (!roleName) return { error: "missing 'roleName' in SecretProviderClass definition" };
  if (objects.length === 0) return { error: "no secrets configured - the provider will not read any secret material" };
  const names = objects.map((o) => o.objectName);
  const duplicated = names.filter((n, i) => names.indexOf(n) !== i);
  if (duplicated.length > 0) return { error: `each \`objectName\` within a SecretProviderClass must be unique, but the following keys were duplicated: ${duplicated.join(", ")}` };
  // Without an address or mount in the class, the provider falls back to its flags (main.go:
  // -openbao-addr / BAO_ADDR, -openbao-mount "kubernetes"); "" marks that here.
  return { roleName, address: prefixed(params, "Address") ?? "", authMountPath: k8sMount ?? authMount ?? "", objects };
}
