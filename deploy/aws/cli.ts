// Process entry of `npm run cdk -- synth`: synthesizes the AWS app offline into a folder (a fresh temp
// folder unless --out is given) and prints where the template is and what it holds. Deploying is the
// CDK CLI's job (cdk.json beside this file points it at app.ts).
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isHelpWord, parseCommandLine, runMain } from '@city/protocol';
import { buildLambda, DEFAULT_LAMBDA_OUT } from '../lambda/build.ts';
import { createApp, STACK_NAME } from './app.ts';
import { cdkErrors } from './errors.ts';
import { DEFAULT_POWERBI_CODE } from './powerbi.ts';

const SYNTH_USAGE = `usage: npm run cdk -- synth [--out DIR] [--context KEY=VALUE]… [--msk]
  synthesize the ${STACK_NAME} stack offline into DIR (default: a new temp folder) and print the template path
  --context KEY=VALUE  app context: lakePrefix, rawExpireAfterDays, glueDatabase, athenaWorkgroup,
                       bytesScannedCutoffPerQuery, glueProjectionFrom (YYYY-MM-DD), msk (true|false),
                       warehouse (true|false), powerbi (true|false: the Power BI Lambda, default with
                       the warehouse), powerBiLambdaCode (folder of its bundle; built first when missing)
  --msk                same as --context msk=true: an MSK cluster with SASL/SCRAM instead of a brokers parameter
  --warehouse          same as --context warehouse=true: a Redshift Serverless warehouse with its COPY role,
                       and the Power BI Lambda with its schedule and secret`;

const USAGE = `usage: npm run cdk -- <command> [options]   (--help after a command for its options)
  synth     synthesize the AWS app (CloudFormation template and assets) offline

${SYNTH_USAGE}`;

const usageError = (detail: string) => cdkErrors.create('CDK_USAGE', detail);

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (isHelpWord(command)) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command === undefined) throw usageError('a command is required: synth');
  if (command !== 'synth') throw usageError(`unknown command "${command}"`);
  const args = parseCommandLine(rest, { out: { type: 'string' }, context: { type: 'string', multiple: true }, msk: { type: 'boolean' }, warehouse: { type: 'boolean' } }, { usage: SYNTH_USAGE, usageError });
  if (!args) return 0;
  const context: Record<string, string> = {};
  for (const pair of args.values.context ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw usageError(`--context wants KEY=VALUE, got "${pair}"`);
    context[pair.slice(0, at)] = pair.slice(at + 1);
  }
  if (args.values.msk) context['msk'] = 'true';
  if (args.values.warehouse) context['warehouse'] = 'true';
  // The Lambda's code is the bundle: build it (offline, esbuild) when the default one is not there yet.
  if (context['warehouse'] === 'true' && context['powerbi'] !== 'false' && context['powerBiLambdaCode'] === undefined && !existsSync(join(DEFAULT_POWERBI_CODE, 'index.mjs'))) {
    process.stderr.write('bundling the Power BI Lambda first (npm run lambda:build)\n');
    await buildLambda({ outDir: DEFAULT_LAMBDA_OUT });
  }
  const outdir = args.values.out ?? mkdtempSync(join(tmpdir(), 'city-cdk-'));
  const { app, stack } = createApp({ outdir, context });
  const assembly = app.synth();
  const template = join(assembly.directory, stack.templateFile);
  const resources = Object.values((JSON.parse(readFileSync(template, 'utf8')) as { Resources: Record<string, { Type: string }> }).Resources);
  const byType = new Map<string, number>();
  for (const r of resources) byType.set(r.Type, (byType.get(r.Type) ?? 0) + 1);
  process.stdout.write(`${template}\n`);
  process.stderr.write(`${STACK_NAME}: ${resources.length} resources (${[...byType].map(([t, n]) => `${t.replace(/^AWS::/, '')} ${n}`).join(', ')})\n`);
  return 0;
}

if (import.meta.main) await runMain('cdk', () => main(process.argv.slice(2)), USAGE);
