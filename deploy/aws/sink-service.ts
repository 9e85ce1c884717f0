// The sink as an ECS Fargate service: the image from ECR, configured by SINK_* variables (the
// image's own convention), a read-only root with ephemeral volumes on /data and /tmp, the image's
// health check, and a task role holding exactly what the sink calls: on S3 PutObject, GetObject,
// DeleteObject and ListBucket below the lake prefix (cloud/src/ports/store/s3.ts), on Glue
// CreateDatabase, GetTable, CreateTable, UpdateTable and BatchCreatePartition on its database
// (cloud/src/ports/catalog/glue.ts). Nothing else: no Athena, no KMS (the buckets use S3-managed keys).
import { Aws, Duration, Stack } from 'aws-cdk-lib';
import { Port, SecurityGroup, SubnetType, type IVpc } from 'aws-cdk-lib/aws-ec2';
import {
  Cluster,
  ContainerInsights,
  CpuArchitecture,
  FargateService,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
  Secret as EcsSecret,
  type ContainerImage,
} from 'aws-cdk-lib/aws-ecs';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { HEALTHCHECK_COMMAND, IMAGE } from '../image/layout.ts';
import type { LakeCatalog } from './catalog.ts';
import { cdkErrors } from './errors.ts';
import { keyPrefix, type LakeBuckets } from './lake.ts';

/** The S3 and Glue actions the sink calls; the README's "Lake on S3" and "Catalog" sections list the same. */
export const SINK_S3_OBJECT_ACTIONS = ['s3:PutObject', 's3:GetObject', 's3:DeleteObject'] as const;
export const SINK_S3_BUCKET_ACTIONS = ['s3:ListBucket'] as const;
export const SINK_GLUE_ACTIONS = ['glue:CreateDatabase', 'glue:GetTable', 'glue:CreateTable', 'glue:UpdateTable', 'glue:BatchCreatePartition'] as const;

/**
 * Variables carrying the Kafka SASL/SCRAM credentials into the container (from Secrets Manager, never
 * in the task definition's plain environment). The sink's uplink options read them.
 */
export const KAFKA_CREDENTIAL_ENV = { mechanism: 'KAFKA_SASL_MECHANISM', username: 'KAFKA_SASL_USERNAME', password: 'KAFKA_SASL_PASSWORD', tls: 'KAFKA_TLS' } as const;

export interface SinkServiceProps {
  vpc: IVpc;
  buckets: LakeBuckets;
  catalog: LakeCatalog;
  image: ContainerImage;
  /** Kafka bootstrap brokers, host:port[,host:port…] (a token is fine: a parameter or MSK's answer). */
  brokers: string;
  /** SASL/SCRAM credentials (a secret with `username` and `password`), when the cluster asks for them. */
  kafkaCredentials?: { secret: ISecret; mechanism: 'scram-sha-256' | 'scram-sha-512' };
  /** First day of Athena partition projection (YYYY-MM-DD); off when absent. */
  glueProjectionFrom?: string;
  /** Tasks (one consumer group; more tasks share the partitions). A number or a parameter's token. */
  desiredCount: number;
  cpu: number;
  memoryLimitMiB: number;
}

export class SinkService extends Construct {
  readonly cluster: Cluster;
  readonly service: FargateService;
  readonly taskRole: Role;
  readonly securityGroup: SecurityGroup;

