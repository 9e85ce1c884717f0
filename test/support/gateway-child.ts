// A gateway in a child process, for tests that kill it: runs one gateway from a JSON options file and
// prints its MQTT port as one JSON line on stdout, so a test can kill -9 it mid-write and start it
// again on the same buffer (gateway/src/crash.heavy.test.ts). SIGTERM closes it in order.
//   node test/support/gateway-child.ts OPTIONS.json
import { readFileSync } from 'node:fs';
import { createGateway, type GatewayOptions } from '@city/gateway';
import { closeOnSignals, jsonLog } from '@city/protocol';

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: gateway-child.ts OPTIONS.json\n');
  process.exit(2);
}
const log = jsonLog();
const gateway = createGateway(JSON.parse(readFileSync(file, 'utf8')) as GatewayOptions, log);
gateway.on('listening', ({ port }) => process.stdout.write(`${JSON.stringify({ port })}\n`));
const closed = closeOnSignals(
  () => gateway.close(),
  (message, fields) => log('info', message, fields),
);
gateway.start().then(
  () => closed.then((code) => process.exit(code)),
  (err: Error) => {
    log('error', 'gateway failed to start', { error: err.message });
    process.exit(1);
  },
);
