// Dependency warnings are filtered at one place (protocol/src/runtime/warnings.ts) and nowhere else:
// a process that loads @city/protocol prints no kafkajs TimeoutNegativeWarning, and still prints the
// same warning when our own code causes it.
import { describe, expect, inject, it } from 'vitest';
import { runCli } from './support/cli.ts';

const brokers = inject('kafkaBrokers');

/** A module that talks to Kafka with kafkajs, optionally after loading @city/protocol. */
function script(withProtocol: boolean, ownNegativeTimeout: boolean): string {
  return [
    withProtocol ? "await import('@city/protocol');" : '',
    // Node reports a negative timeout once per process: ours comes first so it is the one reported.
    ownNegativeTimeout ? 'setTimeout(() => {}, -5);' : '',
    "const { Kafka, logLevel } = await import('kafkajs');",
    `const admin = new Kafka({ clientId: 'warnings-test', brokers: ${JSON.stringify(brokers)}, logLevel: logLevel.NOTHING }).admin();`,
    'await admin.connect();',
    'await admin.listTopics();',
    'await admin.disconnect();',
  ].join('\n');
}

async function stderrOf(source: string): Promise<string> {
  const result = await runCli('--input-type=module', ['-e', source], { cwd: import.meta.dirname });
  expect(result.code, result.stderr).toBe(0);
  return result.stderr;
}

describe('dependency warnings', () => {
  it('kafkajs warns about its negative timeouts on Node 24 when nothing filters it', async () => {
    expect(await stderrOf(script(false, false))).toMatch(/TimeoutNegativeWarning/);
  });

  it('a process that loads @city/protocol prints none from kafkajs, but still ours', async () => {
    expect(await stderrOf(script(true, false))).not.toMatch(/Warning/);
    expect(await stderrOf(script(true, true))).toMatch(/TimeoutNegativeWarning: -5 is a negative number/);
  });
});
