/**
 * A JSON schema made strict for conformance checks: every object that declares its properties
 * refuses any other. The Kubernetes API server prunes fields a structural schema does not
 * declare (Kubernetes docs, "Versions in CustomResourceDefinitions" / "Field pruning"), and
 * Helm's values schemas are open while the chart ignores a key it does not read: either way a
 * misspelt field would vanish silently, so the check fails instead.
 */
export type Schema = Record<string, unknown>;

export function closed(schema: Schema): Schema {
  const out: Schema = { ...schema };
  if (out.properties) {
    out.properties = Object.fromEntries(Object.entries(out.properties as Record<string, Schema>).map(([k, v]) => [k, closed(v)]));
    if (out.additionalProperties === undefined && !out["x-kubernetes-preserve-unknown-fields"]) out.additionalProperties = false;
  }
  if (out.items) out.items = closed(out.items as Schema);
  if (out.additionalProperties && typeof out.additionalProperties === "object") out.additionalProperties = closed(out.additionalProperties as Schema);
  return out;
}
