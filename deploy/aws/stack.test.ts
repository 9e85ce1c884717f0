// The AWS app synthesized in process (offline) and checked with aws-cdk-lib/assertions: the lake
// buckets locked down, the catalog and workgroup configured, the sink's task role holding exactly the
// actions the sink's code calls and the README lists, no wildcard actions anywhere, the container
// read-only and non-root, and the MSK variant with SASL/SCRAM.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template, Match } from 'aws-cdk-lib/assertions';
import { App } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../test/support/cli.ts';
import { tempDir } from '../../test/support/teardown.ts';
import { HEALTHCHECK_COMMAND, IMAGE } from '../image/layout.ts';
import { buildLambda } from '../lambda/build.ts';
import { createApp } from './app.ts';
import { SINK_GLUE_ACTIONS, SINK_S3_BUCKET_ACTIONS, SINK_S3_OBJECT_ACTIONS } from './sink-service.ts';
import { CitySinkStack } from './stack.ts';

const ROOT = join(import.meta.dirname, '..', '..');

// The Power BI Lambda's code is the real bundle, built once into a temp folder (the app refuses to synth
// the warehouse variant without one).
let lambdaCode: string;
let lambdaOut: string | undefined;
beforeAll(async () => {
  lambdaOut = mkdtempSync(join(tmpdir(), 'city-cdk-lambda-'));
  lambdaCode = (await buildLambda({ outDir: lambdaOut, zip: false })).dir;
}, 120_000);
afterAll(() => {
  if (lambdaOut !== undefined) rmSync(lambdaOut, { recursive: true, force: true });
});

interface Statement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource?: unknown;
  Condition?: unknown;
  Principal?: unknown;
}
type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

const list = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

/** Every policy statement in the template: identity policies, managed policies, bucket and key policies. */
function statements(resources: Resources): { where: string; statement: Statement }[] {
  const out: { where: string; statement: Statement }[] = [];
  for (const [id, r] of Object.entries(resources)) {
    const docs: unknown[] = [];
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy' || r.Type === 'AWS::S3::BucketPolicy') docs.push(p['PolicyDocument']);
    if (r.Type === 'AWS::KMS::Key') docs.push(p['KeyPolicy']);
    if (r.Type === 'AWS::IAM::Role') for (const inline of (p['Policies'] as { PolicyDocument: unknown }[] | undefined) ?? []) docs.push(inline.PolicyDocument);
    for (const doc of docs) for (const statement of (doc as { Statement: Statement[] }).Statement) out.push({ where: `${r.Type} ${id}`, statement });
  }
  return out;
}

/** The task role's policy statements (the role the sink's code runs as). */
function taskRoleStatements(template: Template): Statement[] {
  const roles = template.findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp('^City sink') } });
  expect(Object.keys(roles)).toHaveLength(1);
  const roleId = Object.keys(roles)[0]!;
  const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
    (p['Properties'] as { Roles: { Ref: string }[] }).Roles.some((r) => r.Ref === roleId),
  );
  expect(policies).toHaveLength(1);
  return (policies[0]!['Properties'] as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement;
}

/** Actions named in the README sentence that starts with `marker` (to the end of its paragraph, or to `end`), e.g. `s3:PutObject`. */
function readmeActions(marker: string, service: string, end = '\n\n'): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(marker);
  expect(start, `README: "${marker}"`).toBeGreaterThan(-1);
  const stop = readme.indexOf(end, start);
  expect(stop, `README: "${end}" after "${marker}"`).toBeGreaterThan(start);
  const text = readme.slice(start, stop);
  return [...new Set([...text.matchAll(new RegExp(`\`(${service}:[A-Za-z]+)\``, 'g'))].map((m) => m[1]!))].sort();
}

/** AWS SDK commands a source file imports, as IAM actions (ListObjectsV2 is authorised as ListBucket). */
function sdkActions(file: string, service: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const names = [...text.matchAll(/\b([A-Z][A-Za-z0-9]+)Command\b/g)].map((m) => m[1]!);
  return [...new Set(names.map((n) => `${service}:${n === 'ListObjectsV2' ? 'ListBucket' : n}`))].sort();
}

