/**
 * `npm run mutate`'s verdict: the mutation score of each module of the pure core, read from
 * Stryker's JSON report (mutation-testing-report-schema), every surviving mutant with its place,
 * and a failure when one module scores under the floor. Score = detected / (detected + undetected):
 * killed and timed-out mutants against survivors and mutants no test reached.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { projectRoot as repoRoot } from "../components/stack/paths";

const floor = 90;
const report = path.join(repoRoot, "reports/mutation/mutation.json");

interface Mutant {
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number } };
}

const detected = new Set(["Killed", "Timeout"]);
const undetected = new Set(["Survived", "NoCoverage"]);

function main(): number {
  if (!fs.existsSync(report)) {
    console.error(`no report at ${path.relative(repoRoot, report)}: run \`npx stryker run\` first (npm run mutate does both)`);
    return 2;
  }
  const files = (JSON.parse(fs.readFileSync(report, "utf8")) as { files: Record<string, { mutants: Mutant[] }> }).files;
  const rows = Object.entries(files)
    .map(([file, { mutants }]) => {
      const found = mutants.filter((m) => detected.has(m.status)).length;
      const missed = mutants.filter((m) => undetected.has(m.status));
      const score = found + missed.length === 0 ? 100 : (100 * found) / (found + missed.length);
      return { file, found, missed, score };
    })
    .sort((a, b) => a.file.localeCompare(b.file));
  for (const r of rows) {
    console.log(`${r.score.toFixed(2).padStart(6)} %  ${r.file}  (${r.found} killed, ${r.missed.length} survived)`);
  }
  for (const r of rows) {
    for (const m of r.missed) {
      const where = `${r.file}:${m.location.start.line}:${m.location.start.column}`;
      console.log(`  ${m.status.padEnd(10)} ${where} ${m.mutatorName}${m.replacement ? ` → ${m.replacement.replace(/\s+/g, " ").slice(0, 80)}` : ""}`);
    }
  }
  const under = rows.filter((r) => r.score < floor);
  if (under.length > 0) {
    console.error(`mutation score under ${floor} % in: ${under.map((r) => r.file).join(", ")}`);
    return 1;
  }
  console.log(`every module at or above ${floor} %`);
  return 0;
}

process.exit(main());
