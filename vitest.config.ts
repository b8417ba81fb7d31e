import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // CI machines have two cores; whole-model runs on the reference executor take seconds.
    testTimeout: 60_000,
    // Lets each worker answer vitest's IPC between long synchronous tests (test/event-loop.ts).
    setupFiles: ['test/setup.ts'],
  },
});