  constructor(scope: Construct, id: string, props: SinkServiceProps) {
    super(scope, id);
    if (props.glueProjectionFrom !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(props.glueProjectionFrom)) {
      throw cdkErrors.create('CDK_INVALID_PROPS', `glueProjectionFrom must be YYYY-MM-DD, got "${props.glueProjectionFrom}"`);
    }
    const stack = Stack.of(this);
    const { buckets, catalog } = props;
    const prefix = keyPrefix(buckets.props.prefix);

    this.taskRole = new Role(this, 'TaskRole', {
      assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'City sink: write the lake and register it in Glue, nothing more',
    });
    this.taskRole.addToPolicy(new PolicyStatement({ sid: 'LakeObjects', actions: [...SINK_S3_OBJECT_ACTIONS], resources: [buckets.lakeObjects()] }));
    this.taskRole.addToPolicy(
      new PolicyStatement({
        sid: 'LakeList',
        actions: [...SINK_S3_BUCKET_ACTIONS],
        resources: [buckets.lake.bucketArn],
        ...(prefix === '' ? {} : { conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } } }),
      }),
    );
    const glue = (resource: string) => stack.formatArn({ service: 'glue', resource });
    this.taskRole.addToPolicy(
      new PolicyStatement({
        sid: 'GlueCatalog',
        actions: [...SINK_GLUE_ACTIONS],
        resources: [glue('catalog'), glue(`database/${catalog.databaseName}`), glue(`table/${catalog.databaseName}/*`)],
      }),
    );

    const task = new FargateTaskDefinition(this, 'Task', {
      cpu: props.cpu,
      memoryLimitMiB: props.memoryLimitMiB,
      taskRole: this.taskRole,
      runtimePlatform: { cpuArchitecture: CpuArchitecture.X86_64, operatingSystemFamily: OperatingSystemFamily.LINUX },
    });
    // Fargate has no tmpfs: scratch space and the volume are ephemeral task storage.
    task.addVolume({ name: 'data' });
    task.addVolume({ name: 'tmp' });
    const logs = new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH });
    const environment: Record<string, string> = {
      SINK_BROKERS: props.brokers,
      SINK_S3_BUCKET: buckets.lake.bucketName,
      SINK_S3_PREFIX: buckets.props.prefix,
      SINK_S3_REGION: Aws.REGION,
      SINK_CATALOG: 'glue',
      SINK_GLUE_DATABASE: catalog.databaseName,
      // The image defaults to a folder lake on the volume; on AWS the lake is the bucket.
      SINK_LAKE: '',
      SINK_HTTP: `0.0.0.0:${IMAGE.healthPort}`,
      ...(props.glueProjectionFrom === undefined ? {} : { SINK_GLUE_PROJECTION_FROM: props.glueProjectionFrom }),
    };
    const credentials = props.kafkaCredentials;
    if (credentials !== undefined) {
      environment[KAFKA_CREDENTIAL_ENV.mechanism] = credentials.mechanism;
      environment[KAFKA_CREDENTIAL_ENV.tls] = 'true';
    }
    const container = task.addContainer('sink', {
      image: props.image,
      environment,
      ...(credentials === undefined
        ? {}
        : {
            secrets: {
              [KAFKA_CREDENTIAL_ENV.username]: EcsSecret.fromSecretsManager(credentials.secret, 'username'),
              [KAFKA_CREDENTIAL_ENV.password]: EcsSecret.fromSecretsManager(credentials.secret, 'password'),
            },
          }),
      user: `${IMAGE.uid}:${IMAGE.uid}`,
      readonlyRootFilesystem: true,
      essential: true,
      portMappings: [{ containerPort: IMAGE.healthPort, name: 'health' }],
      healthCheck: {
        command: ['CMD', ...HEALTHCHECK_COMMAND],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(60),
      },
      // The sink finishes its open files and commits within its close deadline (30 s by default).
      stopTimeout: Duration.seconds(60),
      logging: LogDrivers.awsLogs({ logGroup: logs, streamPrefix: 'sink' }),
    });
    container.addMountPoints(
      { sourceVolume: 'data', containerPath: IMAGE.dataDir, readOnly: false },
      { sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false },
    );

    this.cluster = new Cluster(this, 'Cluster', { vpc: props.vpc, containerInsightsV2: ContainerInsights.ENABLED });
    this.securityGroup = new SecurityGroup(this, 'SecurityGroup', { vpc: props.vpc, description: 'City sink tasks (outbound to Kafka, S3, Glue)', allowAllOutbound: true });
    this.service = new FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: task,
      desiredCount: props.desiredCount,
      // One consumer group: a rolling deploy starts the new tasks before the old ones leave the group.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      assignPublicIp: false,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [this.securityGroup],
    });
  }

  /** Lets the sink's tasks reach brokers behind `group` on `port`. */
  allowKafka(group: SecurityGroup, port: number): void {
    group.addIngressRule(this.securityGroup, Port.tcp(port), 'city sink to Kafka');
  }
}
