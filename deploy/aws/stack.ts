// The city's cloud side in one stack: the lake buckets, the Glue database and Athena workgroup, a VPC,
// the sink on Fargate, and optionally an MSK cluster for it. Each part is a construct of its own, so
// the warehouse (Redshift Serverless and its COPY role) and the live path (the Power BI Lambda, its
// schedule and secret) join as further constructs fed from the same `buckets`, `catalog` and `vpc`.
import { CfnOutput, CfnParameter, Stack, type StackProps } from 'aws-cdk-lib';
import { IpAddresses, SubnetType, Vpc, type IVpc } from 'aws-cdk-lib/aws-ec2';
import { Repository } from 'aws-cdk-lib/aws-ecr';
import { ContainerImage } from 'aws-cdk-lib/aws-ecs';
import type { Construct } from 'constructs';
import { LakeCatalog } from './catalog.ts';
import { cdkErrors } from './errors.ts';
import { LakeBuckets, type LakeBucketProps } from './lake.ts';
import { MSK_DEFAULTS, MSK_SASL_SCRAM_PORT, SinkKafka, type SinkKafkaProps } from './msk.ts';
import { POWERBI_DEFAULTS, PowerBiLambda, type PowerBiLambdaProps } from './powerbi.ts';
import { SinkService } from './sink-service.ts';
import { Warehouse, WAREHOUSE_DEFAULTS, type WarehouseProps } from './warehouse.ts';

export interface CitySinkStackProps extends StackProps {
  lake?: Partial<LakeBucketProps>;
  /** Glue database (default city_lake) and Athena workgroup (default city). */
  glueDatabase?: string;
  athenaWorkgroup?: string;
  /** Athena's per-query scan limit in bytes (default 10 GiB). */
  bytesScannedCutoffPerQuery?: number;
  /** First day of Athena partition projection for the sink's tables (YYYY-MM-DD); off when absent. */
  glueProjectionFrom?: string;
  /** An MSK cluster with SASL/SCRAM for the sink; without it the brokers are a parameter. */
  msk?: boolean | Partial<Omit<SinkKafkaProps, 'vpc'>>;
  /** A Redshift Serverless warehouse (namespace, workgroup, COPY role, the loader's policy). */
  warehouse?: boolean | Partial<Omit<WarehouseProps, 'vpc' | 'buckets'>>;
  /** The Power BI Lambda, its schedule and secret; needs the warehouse, and comes with it unless false. */
  powerBi?: boolean | Partial<Omit<PowerBiLambdaProps, 'warehouse'>>;
  /** Use this VPC (it needs private subnets with egress) instead of creating one. */
  vpc?: IVpc;
  sinkCpu?: number;
  sinkMemoryLimitMiB?: number;
}

export const STACK_DEFAULTS = {
  glueDatabase: 'city_lake',
  athenaWorkgroup: 'city',
  bytesScannedCutoffPerQuery: 10 * 1024 ** 3,
  sinkCpu: 1024,
  sinkMemoryLimitMiB: 2048,
} as const;

/** Glue folds names to lower case and allows letters, digits and underscores. */
const GLUE_NAME = /^[a-z0-9_]{1,255}$/;

export class CitySinkStack extends Stack {
  readonly vpc: IVpc;
  readonly buckets: LakeBuckets;
  readonly catalog: LakeCatalog;
  readonly sink: SinkService;
  readonly kafka: SinkKafka | undefined;
  readonly warehouse: Warehouse | undefined;
  readonly powerBi: PowerBiLambda | undefined;

