import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['protocol/src/**/*.test.ts', 'gateway/src/**/*.test.ts', 'cloud/src/**/*.test.ts', 'device-sim/src/**/*.test.ts', 'deploy/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    // Real brokers and sockets: keep files from starving each other on two cores.
    maxWorkers: 2,
  },
});
