/**
 * The review summary (scripts/lib/previewSummary.ts) from recorded `pulumi preview --json`
 * documents, in process. test/fixtures/preview/ and how its documents follow the real CLI's:
 * see previewSummary.test.ts, which runs the whole `just core <stack> preview`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../../components/stack/paths";
import { renderMarkdown, renderText, summarize, unknownValue, type PreviewDigest } from "../../scripts/lib/previewSummary";

const fixture = (name: string) => join(projectRoot, "test", "fixtures", "preview", `${name}.json`);
const digest = (name: string) => JSON.parse(readFileSync(fixture(name), "utf8")) as PreviewDigest;

describe("review summary from a recorded preview", () => {
  it("names the rotated secrets, a generated one made at apply, and the containers that follow from the catalog", () => {
    const s = summarize(digest("secrets-rotated"));
    expect(s.secrets).toEqual([
      { secret: "AUTHENTIK_SECRET_KEY", how: "changed" },
      { secret: "NB_RELAY_SECRET", how: "changed" },
      { secret: "NB_AUTHENTIK_CLIENT_SECRET", how: "new value made at apply" },
    ]);
    expect(s.recreated).toEqual(["authentik-server", "authentik-worker", "netbird-server"]);
    expect(s.serverReplaced).toBe(false);
    expect(s.neverChanged).toEqual([]);
    expect(renderText(s, "hetzner")).toBe(
      [
        "Review summary for hetzner:",
        "  Resources: 2 to replace, 1 to update",
        "  Server: kept",
        "  Secrets changed: AUTHENTIK_SECRET_KEY, NB_RELAY_SECRET, NB_AUTHENTIK_CLIENT_SECRET (new value made at apply)",
        "  Containers the bootstrap recreates: authentik-server, authentik-worker, netbird-server",
        "",
      ].join("\n"),
    );
  });

  it("says when the server is replaced, and why", () => {
    const s = summarize(digest("server-replaced"));
    expect(s).toMatchObject({ serverReplaced: true, serverReplaceReasons: ["userData"], secrets: [] });
    expect(renderText(s, "hetzner")).toContain("Server: REPLACED (because of userData); the new server is shipped and bootstrapped from scratch");
  });

  it("warns when a never key changed, and does not pretend to know which others did", () => {
    const s = summarize(digest("never-key-changed"));
    expect(s).toMatchObject({ neverChanged: ["NB_DATA_STORE_KEY"], fingerprintsRekeyed: true, secrets: [{ secret: "NB_DATA_STORE_KEY", how: "changed" }] });
    const md = renderMarkdown(s, "hetzner");
    expect(md).toContain("- **WARNING**: `NB_DATA_STORE_KEY` changed, and it must never change: NetBird's database is encrypted with it");
    expect(md).toContain("whether other secrets changed cannot be told");
  });

  it("says nothing changed when nothing did", () => {
    expect(renderMarkdown(summarize(digest("no-changes")), "hetzner")).toBe(
      ["### `just core hetzner preview`", "", "- Resources: no changes", "- Server: kept", "- Secrets: none changed", ""].join("\n"),
    );
  });

  it("a first bootstrap counts its secrets; a stack without a server or bootstrap shows only its resources", () => {
    const first = digest("secrets-rotated");
    const created: PreviewDigest = { ...first, steps: first.steps!.filter((s) => !s.urn.endsWith("::bifrost-run")).concat([{ ...first.steps!.find((s) => s.urn.endsWith("::bifrost-run") && s.op === "replace")!, op: "create", oldState: undefined }]) };
    expect(renderText(summarize(created), "hetzner")).toContain("Secrets: first bootstrap, with 9 secrets");
    expect(renderText(summarize({ steps: [], changeSummary: { create: 4 } }), "cluster")).toBe("Review summary for cluster:\n  Resources: 4 to create\n");
  });

  it("passes on the preview's errors", () => {
    const s = summarize({ diagnostics: [{ severity: "error", message: "hetzner stack: 1 problem, nothing was created or changed:\n  - HCLOUD_TOKEN: wrong format\n" }, { severity: "info", message: "x" }] });
    expect(renderText(s, "hetzner")).toContain("ERROR: hetzner stack: 1 problem");
  });
});

describe("review summary rules, on digests made here", () => {
  const run = "urn:pulumi:hetzner::core::command:remote:Command::bifrost-run";
  const server = "urn:pulumi:hetzner::core::hcloud:index/server:Server::bifrost";
  const triggers = (entries: Record<string, string>) => ({ type: "command:remote:Command", inputs: { triggers: ["server-id", "files-hash", ...Object.entries(entries).map(([secret, fingerprint]) => ({ secret, fingerprint }))] } });
  const update = (before: Record<string, string>, after: Record<string, string>): PreviewDigest => ({ steps: [{ op: "replace", urn: run, oldState: triggers(before), newState: triggers(after) }] });

  it("tells added, changed, removed and made-at-apply apart, in catalog order, and ignores entries that are no secret", () => {
    const before = { NB_RELAY_SECRET: "a", AUTHENTIK_TOKEN: "b", CLOUDFLARE_API_TOKEN: "c", NB_AUTHENTIK_CLIENT_SECRET: "x" };
    const after = { NB_RELAY_SECRET: "a2", NB_AUTHENTIK_CLIENT_SECRET: unknownValue, AUTHENTIK_TOKEN: "b", AUTHENTIK_SECRET_KEY: "d" };
    const s = summarize(update(before, after));
    expect(s.secrets).toEqual([
      { secret: "CLOUDFLARE_API_TOKEN", how: "removed" },
      { secret: "AUTHENTIK_SECRET_KEY", how: "added" },
      { secret: "NB_RELAY_SECRET", how: "changed" },
      { secret: "NB_AUTHENTIK_CLIENT_SECRET", how: "new value made at apply" },
    ]);
    // A removed secret's consumers are not recreated for it; the others' are.
    expect(s.recreated).not.toContain("traefik");
    expect(s.recreated).toEqual(expect.arrayContaining(["netbird-server", "authentik-server"]));
    expect(renderText(s, "hetzner")).toContain("Secrets changed: CLOUDFLARE_API_TOKEN (removed), AUTHENTIK_SECRET_KEY (added), NB_RELAY_SECRET, NB_AUTHENTIK_CLIENT_SECRET (new value made at apply)");
    const odd: PreviewDigest = { steps: [{ op: "update", urn: run, oldState: { inputs: { triggers: "x" } }, newState: { inputs: { triggers: [null, 7, { fingerprint: "f" }, { secret: "NB_RELAY_SECRET", fingerprint: 5 }] } } }] };
    expect(summarize(odd).secrets).toEqual([{ secret: "NB_RELAY_SECRET", how: "added" }]);
  });

  it("finds the bootstrap by the type in its state, else in its URN, and by its name", () => {
    const byUrn: PreviewDigest = { steps: [{ op: "create", urn: run }] };
    expect(summarize(byUrn)).toMatchObject({ bootstrapInPreview: true, firstRun: true });
    const otherName: PreviewDigest = { steps: [{ op: "create", urn: `${run}-other`, newState: { type: "command:remote:Command" } }] };
    expect(summarize(otherName).bootstrapInPreview).toBe(false);
    const oldOnly: PreviewDigest = { steps: [{ op: "delete", urn: "urn:pulumi:s::p::x::bifrost-run", oldState: { type: "command:remote:Command" } }] };
    expect(summarize(oldOnly).bootstrapInPreview).toBe(true);
    const nested: PreviewDigest = { steps: [{ op: "create", urn: "urn:pulumi:s::p::core:bifrost:Bootstrap$command:remote:Command::bifrost-run" }] };
    expect(summarize(nested).bootstrapInPreview).toBe(true);
    const otherType: PreviewDigest = { steps: [{ op: "create", urn: "urn:pulumi:s::p::random:index/randomPassword:RandomPassword::bifrost-run" }] };
    expect(summarize(otherType).bootstrapInPreview).toBe(false);
    const newWins: PreviewDigest = { steps: [{ op: "create", urn: "urn:pulumi:s::p::x::bifrost-run", newState: { type: "command:remote:Command" }, oldState: { type: "other" } }] };
    expect(summarize(newWins).bootstrapInPreview).toBe(true);
  });

  it("a first bootstrap counts its secrets and warns about none; a delete-replaced state is not the new one", () => {
    const first: PreviewDigest = { steps: [{ op: "create", urn: run, newState: triggers({ NB_DATA_STORE_KEY: "k", NB_RELAY_SECRET: "r" }) }] };
    const s = summarize(first);
    expect(s).toMatchObject({ firstRun: true, neverChanged: [], fingerprintsRekeyed: false });
    expect(renderText(s, "hetzner")).toBe("Review summary for hetzner:\n  Resources: no changes\n  Secrets: first bootstrap, with 2 secrets\n");
    const replaced: PreviewDigest = {
      steps: [
        { op: "delete-replaced", urn: run, oldState: triggers({ NB_RELAY_SECRET: "a" }), newState: triggers({ NB_RELAY_SECRET: "zzz" }) },
        { op: "create-replacement", urn: run, newState: triggers({ NB_RELAY_SECRET: "a" }) },
      ],
    };
    expect(summarize(replaced).secrets).toEqual([]);
  });

  it("a never key that changed rekeys every fingerprint: only it is named, with its warning; an added one is no change", () => {
    const s = summarize(update({ NB_DATA_STORE_KEY: "k", NB_RELAY_SECRET: "r" }, { NB_DATA_STORE_KEY: "k2", NB_RELAY_SECRET: "r2" }));
    expect(s).toMatchObject({ fingerprintsRekeyed: true, neverChanged: ["NB_DATA_STORE_KEY"], secrets: [{ secret: "NB_DATA_STORE_KEY", how: "changed" }] });
    const text = renderText(s, "hetzner");
    expect(text).toContain("Containers the bootstrap recreates: netbird-server, and those of any other secret that changed");
    expect(text).toContain("  WARNING: NB_DATA_STORE_KEY changed, and it must never change: NetBird's database");
    const added = summarize(update({ NB_RELAY_SECRET: "r" }, { NB_RELAY_SECRET: "r", NB_DATA_STORE_KEY: "k" }));
    expect(added).toMatchObject({ fingerprintsRekeyed: false, neverChanged: [] });
  });

  it("says which server steps replace it and why, and recreates nothing when the server is new anyway", () => {
    const digest: PreviewDigest = {
      steps: [
        { op: "create-replacement", urn: server, newState: { type: "hcloud:index/server:Server" }, replaceReasons: ["image", "userData"] },
        { op: "delete-replaced", urn: server, oldState: { type: "hcloud:index/server:Server" }, replaceReasons: ["image"] },
        ...update({ NB_RELAY_SECRET: "r" }, { NB_RELAY_SECRET: "r2" }).steps!,
      ],
      changeSummary: { replace: 2, same: 9, update: 1 },
    };
    const s = summarize(digest);
    expect(s).toMatchObject({ serverReplaced: true, serverReplaceReasons: ["image", "userData"], serverInPreview: true });
    expect(renderText(s, "hetzner")).toBe(
      "Review summary for hetzner:\n  Resources: 2 to replace, 1 to update\n  Server: REPLACED (because of image, userData); the new server is shipped and bootstrapped from scratch, every container starts anew\n  Secrets changed: NB_RELAY_SECRET\n",
    );
    expect(renderMarkdown(s, "hetzner")).toContain("- Server: REPLACED (because of `image`, `userData`)");
    const noReason = summarize({ steps: [{ op: "replace", urn: server, newState: { type: "hcloud:index/server:Server" } }] });
    expect(renderText(noReason, "hetzner")).toContain("  Server: REPLACED; the new server");
    expect(summarize({ steps: [{ op: "update", urn: server, newState: { type: "hcloud:index/server:Server" } }] })).toMatchObject({ serverReplaced: false, serverInPreview: true });
  });

  it("a secret the catalog no longer knows is named, and recreates nothing", () => {
    const s = summarize(update({ RETIRED_SECRET: "a" }, { RETIRED_SECRET: "b" }));
    expect(s.secrets).toEqual([{ secret: "RETIRED_SECRET", how: "changed" }]);
    expect(s.recreated).toEqual([]);
  });

  it("a program-side secret recreates no container", () => {
    const s = summarize(update({ NB_RELAY_SECRET: "r", OPENBAO_TOKEN: "o" }, { NB_RELAY_SECRET: "r", OPENBAO_TOKEN: "o2" }));
    expect(renderText(s, "hetzner")).toContain("Containers the bootstrap recreates: none (program-side secrets only)");
  });

  it("passes on errors only, trimmed, a missing message as empty, and marks them in Markdown", () => {
    const s = summarize({ diagnostics: [{ severity: "error", message: "  broken \n" }, { severity: "warning", message: "w" }, { severity: "error" }] });
    expect(s.errors).toEqual(["broken", ""]);
    expect(renderMarkdown(s, "cluster")).toBe("### `just core cluster preview`\n\n- Resources: no changes\n- **ERROR**: broken\n- **ERROR**: \n");
  });
});
