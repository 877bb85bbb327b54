/**
 * stacks/Pulumi.*.yaml are the operator's to edit (README: First run): no test may read them,
 * or a valid edit there would turn `just test` red (issue 18, item 5). Tests read the copies
 * under test/fixtures/stacks/ (test/helpers/stackFixtures.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../../components/stack/paths";

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? (e.name === "fixtures" ? [] : files(path.join(dir, e.name))) : [path.join(dir, e.name)]));
}

describe("tests and the operator's stack files", () => {
  it("no test names a path under the project's stacks/ directory", () => {
    const offenders = files(path.join(projectRoot, "test"))
      .filter((f) => /\.(ts|mts|sh)$/.test(f))
      .filter((f) => /join\(\s*projectRoot\s*,\s*["']stacks["']|["'`]\.?\/?stacks\/Pulumi\.[a-z-]+\.yaml["'`]/.test(fs.readFileSync(f, "utf8")))
      .map((f) => path.relative(projectRoot, f));
    expect(offenders).toEqual([]);
  });
});
