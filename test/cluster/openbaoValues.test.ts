/**
 * cloud/cluster/openbao-values.yaml, the Helm values that make OpenBao unseal itself with the
 * key the cluster stack writes: checked against OpenBao's chart as Helm would use it (its
 * defaults and values schema, openbao-helm chart 0.29.2 in test/conformance/fixtures/), its
 * configuration parsed by HashiCorp's own HCL parser (@cdktf/hcl2json), the static seal's
 * parameters as OpenBao reads them, the Kubernetes pod schema, and the Secret of the stack.
 */
import Ajv from "ajv";
import { parse as parseHcl } from "@cdktf/hcl2json";
import { Pod } from "kubernetes-models/v1";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseAppRow } from "../../components/cluster/appTable";
import { unsealKeySecret } from "../../components/cluster/bootstrapSecrets";
import { renderSecretProviderClass } from "../../components/cluster/secretProviderClass";
import { entry } from "../../components/secrets/catalog";
import { projectRoot } from "../../components/stack/paths";
import { generateValue } from "../../scripts/lib/secretsLifecycle";
import { exampleApps } from "../helpers/cluster";

type Values = Record<string, unknown>;
const fixtures = join(projectRoot, "test", "conformance", "fixtures");
const fragmentFile = join(projectRoot, "cloud", "cluster", "openbao-values.yaml");
const fragment = (): Values => parse(readFileSync(fragmentFile, "utf8"));
const chartDefaults = (): Values => parse(readFileSync(join(fixtures, "openbao-helm-values.yaml"), "utf8"));
const isMap = (v: unknown): v is Values => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Helm's merge of a values file over the chart's defaults (helm v3 pkg/chartutil/coalesce.go
 * coalesceTablesFullKey): maps merge key by key, anything else — lists, strings — replaces
 * the default whole, and a null removes the key.
 */
function helmMerge(defaults: Values, user: Values): Values {
  const out: Values = { ...defaults };
  for (const [key, value] of Object.entries(user)) {
    if (value === null) delete out[key];
    else out[key] = isMap(value) && isMap(defaults[key]) ? helmMerge(defaults[key], value) : value;
  }
  return out;
}

/** Paths the fragment sets that the chart's values.yaml does not know (a misspelt key Helm would ignore). */
function unknownKeys(user: Values, defaults: Values, at = ""): string[] {
  return Object.entries(user).flatMap(([key, value]) => {
    const path = `${at}${key}`;
    if (!(key in defaults)) return [path];
    const known = defaults[key];
    return isMap(value) && isMap(known) && Object.keys(known).length > 0 ? unknownKeys(value, known, `${path}.`) : [];
  });
}

function schemaValidator() {
  const ajv = new Ajv({ strict: false, allErrors: true });
  return ajv.compile(JSON.parse(readFileSync(join(fixtures, "openbao-helm-values.schema.json"), "utf8")));
}

/** The chart's mode choice (openbao-helm templates/_helpers.tpl "openbao.mode"). */
function mode(values: Values): string {
  const server = values.server as Values;
  const flag = (v: unknown) => String(v);
  if (flag((server.dev as Values).enabled) === "true") return "dev";
  if (flag((server.ha as Values).enabled) === "true") return "ha";
  if (["true", "-"].includes(flag((server.standalone as Values).enabled))) return "standalone";
  return "";
}

type Hcl = Record<string, Record<string, Record<string, unknown>[]>> & { ui?: boolean };
const hcl = async (text: string): Promise<Hcl> => (await parseHcl("extraconfig-from-values.hcl", text)) as Hcl;

/**
 * How OpenBao's static seal turns a key into bytes: by the length of the string, with no
 * trimming of a file's content (openbao/go-kms-wrapping wrappers/static/v2.2.0 static.go
 * SetConfig; options.go ParsePaths passes parseutil.WithNoTrimSpaces). OpenBao v2.6.2's go.mod
 * pins wrappers/static/v2 v2.2.0. An error is what the server fails to start with.
 */
function staticSealKey(value: string): { bytes: Buffer } | { error: string } {
  switch (value.length) {
    case 64:
      return /^[0-9a-fA-F]+$/.test(value) ? { bytes: Buffer.from(value, "hex") } : { error: "failed to hex decode current key" };
    case 44:
      return /^[A-Za-z0-9+/]{43}=$/.test(value) ? { bytes: Buffer.from(value, "base64") } : { error: "failed to base64 decode current key" };
    case 43:
      return /^[A-Za-z0-9_-]{43}$/.test(value) ? { bytes: Buffer.from(value, "base64url") } : { error: "failed to base64 decode current key" };
    case 32:
      return { bytes: Buffer.from(value, "latin1") };
    case 0:
      return { error: "missing required current key" };
    default:
      return { error: "unknown encoding for AES-256 key: must be either a raw, hex, or base64-encoded" };
  }
}

/** The mount that brings the stack's unseal-key Secret into the server container. */
function unsealMount(values: Values): string {
  const server = values.server as { volumes: Values[]; volumeMounts: Values[] };
  const volume = server.volumes.find((v) => (v.secret as Values | undefined)?.secretName === unsealKeySecret.name);
  expect(volume, "a volume of the Secret the stack writes").toBeDefined();
  const mount = server.volumeMounts.find((m) => m.name === volume!.name);
  expect(mount, "a mount of that volume").toBeDefined();
  expect(mount!.readOnly).toBe(true);
  return `${mount!.mountPath as string}/${unsealKeySecret.key}`;
}

