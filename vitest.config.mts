import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Pulumi's mock runtime is process-global state: each file gets its own fork.
    pool: "forks",
    // Two files at a time on this 2-core machine (Vitest would run one): the engine tests
    // (test/engine/) mostly wait on a real Docker daemon while the others use the CPU.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
