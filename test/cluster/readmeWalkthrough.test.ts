/**
 * The README's cluster walkthrough ("First time: from a fresh cluster to an app reading its
 * secret") read as a new operator would follow it: every command it names exists, the charts
 * and versions are the ones the conformance fixtures pin, and its pod spec is a pod the API
 * server accepts that mounts the class the stack makes for that row, as that row's service account.
 */
import { Pod } from "kubernetes-models/v1";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseAppRow } from "../../components/cluster/appTable";
import { unsealKeySecret } from "../../components/cluster/bootstrapSecrets";
import { renderSecretProviderClass } from "../../components/cluster/secretProviderClass";
import { projectRoot } from "../../components/stack/paths";
import { exampleApps } from "../helpers/cluster";

const readme = readFileSync(join(projectRoot, "README.md"), "utf8");
const section = (() => {
  const start = readme.indexOf("**First time: from a fresh cluster to an app reading its secret**");
  const end = readme.indexOf("**Everyday**: `just core cluster", start);
  expect(start).toBeGreaterThan(0);
  expect(end).toBeGreaterThan(start);
  return readme.slice(start, end);
})();
/** Fenced blocks of the section, their indentation (list items) removed. */
const blocks = (lang: string) =>
  [...section.matchAll(new RegExp(`^( *)\`\`\`${lang}\\n([\\s\\S]*?)^\\1\`\`\``, "gm"))].map((m) =>
    m[2]
      .split("\n")
      .map((l) => l.slice(m[1].length))
      .join("\n"),
  );
const fixture = (name: string) => readFileSync(join(projectRoot, "test", "conformance", "fixtures", name), "utf8");

describe("README: the cluster walkthrough", () => {
  it("names only just recipes the justfile has, in the issue's order", () => {
    const recipes = new Set([...readFileSync(join(projectRoot, "justfile"), "utf8").matchAll(/^([a-z-]+)(?: [^:]*)?:/gm)].map((m) => m[1]));
    const used = [...section.matchAll(/(?<![\w-])just ([a-z-]+)/g)].map((m) => m[1]);
    expect(new Set(used)).toEqual(new Set(["init", "secrets", "core", "openbao-init", "secrets-edit"]));
    expect(used.filter((r) => !recipes.has(r))).toEqual([]);
    const order = ["helm install csi", "helm install openbao", "**`just core cluster up`**", "**`just openbao-init`**", "**`just core cluster up`** again"].map((s) =>
      section.indexOf(s),
    );
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it("installs the chart versions the conformance fixtures pin, with the settings the stack relies on", () => {
    const shell = blocks("").join("\n");
    const driverVersion = /^# Version: tag v(\S+),/m.exec(fixture("secretproviderclasses.crd.yaml"))![1];
    expect(shell).toMatch(new RegExp(`secrets-store-csi-driver --version ${driverVersion.replace(/\./g, "\\.")} \\\\\\n\\s+-n kube-system --set syncSecret\\.enabled=true`));
    const chartVersion = /^# Version: tag openbao-(\S+),/m.exec(fixture("openbao-helm-values.yaml"))![1];
    expect(shell).toContain(`helm install openbao openbao/openbao --version ${chartVersion} -n ${unsealKeySecret.namespace} --create-namespace`);
    const values = /-f (\S+)/.exec(shell)![1];
    expect(existsSync(join(projectRoot, values))).toBe(true);
  });

  it("its pod validates, runs as the row's service account in its namespace and mounts the class the stack makes for it", () => {
    const [podYaml] = blocks("yaml");
    const pod = parse(podYaml);
    expect(() => new Pod(pod).validate()).not.toThrow();
    const row = parseAppRow(exampleApps().find((a) => a.app === "grafana")!).row!;
    const spc = renderSecretProviderClass(row, "http://openbao.openbao.svc:8200");
    expect(pod.metadata.namespace).toBe(row.namespace);
    expect(pod.spec.serviceAccountName).toBe(row.serviceAccount);
    const [volume] = pod.spec.volumes;
    // The driver's CSIDriver name (secrets-store-csi-driver v1.6.0 charts/…/templates/csidriver.yaml).
    expect(volume.csi.driver).toBe("secrets-store.csi.k8s.io");
    expect(volume.csi.volumeAttributes.secretProviderClass).toBe(spc.metadata.name);
    const mount = pod.spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === volume.name);
    // The check reads one object file of the class and prints its length, which is the key's.
    const check = /exec secret-reader -- wc -c\s+(\S+)`\s+prints\s+`(\d+) (\S+)`/.exec(section)!;
    expect(check).not.toBeNull();
    const [, file, length, printed] = check;
    expect(printed).toBe(file);
    const objects = parse(spc.spec.parameters.objects) as { objectName: string }[];
    expect(objects.map((o) => `${mount.mountPath}/${o.objectName}`)).toContain(file);
    const key = row.keys.find((k) => file.endsWith(`/${k.name}`))!;
    expect(Number(length)).toBe(key.length);
  });
});
