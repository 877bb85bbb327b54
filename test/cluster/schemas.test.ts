/**
 * Every Kubernetes object the cluster stack registers validates against its schema: built-in
 * kinds against the Kubernetes OpenAPI schema (kubernetes-models 4.5.1), the
 * SecretProviderClass against the openAPIV3Schema of the pinned secrets-store-csi-driver CRD
 * (test/conformance/fixtures/secretproviderclasses.crd.yaml, v1.6.0).
 */
import Ajv from "ajv";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Namespace, Secret } from "kubernetes-models/v1";
import { parse } from "yaml";
import { parseAppRow } from "../../components/cluster/appTable";
import { renderSecretProviderClass } from "../../components/cluster/secretProviderClass";
import { projectRoot } from "../../components/stack/paths";
import { canaryEnv } from "../helpers/canaries";
import { closed } from "../helpers/closedSchema";
import { exampleApps, tempKubeconfig, unwrapSecrets, type TempKubeconfig } from "../helpers/cluster";
import { byType, runProgram, type Run } from "../helpers/pulumiMocks";

function spcValidator() {
  const crd = parse(readFileSync(join(projectRoot, "test", "conformance", "fixtures", "secretproviderclasses.crd.yaml"), "utf8"));
  expect(crd.spec.names.kind).toBe("SecretProviderClass");
  const version = crd.spec.versions.find((v: { name: string; storage: boolean }) => v.name === "v1");
  expect(version?.served).toBe(true);
  const ajv = new Ajv({ strict: false, allErrors: true });
  return ajv.compile(closed(version.schema.openAPIV3Schema));
}

/** Fields of the built-in kinds we create (k8s.io/api core/v1 types.go Secret, Namespace), beyond which kubernetes-models does not look. */
const knownTopLevel: Record<string, string[]> = {
  Secret: ["apiVersion", "kind", "metadata", "type", "data", "stringData", "immutable"],
  Namespace: ["apiVersion", "kind", "metadata", "spec"],
};

let kube: TempKubeconfig;
let run: Run;
beforeAll(async () => {
  kube = tempKubeconfig();
  run = await runProgram({ stack: "cluster", config: kube.config, env: canaryEnv("cluster") });
  expect(run.error).toBeUndefined();
});
afterAll(() => kube.cleanup());

describe("schemas of the cluster stack's objects", () => {
  it("every SecretProviderClass validates against the CRD's openAPIV3Schema", () => {
    const validate = spcValidator();
    const spcs = byType(run, "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass");
    expect(spcs).toHaveLength(exampleApps().length);
    for (const spc of spcs) {
      const object = unwrapSecrets(spc.inputs);
      expect(validate(object), `${spc.name}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  it("the closed schema does catch a misspelt field and a wrong type", () => {
    const validate = spcValidator();
    const row = parseAppRow(exampleApps()[1]).row!;
    const good = renderSecretProviderClass(row, "http://openbao.openbao.svc:8200");
    expect(validate(good)).toBe(true);
    expect(validate({ ...good, spec: { ...good.spec, secretObject: good.spec.secretObjects } })).toBe(false);
    expect(validate({ ...good, spec: { ...good.spec, parameters: { roleName: 7 } } })).toBe(false);
  });

  it("every Secret and Namespace validates against the Kubernetes schema", () => {
    const models = { Secret, Namespace };
    const objects = byType(run, "kubernetes:core/v1:Secret").concat(byType(run, "kubernetes:core/v1:Namespace"));
    expect(objects.length).toBeGreaterThan(5);
    for (const r of objects) {
      const object = unwrapSecrets(r.inputs) as Record<string, unknown> & { kind: keyof typeof models };
      const Model = models[object.kind];
      expect(() => new Model(object as never).validate(), r.name).not.toThrow();
      expect(Object.keys(object).filter((k) => !knownTopLevel[object.kind].includes(k)), r.name).toEqual([]);
    }
  });

  it("kubernetes-models rejects what the API server would (a non-string annotation)", () => {
    expect(() => new Secret({ metadata: { name: "x", annotations: { a: 1 as never } } }).validate()).toThrow();
  });
});
