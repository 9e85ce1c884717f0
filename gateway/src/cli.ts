#!/usr/bin/env -S node --max-semi-space-size=4 --v8-pool-size=1
// Process entry of the gateway (`npm run gateway`, service units): the commands live in cli/. Exit
// codes: what the command returns, else 2 for bad usage or config and 1 for any other failure.
import { runMain } from '@city/protocol';
import { main } from './cli/main.ts';

runMain('gateway', () => main(process.argv.slice(2))).then((code) => process.exit(code));
