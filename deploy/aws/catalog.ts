// The Glue database the sink registers its tables in, and the Athena workgroup that queries them: its
// own result location (enforced, encrypted), a bytes-scanned limit per query, CloudWatch metrics.
// Also the managed policy a person or service needs to query the lake through Athena.
import { Aws, Stack } from 'aws-cdk-lib';
import { CfnWorkGroup } from 'aws-cdk-lib/aws-athena';
import { CfnDatabase } from 'aws-cdk-lib/aws-glue';
import { ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { cdkErrors } from './errors.ts';
import { keyPrefix, type LakeBuckets } from './lake.ts';

export interface LakeCatalogProps {
  buckets: LakeBuckets;
  /** Glue database name (the sink's --glue-database). */
  database: string;
  /** Athena workgroup name. */
  workgroup: string;
  /** Athena cancels a query that would scan more than this (minimum 10 MB). */
  bytesScannedCutoffPerQuery: number;
}

export class LakeCatalog extends Construct {
  readonly databaseName: string;
  readonly workgroupName: string;
  readonly database: CfnDatabase;
  readonly workgroup: CfnWorkGroup;
  /** Athena queries over the lake: attach to the people and services that run them (not to the sink). */
  readonly queryPolicy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: LakeCatalogProps) {
    super(scope, id);
    if (!Number.isInteger(props.bytesScannedCutoffPerQuery) || props.bytesScannedCutoffPerQuery < 10_000_000) {
      throw cdkErrors.create('CDK_INVALID_PROPS', `bytesScannedCutoffPerQuery must be an integer of at least 10000000 (Athena's minimum), got ${props.bytesScannedCutoffPerQuery}`);
    }
    const { buckets } = props;
    this.databaseName = props.database;
    this.workgroupName = props.workgroup;
    this.database = new CfnDatabase(this, 'Database', {
      catalogId: Aws.ACCOUNT_ID,
      databaseInput: {
        name: props.database,
        description: 'Smart-city data lake (tables and partitions registered by the sink)',
        locationUri: buckets.lake.s3UrlForObject(keyPrefix(buckets.props.prefix)),
      },
    });
    this.workgroup = new CfnWorkGroup(this, 'WorkGroup', {
      name: props.workgroup,
      description: 'Queries over the smart-city lake',
      state: 'ENABLED',
      // Emptied of saved queries and history when the stack goes.
      recursiveDeleteOption: true,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: props.bytesScannedCutoffPerQuery,
        engineVersion: { selectedEngineVersion: 'AUTO' },
        resultConfiguration: {
          outputLocation: buckets.results.s3UrlForObject('athena/'),
          encryptionConfiguration: { encryptionOption: 'SSE_S3' },
        },
      },
    });

    const stack = Stack.of(this);
    const glue = (resource: string) => stack.formatArn({ service: 'glue', resource });
    const lakePrefix = keyPrefix(buckets.props.prefix);
    this.queryPolicy = new ManagedPolicy(this, 'QueryPolicy', {
      description: 'Query the smart-city lake with Athena (npm run query -- --engine athena)',
      statements: [
        // What cloud/src/ports/query/athena.ts calls.
        new PolicyStatement({
          sid: 'AthenaQueries',
          actions: ['athena:StartQueryExecution', 'athena:GetQueryExecution', 'athena:GetQueryResults', 'athena:StopQueryExecution'],
          resources: [stack.formatArn({ service: 'athena', resource: 'workgroup', resourceName: props.workgroup })],
        }),
        // What Athena reads of the catalog on the caller's behalf.
        new PolicyStatement({
          sid: 'GlueRead',
          actions: ['glue:GetDatabase', 'glue:GetTable', 'glue:GetTables', 'glue:GetPartition', 'glue:GetPartitions'],
          resources: [glue('catalog'), glue(`database/${props.database}`), glue(`table/${props.database}/*`)],
        }),
        new PolicyStatement({ sid: 'LakeRead', actions: ['s3:GetObject'], resources: [buckets.lakeObjects()] }),
        new PolicyStatement({
          sid: 'LakeList',
          actions: ['s3:ListBucket'],
          resources: [buckets.lake.bucketArn],
          ...(lakePrefix === '' ? {} : { conditions: { StringLike: { 's3:prefix': [`${lakePrefix}*`] } } }),
        }),
        // A request without a prefix key: kept apart from the prefix condition above, which would deny it.
        new PolicyStatement({ sid: 'BucketLocation', actions: ['s3:GetBucketLocation'], resources: [buckets.lake.bucketArn, buckets.results.bucketArn] }),
        new PolicyStatement({
          sid: 'ResultsWrite',
          actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
          resources: [buckets.results.arnForObjects('athena/*')],
        }),
        new PolicyStatement({ sid: 'ResultsList', actions: ['s3:ListBucket'], resources: [buckets.results.bucketArn] }),
      ],
    });
  }
}
