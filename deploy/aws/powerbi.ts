// The Power BI Lambda beside the warehouse: the bundle `npm run lambda:build` writes (one ES module,
// runtime nodejs24.x), run by an EventBridge schedule, reading the warehouse through the Data API with
// IAM (GetCredentials on the workgroup, no database password), and the Entra app's client secret from a
// Secrets Manager secret under the warehouse's key, read through the Parameters and Secrets Lambda
// Extension. Its role holds exactly what the handler calls; logs go to a log group of its own.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CfnParameter, Duration, RemovalPolicy, SecretValue, Stack } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Code, Function as LambdaFn, ParamsAndSecretsLayerVersion, ParamsAndSecretsVersions, Runtime } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { DEFAULT_LAMBDA_OUT, LAMBDA_HANDLER, LAMBDA_RUNTIME } from '../lambda/build.ts';
import { cdkErrors } from './errors.ts';
import { LOADER_DATA_API_ACTIONS, LOADER_STATEMENT_ACTIONS, type Warehouse } from './warehouse.ts';

/** The folder `npm run lambda:build` writes (index.mjs); the function's code. */
export const DEFAULT_POWERBI_CODE = join(DEFAULT_LAMBDA_OUT, 'powerbi-lambda');

export interface PowerBiLambdaProps {
  warehouse: Warehouse;
  /** Folder holding the bundled index.mjs (default: where `npm run lambda:build` puts it). */
  code: string;
  /** Schema of kpi_windows, alerts and powerbi_watermark in the warehouse. */
  schema: string;
  /** EventBridge schedule expression. */
  schedule: string;
  memoryMiB: number;
  timeoutSeconds: number;
}

export const POWERBI_DEFAULTS: Omit<PowerBiLambdaProps, 'warehouse'> = {
  code: DEFAULT_POWERBI_CODE,
  schema: 'public',
  schedule: 'rate(5 minutes)',
  memoryMiB: 256,
  timeoutSeconds: 300,
};

const GUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