describe('AWS app', () => {
  let template: Template;
  let resources: Resources;

  beforeAll(() => {
    const { stack } = createApp({ outdir: tempDir('city-cdk-test-') });
    template = Template.fromStack(stack);
    resources = template.toJSON()['Resources'] as Resources;
  });

  it('keeps the lake and results buckets private, encrypted, TLS-only, with a lifecycle for the raw zone', () => {
    template.resourceCountIs('AWS::S3::Bucket', 2);
    template.allResourcesProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            Id: 'raw-zone',
            Prefix: 'lake/raw/',
            Status: 'Enabled',
            ExpirationInDays: 730,
            Transitions: [
              { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
              { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
            ],
          }),
        ]),
      },
    });
    // Each bucket's policy denies every request that is not over TLS.
    const policies = template.findResources('AWS::S3::BucketPolicy');
    expect(Object.keys(policies)).toHaveLength(2);
    for (const policy of Object.values(policies)) {
      expect((policy['Properties'] as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
    // The lake outlives the stack.
    template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain', Properties: Match.objectLike({ LifecycleConfiguration: Match.anyValue() }) });
  });

  it('creates the Glue database and an Athena workgroup with an enforced, encrypted result location and a scan limit', () => {
    template.hasResourceProperties('AWS::Glue::Database', { DatabaseInput: Match.objectLike({ Name: 'city_lake' }) });
    template.hasResourceProperties('AWS::Athena::WorkGroup', {
      Name: 'city',
      WorkGroupConfiguration: {
        EnforceWorkGroupConfiguration: true,
        PublishCloudWatchMetricsEnabled: true,
        BytesScannedCutoffPerQuery: 10 * 1024 ** 3,
        EngineVersion: { SelectedEngineVersion: 'AUTO' },
        ResultConfiguration: {
          OutputLocation: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith(['s3://', '/athena/'])]) }),
          EncryptionConfiguration: { EncryptionOption: 'SSE_S3' },
        },
      },
    });
  });

  it('gives the sink exactly the S3 and Glue actions its code calls and the README lists, on the lake and its database only', () => {
    const granted = taskRoleStatements(template);
    expect(granted.every((s) => s.Effect === 'Allow')).toBe(true);
    const actions = (service: string) => [...new Set(granted.flatMap((s) => list(s.Action)).filter((a) => a.startsWith(`${service}:`)))].sort();
    expect(granted.flatMap((s) => list(s.Action)).every((a) => a.startsWith('s3:') || a.startsWith('glue:'))).toBe(true);
    // The code: the SDK commands the store and the Glue catalog send.
    expect(actions('s3')).toEqual(sdkActions('cloud/src/ports/store/s3.ts', 's3'));
    expect(actions('glue')).toEqual(sdkActions('cloud/src/ports/catalog/glue.ts', 'glue'));
    // The README's lists say the same.
    expect(actions('s3')).toEqual(readmeActions('The role needs `s3:', 's3'));
    expect(actions('glue')).toEqual(readmeActions('The IAM role needs `glue:', 'glue'));
    expect(actions('glue')).toEqual([...SINK_GLUE_ACTIONS].sort());
    expect(actions('s3')).toEqual([...SINK_S3_BUCKET_ACTIONS, ...SINK_S3_OBJECT_ACTIONS].sort());
    // No resource wildcard: objects below the lake prefix, the bucket with a prefix condition, the database's ARNs.
    const text = JSON.stringify(granted);
    expect(text).not.toMatch(/"Resource":"\*"/);
    expect(granted.find((s) => list(s.Action).includes('s3:PutObject'))?.Resource).toEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [expect.stringMatching(/^Lake/), 'Arn'] }, '/lake/*']] });
    expect(granted.find((s) => list(s.Action).includes('s3:ListBucket'))?.Condition).toEqual({ StringLike: { 's3:prefix': ['lake/*'] } });
    const glue = granted.find((s) => list(s.Action).includes('glue:CreateTable'))!;
    expect(JSON.stringify(glue.Resource)).toMatch(/:database\/city_lake"/);
    expect(JSON.stringify(glue.Resource)).toMatch(/:table\/city_lake\/\*"/);
  });

  it('allows no wildcard action anywhere (Deny statements aside), in every variant', () => {
    const { stack } = createApp({ outdir: tempDir('city-cdk-msk-'), context: { msk: 'true' } });
    const { stack: warehouse } = createApp({ outdir: tempDir('city-cdk-warehouse-'), context: { warehouse: 'true', powerBiLambdaCode: lambdaCode } });
    expect(warehouse.powerBi).toBeDefined();
    for (const r of [resources, Template.fromStack(stack).toJSON()['Resources'] as Resources, Template.fromStack(warehouse).toJSON()['Resources'] as Resources]) {
      const found = statements(r);
      expect(found.length).toBeGreaterThan(5);
      const wild = found.filter(({ statement }) => statement.Effect === 'Allow' && list(statement.Action).some((a) => a === '*' || /^[a-z0-9-]+:\*$/.test(a)));
      expect(wild.map((w) => `${w.where}: ${JSON.stringify(w.statement.Action)}`)).toEqual([]);
    }
  });

  it('runs the sink image read-only and non-root, with its health check, volumes and configuration by environment', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RequiresCompatibilities: ['FARGATE'],
      Volumes: [{ Name: 'data' }, { Name: 'tmp' }],
      ContainerDefinitions: [
        Match.objectLike({
          ReadonlyRootFilesystem: true,
          User: `${IMAGE.uid}:${IMAGE.uid}`,
          HealthCheck: Match.objectLike({ Command: ['CMD', ...HEALTHCHECK_COMMAND] }),
          MountPoints: [
            { ContainerPath: IMAGE.dataDir, ReadOnly: false, SourceVolume: 'data' },
            { ContainerPath: '/tmp', ReadOnly: false, SourceVolume: 'tmp' },
          ],
          Environment: Match.arrayWith([
            { Name: 'SINK_BROKERS', Value: { Ref: 'KafkaBrokers' } },
            { Name: 'SINK_S3_BUCKET', Value: { Ref: Match.stringLikeRegexp('^Lake') } },
            { Name: 'SINK_S3_PREFIX', Value: 'lake' },
            { Name: 'SINK_CATALOG', Value: 'glue' },
            { Name: 'SINK_GLUE_DATABASE', Value: 'city_lake' },
            { Name: 'SINK_LAKE', Value: '' },
          ]),
        }),
      ],
    });
    template.hasParameter('KafkaBrokers', { Type: 'String', AllowedPattern: Match.anyValue() });
    template.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      DeploymentConfiguration: Match.objectLike({ DeploymentCircuitBreaker: { Enable: true, Rollback: true } }),
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
    });
  });

  it('with msk: a SASL/SCRAM-only, TLS cluster, the sink user in a KMS-encrypted AmazonMSK_ secret, passed as secrets', () => {
    const { stack } = createApp({ outdir: tempDir('city-cdk-msk-'), context: { msk: 'true' } });
    const msk = Template.fromStack(stack);
    msk.hasResourceProperties('AWS::MSK::Cluster', {
      ClientAuthentication: { Sasl: { Scram: { Enabled: true } }, Unauthenticated: { Enabled: false } },
      EncryptionInfo: { EncryptionInTransit: { ClientBroker: 'TLS', InCluster: true } },
    });
    msk.hasResourceProperties('AWS::SecretsManager::Secret', { Name: Match.stringLikeRegexp('^AmazonMSK_'), KmsKeyId: Match.anyValue() });
    msk.resourceCountIs('AWS::MSK::BatchScramSecret', 1);
    msk.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 9096, ToPort: 9096, IpProtocol: 'tcp' });
    msk.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Environment: Match.arrayWith([{ Name: 'SINK_BROKERS', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('BootstrapBrokers'), 'BootstrapBrokerStringSaslScram'] } }]),
          Secrets: [Match.objectLike({ Name: 'KAFKA_SASL_USERNAME' }), Match.objectLike({ Name: 'KAFKA_SASL_PASSWORD' })],
        }),
      ],
    });
    expect(Object.keys(msk.toJSON()['Parameters'] as object)).not.toContain('KafkaBrokers');
    // The plain environment holds no credential.
    expect(JSON.stringify(msk.findResources('AWS::ECS::TaskDefinition'))).not.toMatch(/"Name":"KAFKA_SASL_PASSWORD","Value"/);
  });

  it('refuses properties AWS would refuse at deploy time, naming them', () => {
    expect(() => new CitySinkStack(new App(), 'Bad', { bytesScannedCutoffPerQuery: 1000 })).toThrow(/CDK_INVALID_PROPS|bytesScannedCutoffPerQuery must be an integer of at least 10000000/);
    expect(() => new CitySinkStack(new App(), 'Bad', { glueDatabase: 'City-Lake' })).toThrow(/glueDatabase must match/);
    expect(() => new CitySinkStack(new App(), 'Bad', { glueProjectionFrom: 'yesterday' })).toThrow(/glueProjectionFrom must be YYYY-MM-DD/);
    expect(() => new CitySinkStack(new App(), 'Bad', { lake: { rawExpireAfterDays: 10 } })).toThrow(/rawExpireAfterDays must be after/);
    expect(() => createApp({ outdir: tempDir('city-cdk-bad-'), context: { msk: 'yes' } })).toThrow(/context msk must be true or false/);
    expect(() => createApp({ outdir: tempDir('city-cdk-bad-'), context: { warehouse: '1' } })).toThrow(/context warehouse must be true or false/);
    expect(() => new CitySinkStack(new App(), 'Bad', { warehouse: { baseCapacity: 12 } })).toThrow(/warehouse baseCapacity must be 8 to 512 in steps of 8/);
    expect(() => new CitySinkStack(new App(), 'Bad', { warehouse: { workgroupName: 'City_DW' } })).toThrow(/warehouse workgroupName must match/);
  });

  it('synthesizes offline from the command line into --out', async () => {
    const out = tempDir('city-cdk-cli-');
    const result = await runCli(join(import.meta.dirname, 'cli.ts'), ['synth', '--out', out, '--context', 'glueDatabase=town_lake'], { timeoutMs: 120_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(join(out, 'CitySink.template.json'));
    expect(readFileSync(join(out, 'CitySink.template.json'), 'utf8')).toContain('"town_lake"');
    expect(result.stderr).toMatch(/^CitySink: \d+ resources \(/);
    const bad = await runCli(join(import.meta.dirname, 'cli.ts'), ['synth', '--context', 'nokey']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/CDK_USAGE.*--context wants KEY=VALUE/);
  });
});

describe('AWS app with the warehouse', () => {
  let template: Template;
  let plain: Template;

  beforeAll(() => {
    template = Template.fromStack(createApp({ outdir: tempDir('city-cdk-warehouse-'), context: { warehouse: 'true', powerBiLambdaCode: lambdaCode } }).stack);
    plain = Template.fromStack(createApp({ outdir: tempDir('city-cdk-plain-') }).stack);
  });

  /** The statements of the one role or managed policy whose description matches. */
  const roleStatements = (description: RegExp): Statement[] => {
    const roles = template.findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp(description.source) } });
    expect(Object.keys(roles)).toHaveLength(1);
    const roleId = Object.keys(roles)[0]!;
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) => (p['Properties'] as { Roles: { Ref: string }[] }).Roles.some((r) => r.Ref === roleId));
    expect(policies).toHaveLength(1);
    return (policies[0]!['Properties'] as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement;
  };
  const loaderStatements = (): Statement[] => {
    const policies = Object.values(template.findResources('AWS::IAM::ManagedPolicy', { Properties: { Description: Match.stringLikeRegexp('^Load the smart-city lake into the Redshift') } }));
    expect(policies).toHaveLength(1);
    return (policies[0]!['Properties'] as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement;
  };
  const actionsOf = (granted: Statement[], service: string) => [...new Set(granted.flatMap((s) => list(s.Action)).filter((a) => a.startsWith(`${service}:`)))].sort();
  const workgroupArn = { 'Fn::GetAtt': [expect.stringMatching(/^WarehouseWorkgroup/), 'Workgroup.WorkgroupArn'] };
  const lakeObjects = (suffix: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [expect.stringMatching(/^Lake/), 'Arn'] }, suffix]] });

  it('is only there when asked for', () => {
    plain.resourceCountIs('AWS::RedshiftServerless::Namespace', 0);
    plain.resourceCountIs('AWS::RedshiftServerless::Workgroup', 0);
    template.resourceCountIs('AWS::RedshiftServerless::Namespace', 1);
    template.resourceCountIs('AWS::RedshiftServerless::Workgroup', 1);
  });

  it('encrypts the namespace under its own rotating key, Secrets Manager keeping the admin password, the COPY role its default', () => {
    const keys = template.findResources('AWS::KMS::Key', { Properties: { Description: Match.stringLikeRegexp('^Redshift Serverless') } });
    expect(Object.keys(keys)).toHaveLength(1);
    const keyId = Object.keys(keys)[0]!;
    expect(keys[keyId]!['Properties']).toMatchObject({ EnableKeyRotation: true });
    const copyRole = Object.keys(template.findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp('^City warehouse') } }))[0]!;
    template.hasResourceProperties('AWS::RedshiftServerless::Namespace', {
      NamespaceName: 'city',
      DbName: 'dev',
      ManageAdminPassword: true,
      AdminUserPassword: Match.absent(),
      KmsKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
      AdminPasswordSecretKmsKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
      IamRoles: [{ 'Fn::GetAtt': [copyRole, 'Arn'] }],
      DefaultIamRoleArn: { 'Fn::GetAtt': [copyRole, 'Arn'] },
    });
    // The key's uses go only through Redshift Serverless and Secrets Manager.
    const use = (keys[keyId]!['Properties'] as { KeyPolicy: { Statement: Statement[] } }).KeyPolicy.Statement.find((s) => list(s.Action).includes('kms:Decrypt'))!;
    expect(JSON.stringify(use.Condition)).toMatch(/kms:ViaService.*redshift-serverless\..*secretsmanager\./);
  });

  it('runs a small workgroup in the private subnets, not publicly accessible, with enhanced VPC routing and no ingress', () => {
    const privateSubnets = Object.keys(template.findResources('AWS::EC2::Subnet', { Properties: { MapPublicIpOnLaunch: false } }));
    expect(privateSubnets.length).toBeGreaterThan(1);
    template.hasResourceProperties('AWS::RedshiftServerless::Workgroup', {
      WorkgroupName: 'city',
      NamespaceName: 'city',
      BaseCapacity: 8,
      PubliclyAccessible: false,
      EnhancedVpcRouting: true,
      SubnetIds: privateSubnets.map((id) => ({ Ref: id })),
      SecurityGroupIds: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^WarehouseWorkgroupSecurityGroup'), 'GroupId'] }],
    });
    template.hasResource('AWS::RedshiftServerless::Workgroup', { DependsOn: [Match.stringLikeRegexp('^WarehouseNamespace')] });
    const groups = Object.values(template.findResources('AWS::EC2::SecurityGroup', { Properties: { GroupDescription: Match.stringLikeRegexp('^Redshift Serverless') } }));
    expect(groups).toHaveLength(1);
    expect(groups[0]!['Properties']).toMatchObject({ SecurityGroupEgress: [{ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' }] });
    expect(groups[0]!['Properties']).not.toHaveProperty('SecurityGroupIngress');
    template.resourcePropertiesCountIs('AWS::EC2::SecurityGroupIngress', { GroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^WarehouseWorkgroupSecurityGroup'), 'GroupId'] } }, 0);
  });

  it('gives the COPY role, trusted by Redshift, exactly the README\'s reads of the lake and the manifests', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      Description: Match.stringLikeRegexp('^City warehouse'),
      AssumeRolePolicyDocument: {
        Statement: [
          { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'redshift.amazonaws.com' } },
          { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'redshift-serverless.amazonaws.com' } },
        ],
      },
    });
    const granted = roleStatements(/^City warehouse/);
    expect(granted.every((s) => s.Effect === 'Allow')).toBe(true);
    expect(granted.flatMap((s) => list(s.Action)).sort()).toEqual(readmeActions('the role Redshift assumes for COPY', 's3'));
    expect(granted).toEqual([
      expect.objectContaining({ Action: 's3:GetObject', Resource: [lakeObjects('/lake/*'), lakeObjects('/lake/_warehouse/manifests/*')] }),
      expect.objectContaining({ Action: 's3:ListBucket', Resource: { 'Fn::GetAtt': [expect.stringMatching(/^Lake/), 'Arn'] } }),
    ]);
  });

  it('gives the loader\'s policy exactly what the README lists for the Data API on Serverless with IAM, and the Data API calls the code makes', () => {
    const granted = loaderStatements();
    expect(granted.every((s) => s.Effect === 'Allow')).toBe(true);
    const marker = 'the loader\'s role: `redshift-data:';
    const end = 'the role Redshift assumes for COPY';
    expect(actionsOf(granted, 'redshift-data')).toEqual(readmeActions(marker, 'redshift-data', end));
    expect(actionsOf(granted, 'redshift-data')).toEqual(sdkActions('cloud/src/warehouse/redshift.ts', 'redshift-data'));
    expect(actionsOf(granted, 'redshift-serverless')).toEqual(readmeActions(marker, 'redshift-serverless', end));
    expect(actionsOf(granted, 's3')).toEqual(readmeActions(marker, 's3', end));
    // Serverless with IAM: no cluster credentials, no secret (the admin password stays with Secrets Manager).
    expect(granted.flatMap((s) => list(s.Action)).every((a) => /^(redshift-data|redshift-serverless|s3):/.test(a))).toBe(true);
    const by = (action: string) => granted.find((s) => list(s.Action).includes(action))!;
    expect(by('redshift-data:BatchExecuteStatement').Resource).toEqual(workgroupArn);
    expect(by('redshift-data:ExecuteStatement').Resource).toEqual(workgroupArn);
    expect(by('redshift-serverless:GetCredentials').Resource).toEqual(workgroupArn);
    // The statement actions have no resource form: the caller's own statements only.
    expect(by('redshift-data:DescribeStatement')).toMatchObject({ Resource: '*', Condition: { StringEquals: { 'redshift-data:statement-owner-iam-userid': '${aws:userid}' } } });
    expect(granted.filter((s) => s.Resource === '*').every((s) => s.Condition !== undefined)).toBe(true);
    expect(by('s3:PutObject')).toMatchObject({ Action: ['s3:PutObject', 's3:DeleteObject'], Resource: lakeObjects('/lake/_warehouse/manifests/*') });
    expect(by('s3:GetObject').Resource).toEqual(lakeObjects('/lake/*'));
    expect(by('s3:ListBucket').Condition).toEqual({ StringLike: { 's3:prefix': ['lake/*'] } });
  });

  it('outputs what the loader\'s command line needs, and synthesizes from the command line with --warehouse', async () => {
    template.hasOutput('WarehouseWorkgroupName', { Value: 'city' });
    template.hasOutput('WarehouseDatabase', { Value: 'dev' });
    template.hasOutput('WarehouseCopyRoleArn', { Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^WarehouseCopyRole'), 'Arn'] } });
    template.hasOutput('WarehouseLoaderPolicyArn', { Value: { Ref: Match.stringLikeRegexp('^WarehouseLoaderPolicy') } });
    const out = tempDir('city-cdk-cli-warehouse-');
    const result = await runCli(join(import.meta.dirname, 'cli.ts'), ['synth', '--out', out, '--warehouse', '--context', `powerBiLambdaCode=${lambdaCode}`], { timeoutMs: 120_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/RedshiftServerless::Namespace 1, .*RedshiftServerless::Workgroup 1/);
  });
});

describe('AWS app with the Power BI Lambda (comes with the warehouse)', () => {
  let template: Template;
  let outdir: string;

  beforeAll(() => {
    // Kept for the whole block (tempDir goes after the first test): a test reads the staged asset.
    outdir = mkdtempSync(join(tmpdir(), 'city-cdk-powerbi-'));
    template = Template.fromStack(createApp({ outdir, context: { warehouse: 'true', powerBiLambdaCode: lambdaCode } }).stack);
  });
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  const lambdaStatements = (): Statement[] => {
    const roles = template.findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp('^City Power BI Lambda') } });
    expect(Object.keys(roles)).toHaveLength(1);
    const roleId = Object.keys(roles)[0]!;
    expect(roles[roleId]!['Properties']).toMatchObject({
      AssumeRolePolicyDocument: { Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } }] },
    });
    // No managed policy (AWSLambdaBasicExecutionRole would allow logs on every group).
    expect(roles[roleId]!['Properties']).not.toHaveProperty('ManagedPolicyArns');
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) => (p['Properties'] as { Roles: { Ref: string }[] }).Roles.some((r) => r.Ref === roleId));
    expect(policies).toHaveLength(1);
    return (policies[0]!['Properties'] as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement;
  };
  const ref = (prefix: string) => ({ Ref: Match.stringLikeRegexp(`^${prefix}`) });

  it('is only there with the warehouse, can be left out, and refuses to synth without its bundle', () => {
    template.resourceCountIs('AWS::Lambda::Function', 1);
    const plain = Template.fromStack(createApp({ outdir: tempDir('city-cdk-plain-') }).stack);
    plain.resourceCountIs('AWS::Lambda::Function', 0);
    plain.resourceCountIs('AWS::SecretsManager::Secret', 0);
    const without = Template.fromStack(createApp({ outdir: tempDir('city-cdk-nopbi-'), context: { warehouse: 'true', powerbi: 'false' } }).stack);
    without.resourceCountIs('AWS::Lambda::Function', 0);
    without.resourceCountIs('AWS::Events::Rule', 0);
    without.resourceCountIs('AWS::RedshiftServerless::Workgroup', 1);
    expect(() => createApp({ outdir: tempDir('city-cdk-bad-'), context: { powerbi: 'true' } })).toThrow(/CDK_INVALID_PROPS|powerBi needs the warehouse/);
    const missing = join(tempDir('city-cdk-nobundle-'), 'powerbi-lambda');
    expect(() => createApp({ outdir: tempDir('city-cdk-bad-'), context: { warehouse: 'true', powerBiLambdaCode: missing } })).toThrow(
      `the Power BI Lambda's bundle is not at ${join(missing, 'index.mjs')}: run npm run lambda:build`,
    );
    expect(() => new CitySinkStack(new App(), 'Bad', { warehouse: true, powerBi: { code: lambdaCode, timeoutSeconds: 5 } })).toThrow(/powerBi timeoutSeconds must be 30 to 900/);
  });

  it('runs the bundle on Node.js 24 (arm64), one run at a time, configured for the warehouse and the secret', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
      Architectures: ['arm64'],
      MemorySize: 256,
      Timeout: 300,
      ReservedConcurrentExecutions: 1,
      LoggingConfig: { LogGroup: ref('PowerBiLogs') },
      Layers: [{ 'Fn::FindInMap': [Match.anyValue(), { Ref: 'AWS::Region' }, Match.stringLikeRegexp('arm64$')] }],
      Environment: {
        Variables: Match.objectLike({
          REDSHIFT_WORKGROUP: 'city',
          REDSHIFT_DATABASE: 'dev',
          WAREHOUSE_CREATE_TABLES: 'true',
          POWERBI_TENANT_ID: { Ref: 'PowerBiTenantId' },
          POWERBI_CLIENT_ID: { Ref: 'PowerBiClientId' },
          POWERBI_DATASET: { Ref: 'PowerBiDataset' },
          POWERBI_CLIENT_SECRET_ARN: ref('PowerBiClientSecret'),
          PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '2773',
        }),
      },
    });
    // No secret value, password or cluster credential reaches the environment.
    const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0]!;
    const variables = (fn['Properties'] as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    expect(Object.keys(variables).filter((k) => /SECRET$|PASSWORD/.test(k))).toEqual([]);
    // The environment names only what the handler reads (plus the extension's own settings).
    const handlerSource = readFileSync(join(ROOT, 'cloud/src/live/lambda/handler.ts'), 'utf8');
    for (const name of Object.keys(variables).filter((k) => !/^(PARAMETERS_SECRETS_EXTENSION|SECRETS_MANAGER|SSM_PARAMETER_STORE)_/.test(k))) expect(handlerSource, name).toContain(`${name}:`);
    // The code asset is the bundle, byte for byte.
    const key = (fn['Properties'] as { Code: { S3Key: string } }).Code.S3Key;
    expect(readFileSync(join(outdir, `asset.${key.replace(/\.zip$/, '')}`, 'index.mjs'))).toEqual(readFileSync(join(lambdaCode, 'index.mjs')));
  });

  it('keeps the Entra client secret in Secrets Manager under the warehouse key, with no secret in the template', () => {
    const keyId = Object.keys(template.findResources('AWS::KMS::Key', { Properties: { Description: Match.stringLikeRegexp('^Redshift Serverless') } }))[0]!;
    template.resourceCountIs('AWS::SecretsManager::Secret', 1);
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Description: Match.stringLikeRegexp('^Power BI Lambda'),
      KmsKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
      // A placeholder the handler refuses by name until the real value is put.
      SecretString: JSON.stringify({ clientSecret: '' }),
    });
    template.hasOutput('PowerBiClientSecretArn', { Value: ref('PowerBiClientSecret') });
  });

  it('runs on an EventBridge schedule (a parameter, every 5 minutes by default) that alone may invoke it', () => {
    template.hasParameter('PowerBiSchedule', { Type: 'String', Default: 'rate(5 minutes)' });
    template.hasParameter('PowerBiTenantId', { AllowedPattern: Match.stringLikeRegexp('\\[0-9a-fA-F\\]\\{8\\}') });
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: { Ref: 'PowerBiSchedule' },
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PowerBiFunction'), 'Arn'] } })],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PowerBiSchedule'), 'Arn'] },
    });
    template.resourceCountIs('AWS::Lambda::Permission', 1);
  });

  it('gives its role exactly what the README lists and the handler calls, each on its own resource', () => {
    const granted = lambdaStatements();
    expect(granted.every((s) => s.Effect === 'Allow')).toBe(true);
    const actions = granted.flatMap((s) => list(s.Action));
    expect(actions.filter((a) => a === '*' || a.endsWith(':*'))).toEqual([]);
    const marker = 'With the AWS app, the function\'s role holds';
    expect([...actions].sort()).toEqual(['kms', 'logs', 'redshift-data', 'redshift-serverless', 'secretsmanager'].flatMap((service) => readmeActions(marker, service)).sort());
    const dataApi = [...new Set(actions.filter((a) => a.startsWith('redshift-data:')))].sort();
    expect(dataApi).toEqual(sdkActions('cloud/src/warehouse/redshift.ts', 'redshift-data'));
    const by = (action: string) => granted.find((s) => list(s.Action).includes(action))!;
    const workgroupArn = { 'Fn::GetAtt': [expect.stringMatching(/^WarehouseWorkgroup/), 'Workgroup.WorkgroupArn'] };
    expect(by('redshift-data:ExecuteStatement').Resource).toEqual(workgroupArn);
    expect(by('redshift-serverless:GetCredentials').Resource).toEqual(workgroupArn);
    expect(by('redshift-data:GetStatementResult')).toMatchObject({ Resource: '*', Condition: { StringEquals: { 'redshift-data:statement-owner-iam-userid': '${aws:userid}' } } });
    expect(granted.filter((s) => s.Resource === '*').every((s) => s.Condition !== undefined)).toBe(true);
    expect(by('secretsmanager:GetSecretValue')).toMatchObject({ Action: 'secretsmanager:GetSecretValue', Resource: { Ref: expect.stringMatching(/^PowerBiClientSecret/) } });
    expect(by('kms:Decrypt')).toMatchObject({ Resource: { 'Fn::GetAtt': [expect.stringMatching(/^WarehouseKey/), 'Arn'] } });
    expect(JSON.stringify(by('kms:Decrypt').Condition)).toMatch(/kms:ViaService.*secretsmanager\./);
    expect(by('logs:PutLogEvents').Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^PowerBiLogs/), 'Arn'] });
  });
});
