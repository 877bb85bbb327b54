/**
 * The SecretProviderClass of one app row, rendered from the same row as its policy and role.
 * Pure: returns the object the cluster stack registers as a CustomResource.
 *
 * Shape: secrets-store-csi-driver v1.6.0 SecretProviderClass v1 (spec.provider,
 * spec.parameters as a string map, spec.secretObjects[].{secretName,type,labels,data[].{objectName,key}}).
 * Provider: OpenBao's own CSI provider, openbao/openbao-csi-provider v2.0.2 (the one openbao-helm
 * installs). The driver finds a provider by its socket, `<provider>.sock` in its providers
 * directory, and this one listens on `openbao.sock` (main.go, -endpoint; openbao-helm
 * `/provider/openbao.sock`): `provider: vault` would find none ("provider not found").
 * Parameters: its internal/config/config.go parseParameters — roleName, openbaoAddress,
 * openbaoAuthMountPath (the `bao`/`openbao`/`vault` prefixes are all read; the provider's own is
 * used), and `objects`, a YAML list of {objectName, secretPath, secretKey}; validate() then
 * requires the role and at least one object, each objectName once.
 */
import { stringify } from "yaml";
import { dataPath, kubernetesAuthPath, providerClassName, roleName, valueField, type AppRow } from "./appTable";

export const managedByLabel = { "app.kubernetes.io/managed-by": "homelab-core" } as const;

export interface SecretProviderClassObject {
  readonly apiVersion: "secrets-store.csi.x-k8s.io/v1";
  readonly kind: "SecretProviderClass";
  readonly metadata: { readonly name: string; readonly namespace: string; readonly labels: Record<string, string> };
  readonly spec: {
    readonly provider: "openbao";
    readonly parameters: Record<string, string>;
    readonly secretObjects?: readonly {
      readonly secretName: string;
      readonly type: "Opaque";
      readonly labels: Record<string, string>;
      readonly data: readonly { readonly objectName: string; readonly key: string }[];
    }[];
  };
}

/** One object per key: the file (pattern A) and the synced Secret's key (pattern B) carry the key's name. */
export function providerObjects(row: AppRow): { objectName: string; secretPath: string; secretKey: string }[] {
  return row.keys.map((k) => ({ objectName: k.name, secretPath: dataPath(row, k), secretKey: valueField }));
}

export function renderSecretProviderClass(row: AppRow, openbaoAddress: string): SecretProviderClassObject {
  const spec: SecretProviderClassObject["spec"] = {
    provider: "openbao",
    parameters: {
      roleName: roleName(row),
      openbaoAddress,
      openbaoAuthMountPath: kubernetesAuthPath,
      objects: stringify(providerObjects(row)),
    },
    ...(row.pattern === "B"
      ? {
          secretObjects: [
            {
              secretName: row.secretName!,
              type: "Opaque" as const,
              labels: { ...managedByLabel },
              data: row.keys.map((k) => ({ objectName: k.name, key: k.name })),
            },
          ],
        }
      : {}),
  };
  return {
    apiVersion: "secrets-store.csi.x-k8s.io/v1",
    kind: "SecretProviderClass",
    metadata: { name: providerClassName(row), namespace: row.namespace, labels: { ...managedByLabel } },
    spec,
  };
}
