/**
 * Mutation testing of the pure core (`npm run mutate`; not part of `npm test`): each module
 * below is mutated and every mutant is run against the tests that cover it (per-test coverage),
 * with the tests vitest.mutate.config.mts selects. scripts/mutation-scores.ts then prints the
 * score of each module and fails when one is under 90 %.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutate.config.mts" },
  coverageAnalysis: "perTest",
  mutate: [
    "components/secrets/catalog.ts",
    "components/secrets/env.ts",
    "components/secrets/render.ts",
    "components/secrets/fingerprint.ts",
    "components/stack/settings.ts",
    "scripts/lib/previewSummary.ts",
    "scripts/lib/ageRecipient.ts",
    "scripts/lib/sopsFile.ts",
    "scripts/lib/secretsFiles.ts",
    "scripts/lib/secretsLifecycle.ts",
    "scripts/lib/bundleRender.ts",
    "scripts/lib/catalogDocs.ts",
  ],
  // Static mutants change what a module computes once at import (the catalog's table of data,
  // module constants): each would need the whole selection of tests (~45 s), 1082 of them about
  // 7 hours on two cores. They are left out of the run and the score; the table's data is pinned
  // by the tests that compare it with the README, the compose file and the engine.
  ignoreStatic: true,
  concurrency: 2,
  timeoutMS: 20_000,
  reporters: ["clear-text", "json", "progress"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  // The sandbox is a copy of the project: without the conformance tools' cache (the engine's
  // root filesystems, gigabytes with dangling links) or local state.
  ignorePatterns: [".cache", ".pulumi-state", "reports"],
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
};
