// Per-test teardown for test files: register what a test opens, closed in reverse order after it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

const cleanups: (() => Promise<unknown> | unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Runs `cleanup` after the current test, after everything registered later. */
export function onTeardown(cleanup: () => Promise<unknown> | unknown): void {
  cleanups.push(cleanup);
}

/** A fresh temp folder, removed after the current test. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
