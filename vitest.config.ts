import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // CI machines have two cores; whole-model runs on the reference executor take seconds.
    testTimeout: 60_000,
  },
});
