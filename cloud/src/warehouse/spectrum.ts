// Redshift Spectrum over the lake: an external schema over the Glue database the sink and the
// processing job register in, so Redshift reads the curated and processed tables where they lie —
// through the catalog's partition locations, hence never a replaced version (promise 7).
import { cloudErrors } from '../errors.ts';
import { quoteIdent, quoteLiteral } from './schema.ts';

export interface SpectrumSchemaOptions {
  /** Redshift schema name to create (e.g. lake). */
  externalSchema: string;
  /** Glue database holding the lake's tables. */
  glueDatabase: string;
  /** Role Redshift assumes to read Glue and S3: an ARN, or `default` (the namespace's default role). */
  iamRole: string;
  /** Region of the Glue database when it is not the warehouse's. */
  region?: string;
}

const NAME = /^[a-z_][a-z0-9_]{0,126}$/;
const ROLE = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

/** CREATE EXTERNAL SCHEMA IF NOT EXISTS … FROM DATA CATALOG: idempotent, run on its own. */
export function spectrumSchemaSql(o: SpectrumSchemaOptions): string {
  if (!NAME.test(o.externalSchema)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `spectrum: /externalSchema "${o.externalSchema}" must be a lower-case Redshift name`);
  if (!NAME.test(o.glueDatabase)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `spectrum: /glueDatabase "${o.glueDatabase}" must be a lower-case Glue database name`);
  if (o.iamRole !== 'default' && !ROLE.test(o.iamRole)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `spectrum: /iamRole must be an IAM role ARN or default, not "${o.iamRole}"`);
  if (o.region !== undefined && !REGION.test(o.region)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `spectrum: /region "${o.region}" is not an AWS region`);
  return (
    `CREATE EXTERNAL SCHEMA IF NOT EXISTS ${quoteIdent(o.externalSchema)} FROM DATA CATALOG DATABASE ${quoteLiteral(o.glueDatabase)}` +
    (o.region === undefined ? '' : ` REGION ${quoteLiteral(o.region)}`) +
    ` IAM_ROLE ${o.iamRole === 'default' ? 'default' : quoteLiteral(o.iamRole)}`
  );
}
