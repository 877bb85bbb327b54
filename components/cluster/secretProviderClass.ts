/**
 * The SecretProviderClass of one app row, rendered from the same row as its policy and role.
 * Pure: returns the object the cluster stack registers as a CustomResource.
 *
 * Shape: secrets-store-csi-driver v1.6.0 SecretProviderClass v1 (spec.provider,
 * spec.parameters as a string map, spec.secretObjects[].{secretName,type,labels,data[].{objectName,key}}).
 * Parameters: hashicorp/vault-csi-provider v1.7.4 internal/config/config.go parseParameters —
 * roleName, vaultAddress, vaultAuthMountPath, and `objects`, a YAML list of
 * {objectName, secretPath, secretKey}.
 */
import { stringify } from "yaml";
import { dataPath, kubernetesAuthPath, providerClassName, roleName, valueField, type AppRow } from "./appTable";

export const managedByLabel = { "app.kubernetes.io/managed-by": "homelab-core" } as const;

export interface SecretProviderClassObject {
  readonly apiVersion: "secrets-store.csi.x-k8s.io/v1";
  readonly kind: "SecretProviderClass";
  readonly metadata: { readonly name: string; readonly namespace: string; readonly labels: Record<string, string> };
  readonly spec: {
    readonly provider: "vault";
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

export function renderSecretProviderClass(row: AppRow, vaultAddress: string): SecretProviderClassObject {
  const spec: SecretProviderClassObject["spec"] = {
    provider: "vault",
    parameters: {
      roleName: roleName(row),
      vaultAddress,
      vaultAuthMountPath: kubernetesAuthPath,
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
