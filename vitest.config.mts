import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Pulumi's mock runtime is process-global state: each file gets its own fork.
    pool: "forks",
    // Three files at a time on this 2-core machine (Vitest would run one): the engine tests
    // (test/engine/) mostly wait on a real Docker daemon, and many bootstrap tests wait on
    // timeouts and retry delays, while the others use the CPU (clean-clone CI, nothing else
    // changed: 595 s with two, 590 s with three; the CPU busy throughout).
    maxWorkers: 3,
    // A limit bounds a test that hangs, never a slow machine: the slowest test under the default
    // took 18 s in a full run here (init's "completes an existing file", 14 processes started),
    // and a machine whose process starts cost three times as much, running three files at once,
    // must still pass. Tests that do more say their own limit beside them.
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
