/**
 * The bundle as an edge deployed with Authentik 2025.10.4 had it (the last commit before the
 * version move): that image for authentik-server and -worker, its files bind-mounted at
 * /media, and a data-dirs step that made authentik/media owned by uid 1000 and moved nothing.
 * Written over a bundle copy; the returned function puts the shipped files back.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { bifrostSource } from "../../docker-double/harness";

export function asDeployedWithAuthentik202510(bundle: string, pinnedAuthentik: string): () => void {
  const edits: Record<string, (text: string) => string> = {
    "docker-compose.yml": (text) => text.replaceAll(pinnedAuthentik, "ghcr.io/goauthentik/server:2025.10.4").replaceAll("/authentik/data:/data", "/authentik/media:/media"),
    "steps/host.sh": (text) => text.replace("readonly UID_1000_DIRS=(authentik/data ", "readonly UID_1000_DIRS=(authentik/media ").replace("\n  move_authentik_media\n", "\n"),
  };
  for (const [file, edit] of Object.entries(edits)) {
    const shipped = fs.readFileSync(path.join(bifrostSource, file), "utf8");
    const old = edit(shipped);
    if (old === shipped) throw new Error(`the 2025.10.4 bundle's ${file} differs from the shipped one in nothing: the edit no longer applies`);
    fs.writeFileSync(path.join(bundle, file), old);
  }
  return () => {
    for (const file of Object.keys(edits)) fs.copyFileSync(path.join(bifrostSource, file), path.join(bundle, file));
  };
}

/** The shipped authentik/release-lines as [line, image] rows, oldest first. */
export const releaseLinesFile = path.join(bifrostSource, "authentik/release-lines");
export function shippedReleaseLines(): [string, string][] {
  return fs
    .readFileSync(releaseLinesFile, "utf8")
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith("#"))
    .map((l) => l.trim().split(/\s+/) as [string, string]);
}
