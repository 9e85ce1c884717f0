// The CDK app: one CitySinkStack, configured by context (`-c msk=true`, `-c warehouse=true`, `-c glueDatabase=…`; see
// stackPropsFromContext). Synthesizes offline: nothing here looks anything up in an AWS account. Run by
// `npm run cdk -- synth`, or by the CDK CLI through cdk.json beside this file.
import { App } from 'aws-cdk-lib';
import { cdkErrors } from './errors.ts';
import { CitySinkStack, type CitySinkStackProps } from './stack.ts';

export const STACK_NAME = 'CitySink';

const integer = (key: string, value: unknown): number | undefined => {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : /^\d+$/.test(String(value)) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw cdkErrors.create('CDK_INVALID_PROPS', `context ${key} must be a whole number, got "${String(value)}"`);
  return n;
};

const text = (value: unknown): string | undefined => (value === undefined ? undefined : String(value));

/** The stack's properties from the app's context (values from `-c key=value` arrive as strings). */
export function stackPropsFromContext(get: (key: string) => unknown): CitySinkStackProps {
  const flag = (key: string): boolean => {
    const value = get(key);
    if (value !== undefined && !['true', 'false', true, false].includes(value as string | boolean)) throw cdkErrors.create('CDK_INVALID_PROPS', `context ${key} must be true or false, got "${String(value)}"`);
    return value === true || value === 'true';
  };
  const lake = {
    prefix: text(get('lakePrefix')),
    rawExpireAfterDays: integer('rawExpireAfterDays', get('rawExpireAfterDays')),
  };
  // The Power BI Lambda comes with the warehouse unless powerbi=false; powerBiLambdaCode is its bundle's
  // folder (default: where `npm run lambda:build` writes it).
  const powerBi = get('powerbi') === undefined ? undefined : flag('powerbi');
  const code = text(get('powerBiLambdaCode'));
  const props: CitySinkStackProps = {
    msk: flag('msk'),
    warehouse: flag('warehouse'),
    powerBi: powerBi === false ? false : code !== undefined ? { code } : powerBi,
    lake: Object.fromEntries(Object.entries(lake).filter(([, v]) => v !== undefined)),
    glueDatabase: text(get('glueDatabase')),
    athenaWorkgroup: text(get('athenaWorkgroup')),
    bytesScannedCutoffPerQuery: integer('bytesScannedCutoffPerQuery', get('bytesScannedCutoffPerQuery')),
    glueProjectionFrom: text(get('glueProjectionFrom')),
  };
  return Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined)) as CitySinkStackProps;
}

/** The app and its stack; `outdir` is where synth writes the cloud assembly (CDK_OUTDIR or cdk.out otherwise). */
export function createApp(options: { outdir?: string; context?: Record<string, unknown> } = {}): { app: App; stack: CitySinkStack } {
  const app = new App({ ...(options.outdir === undefined ? {} : { outdir: options.outdir }), ...(options.context === undefined ? {} : { context: options.context }) });
  const account = process.env['CDK_DEFAULT_ACCOUNT'];
  const region = process.env['CDK_DEFAULT_REGION'];
  const stack = new CitySinkStack(app, STACK_NAME, {
    ...stackPropsFromContext((key) => app.node.tryGetContext(key)),
    ...(account !== undefined && region !== undefined ? { env: { account, region } } : {}),
  });
  return { app, stack };
}

if (import.meta.main) createApp().app.synth();
