/**
 * A preview made for review: from the document `pulumi preview --json` prints, which secrets
 * changed (by name, from the bootstrap's trigger entries), which containers the bootstrap will
 * therefore recreate (the catalog's consumers), whether the server is replaced, and a warning
 * when a key that must never change did. Pure: the parsed document in, text out.
 *
 * The document is Pulumi's PreviewDigest (pulumi/pulumi pkg/display/json.go, filled by
 * pkg/backend/display/json.go ShowPreviewDigest): `steps[]` with `op` (pkg/resource/deploy/
 * step.go StepOp), `urn`, `oldState`/`newState` (sdk/go/common/apitype/core.go ResourceV3:
 * `type`, `inputs`, …), `diffReasons`, `replaceReasons`, `detailedDiff`; `changeSummary`
 * counts per op; `diagnostics[]` with `severity` and `message`. Secrets in states are the
 * string "[secret]" (json.go massagePropertyValue) and values not known until apply are
 * "04da6b54-80e4-46f7-96ec-b56ff0331ba9" (pkg/resource/stack/deployment.go computedValuePlaceholder).
 */
import { blastRadius, catalog, type ComposeService, composeServices } from "../../components/secrets/catalog";
import { fingerprintKeySource } from "../../components/secrets/fingerprint";

export const unknownValue = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const bootstrapRun = { type: "command:remote:Command", name: "bifrost-run" };
const serverType = "hcloud:index/server:Server";
const replacing = new Set(["replace", "create-replacement", "delete-replaced"]);

interface ResourceState {
  readonly type?: string;
  readonly inputs?: Record<string, unknown>;
}

export interface PreviewStep {
  readonly op: string;
  readonly urn: string;
  readonly oldState?: ResourceState;
  readonly newState?: ResourceState;
  readonly diffReasons?: readonly string[];
  readonly replaceReasons?: readonly string[];
}

export interface PreviewDigest {
  readonly steps?: readonly PreviewStep[];
  readonly changeSummary?: Readonly<Record<string, number>>;
  readonly diagnostics?: readonly { readonly severity?: string; readonly message?: string }[];
}

export type SecretChange = { readonly secret: string; readonly how: "changed" | "added" | "removed" | "new value made at apply" };

export interface ReviewSummary {
  /** False when the preview has no bootstrap step at all (another stack kind, or nothing planned). */
  readonly bootstrapInPreview: boolean;
  /** The bootstrap is created for the first time: it runs with every secret. */
  readonly firstRun: boolean;
  readonly secrets: readonly SecretChange[];
  readonly recreated: readonly ComposeService[];
  /** False when the preview has no Bifrost server (the cluster stack). */
  readonly serverInPreview: boolean;
  readonly serverReplaced: boolean;
  readonly serverReplaceReasons: readonly string[];
  /**
   * The key of every fingerprint (NB_DATA_STORE_KEY) changed: every entry differs, so which
   * other secrets changed cannot be told; `secrets` then names only that key.
   */
  readonly fingerprintsRekeyed: boolean;
  /** `never` keys whose fingerprint changed. */
  readonly neverChanged: readonly string[];
  readonly changeSummary: Readonly<Record<string, number>>;
  readonly errors: readonly string[];
}

/** The name part of a URN: `urn:pulumi:<stack>::<project>::<type chain>::<name>`. */
const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
const typeOf = (step: PreviewStep) => step.newState?.type ?? step.oldState?.type ?? urn2type(step.urn);
const urn2type = (urn: string) => {
  const chain = urn.split("::")[2] ?? "";
  return chain.slice(chain.lastIndexOf("$") + 1);
};

/** The `{secret, fingerprint}` entries of a bootstrap command's triggers, by name. */
function fingerprints(state: ResourceState | undefined): Map<string, string> {
  const triggers = state?.inputs?.triggers;
  const found = new Map<string, string>();
  if (!Array.isArray(triggers)) return found;
  for (const t of triggers) {
    if (t && typeof t === "object" && typeof (t as { secret?: unknown }).secret === "string") {
      const { secret, fingerprint } = t as { secret: string; fingerprint?: unknown };
      found.set(secret, String(fingerprint));
    }
  }
  return found;
}

function secretChanges(oldFp: Map<string, string>, newFp: Map<string, string>): SecretChange[] {
  const changes: SecretChange[] = [];
  for (const [secret, fp] of newFp) {
    const before = oldFp.get(secret);
    if (before === undefined) changes.push({ secret, how: "added" });
    else if (fp === unknownValue) changes.push({ secret, how: "new value made at apply" });
    else if (fp !== before) changes.push({ secret, how: "changed" });
  }
  for (const secret of oldFp.keys()) if (!newFp.has(secret)) changes.push({ secret, how: "removed" });
  const order = catalog.map((e) => e.key);
  return changes.sort((a, b) => order.indexOf(a.secret) - order.indexOf(b.secret));
}