  constructor(scope: Construct, id: string, props: CitySinkStackProps = {}) {
    super(scope, id, { description: 'Smart-city cloud sink: Parquet lake on S3, Glue catalog, Athena, sink on ECS Fargate', ...props });
    const glueDatabase = props.glueDatabase ?? STACK_DEFAULTS.glueDatabase;
    if (!GLUE_NAME.test(glueDatabase)) throw cdkErrors.create('CDK_INVALID_PROPS', `glueDatabase must match ${GLUE_NAME.source}, got "${glueDatabase}"`);

    const image = {
      repository: new CfnParameter(this, 'SinkImageRepository', {
        type: 'String',
        default: 'city-sink',
        description: 'ECR repository holding the sink image (npm run image -- build, then push)',
      }),
      tag: new CfnParameter(this, 'SinkImageTag', { type: 'String', default: '0.1.0', description: 'Tag of the sink image in that repository' }),
    };
    const desiredCount = new CfnParameter(this, 'SinkDesiredCount', { type: 'Number', default: 1, minValue: 0, maxValue: 64, description: 'Sink tasks (one consumer group)' });

    this.vpc =
      props.vpc ??
      new Vpc(this, 'Vpc', {
        ipAddresses: IpAddresses.cidr('10.40.0.0/16'),
        maxAzs: 2,
        natGateways: 1,
        subnetConfiguration: [
          { name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24 },
          { name: 'private', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        ],
      });
    this.buckets = new LakeBuckets(this, 'Lake', props.lake);
    this.catalog = new LakeCatalog(this, 'Catalog', {
      buckets: this.buckets,
      database: glueDatabase,
      workgroup: props.athenaWorkgroup ?? STACK_DEFAULTS.athenaWorkgroup,
      bytesScannedCutoffPerQuery: props.bytesScannedCutoffPerQuery ?? STACK_DEFAULTS.bytesScannedCutoffPerQuery,
    });

    this.warehouse = props.warehouse
      ? new Warehouse(this, 'Warehouse', { ...WAREHOUSE_DEFAULTS, ...(props.warehouse === true ? {} : props.warehouse), vpc: this.vpc, buckets: this.buckets })
      : undefined;
    if (props.powerBi && this.warehouse === undefined) throw cdkErrors.create('CDK_INVALID_PROPS', 'powerBi needs the warehouse (warehouse=true): the Lambda reads it');
    this.powerBi =
      this.warehouse !== undefined && props.powerBi !== false
        ? new PowerBiLambda(this, 'PowerBi', { ...POWERBI_DEFAULTS, ...(props.powerBi === true || props.powerBi === undefined ? {} : props.powerBi), warehouse: this.warehouse })
        : undefined;
    this.kafka = props.msk ? new SinkKafka(this, 'Kafka', { ...MSK_DEFAULTS, ...(props.msk === true ? {} : props.msk), vpc: this.vpc }) : undefined;
    const brokers =
      this.kafka?.bootstrapBrokers ??
      new CfnParameter(this, 'KafkaBrokers', {
        type: 'String',
        allowedPattern: '^[^\\s,]+:\\d{1,5}(,[^\\s,]+:\\d{1,5})*$',
        constraintDescription: 'host:port[,host:port…]',
        description: 'Kafka bootstrap brokers the sink consumes from',
      }).valueAsString;

    this.sink = new SinkService(this, 'Sink', {
      vpc: this.vpc,
      buckets: this.buckets,
      catalog: this.catalog,
      image: ContainerImage.fromEcrRepository(Repository.fromRepositoryName(this, 'SinkRepository', image.repository.valueAsString), image.tag.valueAsString),
      brokers,
      ...(this.kafka === undefined ? {} : { kafkaCredentials: { secret: this.kafka.sinkCredentials, mechanism: 'scram-sha-512' as const } }),
      ...(props.glueProjectionFrom === undefined ? {} : { glueProjectionFrom: props.glueProjectionFrom }),
      desiredCount: desiredCount.valueAsNumber,
      cpu: props.sinkCpu ?? STACK_DEFAULTS.sinkCpu,
      memoryLimitMiB: props.sinkMemoryLimitMiB ?? STACK_DEFAULTS.sinkMemoryLimitMiB,
    });
    if (this.kafka !== undefined) this.sink.allowKafka(this.kafka.securityGroup, MSK_SASL_SCRAM_PORT);

    new CfnOutput(this, 'LakeBucketName', { value: this.buckets.lake.bucketName, description: 'the sink’s --s3-bucket' });
    new CfnOutput(this, 'LakePrefix', { value: this.buckets.props.prefix, description: 'the sink’s --s3-prefix' });
    new CfnOutput(this, 'GlueDatabaseName', { value: this.catalog.databaseName });
    new CfnOutput(this, 'AthenaWorkGroupName', { value: this.catalog.workgroupName, description: 'npm run query -- --engine athena --workgroup …' });
    new CfnOutput(this, 'QueryPolicyArn', { value: this.catalog.queryPolicy.managedPolicyArn, description: 'attach to whoever queries the lake with Athena' });
    new CfnOutput(this, 'SinkTaskRoleArn', { value: this.sink.taskRole.roleArn });
    if (this.warehouse !== undefined) {
      new CfnOutput(this, 'WarehouseWorkgroupName', { value: this.warehouse.workgroup.workgroupName, description: 'the loader’s --workgroup' });
      new CfnOutput(this, 'WarehouseDatabase', { value: this.warehouse.props.database, description: 'the loader’s --database' });
      new CfnOutput(this, 'WarehouseCopyRoleArn', { value: this.warehouse.copyRole.roleArn, description: 'the loader’s --iam-role (also the namespace default: --iam-role default)' });
      new CfnOutput(this, 'WarehouseLoaderPolicyArn', { value: this.warehouse.loaderPolicy.managedPolicyArn, description: 'attach to whoever runs the warehouse loader' });
    }
    if (this.powerBi !== undefined) {
      new CfnOutput(this, 'PowerBiFunctionName', { value: this.powerBi.fn.functionName });
      new CfnOutput(this, 'PowerBiClientSecretArn', { value: this.powerBi.secret.secretArn, description: 'put the Entra client secret here: {"clientSecret":"…"}' });
    }
    if (this.kafka !== undefined) new CfnOutput(this, 'KafkaBootstrapBrokers', { value: this.kafka.bootstrapBrokers, description: 'SASL/SCRAM over TLS' });
  }
}