export class PowerBiLambda extends Construct {
  readonly fn: LambdaFn;
  readonly role: Role;
  /** The Entra app's client secret, JSON {"clientSecret":"…"}: set its value after the deploy. */
  readonly secret: Secret;
  readonly schedule: Rule;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: PowerBiLambdaProps) {
    super(scope, id);
    if (!existsSync(join(props.code, 'index.mjs'))) {
      throw cdkErrors.create('CDK_INVALID_PROPS', `the Power BI Lambda's bundle is not at ${join(props.code, 'index.mjs')}: run npm run lambda:build (or set the context powerBiLambdaCode to its folder)`);
    }
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(props.schema)) throw cdkErrors.create('CDK_INVALID_PROPS', `powerBi schema must match ^[a-z_][a-z0-9_]{0,62}$, got "${props.schema}"`);
    if (!Number.isInteger(props.timeoutSeconds) || props.timeoutSeconds < 30 || props.timeoutSeconds > 900) {
      throw cdkErrors.create('CDK_INVALID_PROPS', `powerBi timeoutSeconds must be 30 to 900 (the handler stops 10 s before it), got ${props.timeoutSeconds}`);
    }
    const { warehouse } = props;
    const stack = Stack.of(this);
    const param = (name: string, description: string, extra: { default?: string; allowedPattern?: string } = {}) =>
      new CfnParameter(stack, name, { type: 'String', description, ...extra }).valueAsString;
    const tenantId = param('PowerBiTenantId', 'Entra tenant (directory) id of the Power BI app registration', { allowedPattern: GUID });
    const clientId = param('PowerBiClientId', 'Application (client) id of the Power BI app registration', { allowedPattern: GUID });
    const workspaceId = param('PowerBiWorkspaceId', 'Power BI workspace (group) id; empty: the service principal’s own workspace', { default: '', allowedPattern: `^$|${GUID}` });
    const dataset = param('PowerBiDataset', 'Power BI push dataset (found, or created with every table)', { default: 'city-live' });
    const schedule = param('PowerBiSchedule', 'EventBridge schedule of the Lambda', { default: props.schedule });

    // The value is set out of band (aws secretsmanager put-secret-value); until then the placeholder,
    // which holds no secret, makes a run fail saying the secret has no clientSecret.
    this.secret = new Secret(this, 'ClientSecret', {
      description: 'Power BI Lambda: the Entra app registration client secret, as JSON {"clientSecret":"…"}',
      encryptionKey: warehouse.key,
      secretStringValue: SecretValue.unsafePlainText(JSON.stringify({ clientSecret: '' })),
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.logGroup = new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });

    const workgroupArn = warehouse.workgroup.attrWorkgroupWorkgroupArn;
    this.role = new Role(this, 'Role', {
      description: 'City Power BI Lambda: reads the warehouse through the Data API and pushes to Power BI',
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
    });
    const allow = (sid: string, actions: readonly string[], resources: string[], conditions?: Record<string, unknown>) =>
      this.role.addToPolicy(new PolicyStatement({ sid, actions: [...actions], resources, ...(conditions === undefined ? {} : { conditions }) }));
    allow('DataApiStatements', LOADER_DATA_API_ACTIONS, [workgroupArn]);
    // Statement ids have no resource form: the function's own statements only.
    allow('DataApiOwnStatements', LOADER_STATEMENT_ACTIONS, ['*'], { StringEquals: { 'redshift-data:statement-owner-iam-userid': '${aws:userid}' } });
    allow('WorkgroupCredentials', ['redshift-serverless:GetCredentials'], [workgroupArn]);
    allow('ClientSecretRead', ['secretsmanager:GetSecretValue'], [this.secret.secretArn]);
    allow('ClientSecretDecrypt', ['kms:Decrypt'], [warehouse.key.keyArn], { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } });
    allow('Logs', ['logs:CreateLogStream', 'logs:PutLogEvents'], [this.logGroup.logGroupArn]);

    if (Runtime.NODEJS_24_X.name !== LAMBDA_RUNTIME) throw cdkErrors.create('CDK_INVALID_PROPS', `aws-cdk-lib's NODEJS_24_X is ${Runtime.NODEJS_24_X.name}, the bundle targets ${LAMBDA_RUNTIME}`);
    this.fn = new LambdaFn(this, 'Function', {
      description: 'Pushes the warehouse KPI windows and alerts to Power BI (npm run lambda:build)',
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      handler: LAMBDA_HANDLER,
      code: Code.fromAsset(props.code),
      memorySize: props.memoryMiB,
      timeout: Duration.seconds(props.timeoutSeconds),
      // One run at a time: two would push the same rows before either moved the watermark.
      reservedConcurrentExecutions: 1,
      retryAttempts: 0,
      role: this.role,
      logGroup: this.logGroup,
      paramsAndSecrets: ParamsAndSecretsLayerVersion.fromVersion(ParamsAndSecretsVersions.V1_0_103),
      environment: {
        REDSHIFT_WORKGROUP: warehouse.workgroup.workgroupName,
        REDSHIFT_DATABASE: warehouse.props.database,
        WAREHOUSE_SCHEMA: props.schema,
        WAREHOUSE_CREATE_TABLES: 'true',
        POWERBI_DATASET: dataset,
        POWERBI_WORKSPACE_ID: workspaceId,
        POWERBI_TENANT_ID: tenantId,
        POWERBI_CLIENT_ID: clientId,
        POWERBI_CLIENT_SECRET_ARN: this.secret.secretArn,
      },
    });
    this.fn.node.addDependency(this.role);

    this.schedule = new Rule(this, 'Schedule', {
      description: 'Runs the Power BI Lambda',
      schedule: Schedule.expression(schedule),
      targets: [new LambdaFunction(this.fn, { retryAttempts: 0 })],
    });
  }
}
