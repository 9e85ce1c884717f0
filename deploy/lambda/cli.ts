// `npm run lambda:build -- [--out DIR] [--no-zip]`: bundles the Power BI Lambda; progress on stderr, the
// zip's path (or the folder's with --no-zip) on stdout.
import { parseCommandLine, runMain, textLog } from '@city/protocol';
import { packageErrors } from '../gateway-package/errors.ts';
import { buildLambda, DEFAULT_LAMBDA_OUT, LAMBDA_HANDLER, LAMBDA_RUNTIME } from './build.ts';

const USAGE = `usage: npm run lambda:build -- [--out DIR] [--no-zip]
  bundle the Power BI Lambda (warehouse → Power BI push dataset) into one ES module and zip it for upload
  runtime ${LAMBDA_RUNTIME}, handler ${LAMBDA_HANDLER}; its environment is in the README ("Deploy the Power BI Lambda")
  --out DIR    where powerbi-lambda/ and powerbi-lambda.zip go (default ${DEFAULT_LAMBDA_OUT})
  --no-zip     only the folder`;

async function main(argv: readonly string[]): Promise<number> {
  const args = parseCommandLine(argv, { out: { type: 'string' }, 'no-zip': { type: 'boolean', default: false } }, { usage: USAGE, usageError: (detail) => packageErrors.create('PKG_USAGE', detail) });
  if (!args) return 0;
  const zip = args.values['no-zip'] !== true;
  const built = await buildLambda({ zip, log: textLog('lambda'), ...(args.values.out === undefined ? {} : { outDir: args.values.out }) });
  process.stdout.write(`${zip ? built.zip : built.dir}\n`);
  return 0;
}

runMain('lambda:build', () => main(process.argv.slice(2)), USAGE).then((code) => process.exit(code));