describe("OpenBao's Helm values: the static seal reads the stack's unseal key", () => {
  it("validates against the chart's values schema once merged over its defaults, as Helm checks it", () => {
    const validate = schemaValidator();
    const merged = helmMerge(chartDefaults(), fragment());
    expect(validate(merged), JSON.stringify(validate.errors)).toBe(true);
    // The schema is open (no additionalProperties), so a misspelt key would pass it: every key
    // the fragment sets must be one the chart's values.yaml has.
    expect(unknownKeys(fragment(), chartDefaults())).toEqual([]);
    expect(unknownKeys({ server: { standalone: { confg: "x" } } }, chartDefaults())).toEqual(["server.standalone.confg"]);
    expect(validate(helmMerge(chartDefaults(), { server: { volumes: { name: "not-a-list" } } }))).toBe(false);
  });

  it("runs one standalone server whose configuration HCL parses, the chart's listener and storage kept", async () => {
    const merged = helmMerge(chartDefaults(), fragment());
    expect(mode(merged)).toBe("standalone");
    const config = ((merged.server as Values).standalone as Values).config as string;
    expect(typeof config).toBe("string");
    // The chart renders the string through `tpl` (templates/_helpers.tpl "openbao.config").
    expect(config).not.toContain("{{");
    const ours = await hcl(config);
    const theirs = await hcl(((chartDefaults().server as Values).standalone as Values).config as string);
    expect(ours.listener).toEqual(theirs.listener);
    expect(ours.storage).toEqual(theirs.storage);
    expect(ours.ui).toBe(true);
    await expect(hcl(`${config}\nseal "static" {`)).rejects.toThrow();
  });

  it("has one static seal whose current key is the file of the mounted unseal-key Secret", async () => {
    const merged = helmMerge(chartDefaults(), fragment());
    const config = await hcl(((merged.server as Values).standalone as Values).config as string);
    expect(Object.keys(config.seal)).toEqual(["static"]);
    expect(config.seal.static).toHaveLength(1);
    const seal = config.seal.static[0];
    // Parameters: website/content/docs/configuration/seal/static.mdx (openbao v2.6.2).
    expect(Object.keys(seal).sort()).toEqual(["current_key", "current_key_id"]);
    expect(seal.current_key).toBe(`file://${unsealMount(merged)}`);
    expect(seal.current_key_id).toMatch(/^\S+$/);
  });

  it("mounts the Secret by a pod spec the Kubernetes schema accepts, readable only by OpenBao's user and group", () => {
    const server = fragment().server as { volumes: never[]; volumeMounts: never[] };
    const pod = new Pod({
      metadata: { name: "openbao-0" },
      spec: { containers: [{ name: "openbao", image: "quay.io/openbao/openbao:2.6.2", volumeMounts: server.volumeMounts }], volumes: server.volumes },
    });
    expect(() => pod.validate()).not.toThrow();
    const volume = (server.volumes as Values[]).find((v) => (v.secret as Values).secretName === unsealKeySecret.name)!;
    expect(((volume.secret as Values).defaultMode as number).toString(8)).toBe("440");
    // The chart's own mounts (templates/server-statefulset.yaml via _helpers.tpl): ours must not shadow them.
    const mounts = (server.volumeMounts as Values[]).map((m) => m.mountPath as string);
    for (const taken of ["/openbao/data", "/openbao/config", "/openbao/audit", "/home/openbao"]) expect(mounts).not.toContain(taken);
  });

  it("the key just secrets new makes is one the static seal reads as 32 bytes; the catalog refuses what it would not", () => {
    const unseal = entry("OPENBAO_UNSEAL_KEY");
    for (let i = 0; i < 50; i++) {
      const value = generateValue(unseal);
      const read = staticSealKey(value);
      expect("bytes" in read && read.bytes.length, value.length.toString()).toBe(32);
    }
    const good = generateValue(unseal);
    // A trailing newline, as `echo` or an editor adds: the server would not start.
    expect("error" in staticSealKey(`${good}\n`)).toBe(true);
    expect(unseal.format!.test(`${good}\n`)).toBe(false);
    // Base64 of 24 bytes is 32 characters, which the seal takes as a raw key: it would start,
    // with a key other than the one written down. The catalog refuses it.
    const short = Buffer.alloc(24, 7).toString("base64");
    expect(staticSealKey(short)).toEqual({ bytes: Buffer.from(short, "latin1") });
    expect(unseal.format!.test(short)).toBe(false);
    expect(unseal.format!.test(good.slice(0, 43))).toBe(false);
  });

  it("installs OpenBao's CSI provider where the driver looks, registered under the name the SecretProviderClasses use", () => {
    const merged = helmMerge(chartDefaults(), fragment());
    expect(String((merged.injector as Values).enabled)).toBe("false");
    const csi = merged.csi as { enabled: boolean; daemonSet: { providersDir: string; endpoint: string } };
    expect(csi.enabled).toBe(true);
    const row = parseAppRow(exampleApps()[0]).row!;
    const provider = renderSecretProviderClass(row, "http://openbao.openbao.svc:8200").spec.provider;
    // The driver dials <providersDir>/<provider>.sock (secrets-store-csi-driver v1.6.0
    // pkg/secrets-store/provider_client.go); its chart's Linux dirs (charts/secrets-store-csi-driver
    // values.yaml: linux.providersDir and additionalProvidersDirs).
    expect(csi.daemonSet.endpoint).toBe(`/provider/${provider}.sock`);
    expect(["/var/run/secrets-store-csi-providers", "/etc/kubernetes/secrets-store-csi-providers"]).toContain(csi.daemonSet.providersDir);
  });
});
