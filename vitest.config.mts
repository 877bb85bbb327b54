import { BaseSequencer, type TestSpecification } from "vitest/node";
import { defineConfig } from "vitest/config";

/**
 * The files that take minutes on this 2-core machine (clean-clone CI: the engine ~510 s, the
 * interrupt sweep ~315 s, run.test ~295 s), started first so that the short files fill the
 * other worker around them. On a fresh clone Vitest has no timings and runs larger files
 * first: the interrupt sweep, a short file, started last and ran alone for its five minutes.
 */
const slowestFirst = ["test/engine/bifrost.engine.test.ts", "test/bifrost/bootstrap/interrupt.test.ts", "test/bifrost/bootstrap/run.test.ts"];

class SlowestFirst extends BaseSequencer {
  async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (spec: TestSpecification) => {
      const at = slowestFirst.findIndex((file) => spec.moduleId.endsWith(file));
      return at < 0 ? slowestFirst.length : at;
    };
    const ordered = await super.sort(files);
    return ordered.map((spec, index) => ({ spec, index })).sort((a, b) => rank(a.spec) - rank(b.spec) || a.index - b.index).map(({ spec }) => spec);
  }
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Pulumi's mock runtime is process-global state: each file gets its own fork.
    pool: "forks",
    // Two files at a time on this 2-core machine (Vitest would run one): the engine tests
    // (test/engine/) mostly wait on a real Docker daemon while the others use the CPU.
    maxWorkers: 2,
    sequence: { sequencer: SlowestFirst },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
