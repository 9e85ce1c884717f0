// Test helper for crash.heavy.test.ts: runs one gateway from a JSON options file and prints its MQTT port
// as one JSON line on stdout, so the test can kill -9 it mid-write and start it again on the same buffer.
import { readFileSync } from 'node:fs';
import { createGateway, defaultLog } from './gateway.ts';
import type { GatewayOptions } from './options.ts';

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: crash-child.ts OPTIONS.json\n');
  process.exit(2);
}
const gateway = createGateway(JSON.parse(readFileSync(file, 'utf8')) as GatewayOptions, defaultLog);
gateway.on('listening', ({ port }) => process.stdout.write(`${JSON.stringify({ port })}\n`));
process.once('SIGTERM', () => {
  gateway.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
gateway.start().catch((err: Error) => {
  defaultLog('error', 'gateway failed to start', { error: err.message });
  process.exit(1);
});
