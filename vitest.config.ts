import { defineConfig } from 'vitest/config';

const ALL = ['protocol/src/**/*.test.ts', 'gateway/src/**/*.test.ts', 'cloud/src/**/*.test.ts', 'device-sim/src/**/*.test.ts', 'deploy/**/*.test.ts', 'test/**/*.test.ts'];
// Suites that kill processes, cut networks or run for minutes (`*.heavy.test.ts`) run in a phase of
// their own, after the rest: on two cores they would otherwise starve the timing of neighbouring files.
const HEAVY = ['**/*.heavy.test.ts'];
const IGNORED = ['**/node_modules/**', '**/dist/**'];

const common = {
  // One broker for the whole run, shared by both phases (see test/global-setup.ts).
  globalSetup: ['test/global-setup.ts'],
  testTimeout: 60_000,
  hookTimeout: 120_000,
  teardownTimeout: 30_000,
  // Real brokers and sockets: keep files from starving each other on two cores.
  maxWorkers: 2,
};

export default defineConfig({
  test: {
    projects: [
      { test: { ...common, name: 'main', include: ALL, exclude: [...HEAVY, ...IGNORED], sequence: { groupOrder: 0 } } },
      { test: { ...common, name: 'heavy', include: HEAVY, exclude: IGNORED, sequence: { groupOrder: 1 } } },
    ],
  },
});