export function summarize(digest: PreviewDigest): ReviewSummary {
  const steps = digest.steps ?? [];
  const runSteps = steps.filter((s) => typeOf(s) === bootstrapRun.type && nameOf(s.urn) === bootstrapRun.name);
  const oldState = runSteps.find((s) => s.oldState)?.oldState;
  const newState = runSteps.find((s) => s.newState && s.op !== "delete-replaced")?.newState;
  const firstRun = runSteps.some((s) => s.op === "create");
  const allChanges = newState ? secretChanges(fingerprints(oldState), fingerprints(newState)) : [];
  const fingerprintsRekeyed = !firstRun && allChanges.some((c) => c.secret === fingerprintKeySource && c.how === "changed");
  const secrets = fingerprintsRekeyed ? allChanges.filter((c) => c.secret === fingerprintKeySource) : allChanges;
  const serverSteps = steps.filter((s) => typeOf(s) === serverType && replacing.has(s.op));
  const services = new Set(secrets.filter((c) => c.how !== "removed" && catalog.some((e) => e.key === c.secret)).flatMap((c) => blastRadius(c.secret)));
  const never = new Set(catalog.filter((e) => e.rotation.kind === "never").map((e) => e.key));
  return {
    bootstrapInPreview: runSteps.length > 0,
    fingerprintsRekeyed,
    firstRun,
    secrets,
    recreated: composeServices.filter((s) => services.has(s)),
    serverInPreview: steps.some((s) => typeOf(s) === serverType),
    serverReplaced: serverSteps.length > 0,
    serverReplaceReasons: [...new Set(serverSteps.flatMap((s) => s.replaceReasons ?? []))],
    neverChanged: firstRun ? [] : secrets.filter((c) => never.has(c.secret) && c.how !== "added").map((c) => c.secret),
    changeSummary: digest.changeSummary ?? {},
    errors: (digest.diagnostics ?? []).filter((d) => d.severity === "error").map((d) => (d.message ?? "").trim()),
  };
}

/** The summary's lines, without markup; `code` wraps names for Markdown. */
function lines(s: ReviewSummary, code: (t: string) => string): string[] {
  const out: string[] = [];
  const counts = Object.entries(s.changeSummary)
    .filter(([op]) => op !== "same")
    .map(([op, n]) => `${n} to ${op}`);
  out.push(`Resources: ${counts.length > 0 ? counts.join(", ") : "no changes"}`);
  if (s.serverReplaced) {
    const why = s.serverReplaceReasons.length > 0 ? ` (because of ${s.serverReplaceReasons.map(code).join(", ")})` : "";
    out.push(`Server: REPLACED${why}; the new server is shipped and bootstrapped from scratch, every container starts anew`);
  } else if (s.serverInPreview) {
    out.push("Server: kept");
  }
  if (!s.bootstrapInPreview) {
    // Another stack kind (cluster, hetzner-data): no bootstrap, no trigger entries to read.
  } else if (s.firstRun) {
    out.push(`Secrets: first bootstrap, with ${s.secrets.length} secrets`);
  } else if (s.secrets.length === 0) {
    out.push("Secrets: none changed");
  } else {
    const rekeyed = s.fingerprintsRekeyed ? "; every fingerprint is keyed by it, so whether other secrets changed cannot be told" : "";
    out.push(`Secrets changed: ${s.secrets.map((c) => `${code(c.secret)}${c.how === "changed" ? "" : ` (${c.how})`}`).join(", ")}${rekeyed}`);
  }
  if (!s.firstRun && !s.serverReplaced && s.secrets.length > 0) {
    const more = s.fingerprintsRekeyed ? ", and those of any other secret that changed" : "";
    out.push(`Containers the bootstrap recreates: ${s.recreated.length > 0 ? s.recreated.map(code).join(", ") : "none (program-side secrets only)"}${more}`);
  }
  for (const key of s.neverChanged) {
    const rotation = catalog.find((e) => e.key === key)?.rotation;
    out.push(`WARNING: ${code(key)} changed, and it must never change: ${rotation && "note" in rotation ? rotation.note : ""}`);
  }
  for (const e of s.errors) out.push(`ERROR: ${e}`);
  return out;
}

export function renderText(s: ReviewSummary, stack: string): string {
  return [`Review summary for ${stack}:`, ...lines(s, (t) => t).map((l) => `  ${l}`)].join("\n") + "\n";
}

export function renderMarkdown(s: ReviewSummary, stack: string): string {
  const body = lines(s, (t) => `\`${t}\``).map((l) => (l.startsWith("WARNING") || l.startsWith("ERROR") ? `- **${l.split(":")[0]}**:${l.slice(l.indexOf(":") + 1)}` : `- ${l}`));
  return [`### \`just core ${stack} preview\``, "", ...body].join("\n") + "\n";
}
