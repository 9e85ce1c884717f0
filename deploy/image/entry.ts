// Process entry of the sink image (bundled to /opt/city-sink/app/entry.mjs): `sink run` configured
// by SINK_* variables (see env.ts), or any sink command given as arguments.
import { runMain } from '@city/protocol';
import { main, USAGE } from '@city/cloud/cli';
import { sinkArgs } from './env.ts';

await runMain('sink', () => main(sinkArgs(process.argv.slice(2), process.env)), USAGE);
