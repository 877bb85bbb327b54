/** Regenerates what is derived from the secret catalog: README's table and the secrets example (`npm run docs`). */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { secretsExample, withCatalogTable } from "./lib/catalogDocs";
import { projectRoot } from "../components/stack/paths";

const readmePath = join(projectRoot, "README.md");
writeFileSync(readmePath, withCatalogTable(readFileSync(readmePath, "utf8")));
writeFileSync(join(projectRoot, "secrets", "bootstrap.sops.yaml.example"), secretsExample());
console.log("README.md and secrets/bootstrap.sops.yaml.example regenerated from the catalog");
