import { defineConfig } from "vitest/config";

/**
 * The tests `npm run mutate` runs against each mutant of the pure core (stryker.config.mjs):
 * the unit tests that call its modules in process, each file in well under a second. The
 * slower tests that reach the core through the whole Pulumi program or a child process (the
 * leak scan, triggers, the just recipes) stay in `npm test`: under Stryker each would run again
 * for every mutant it covers, hours in all on two cores.
 */
export default defineConfig({
  test: {
    include: [
      "test/secrets/formats.test.ts",
      "test/secrets/render.test.ts",
      "test/secrets/core.test.ts",
      "test/stack/settings.test.ts",
      "test/stack/settingsRules.test.ts",
      "test/tooling/secretsLifecycle.test.ts",
      "test/tooling/docs.test.ts",
      "test/tooling/previewDigest.test.ts",
      "test/tooling/core.test.ts",
      "test/tooling/lifecycleRules.test.ts",
      "test/tooling/sopsRules.test.ts",
    ],
  },
});
