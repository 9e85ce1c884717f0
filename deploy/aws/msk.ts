// An optional Amazon MSK cluster for the sink (and the gateways) to use: SASL/SCRAM only (no
// unauthenticated clients), TLS between clients and brokers and inside the cluster, and the sink's
// SCRAM user as a Secrets Manager secret (MSK asks for the AmazonMSK_ name prefix and a customer
// managed key). The bootstrap address is read back once deployed (MSK does not expose it to
// CloudFormation directly).
import { RemovalPolicy } from 'aws-cdk-lib';
import { SecurityGroup, type IVpc } from 'aws-cdk-lib/aws-ec2';
import { AccountRootPrincipal, PolicyDocument, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { CfnBatchScramSecret, CfnCluster } from 'aws-cdk-lib/aws-msk';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';

export interface SinkKafkaProps {
  vpc: IVpc;
  clusterName: string;
  kafkaVersion: string;
  instanceType: string;
  /** Brokers in total: a multiple of the private subnets the cluster spans. */
  brokerNodes: number;
  volumeSizeGiB: number;
}

export const MSK_DEFAULTS: Omit<SinkKafkaProps, 'vpc'> = { clusterName: 'city', kafkaVersion: '3.9.x', instanceType: 'kafka.m7g.large', brokerNodes: 2, volumeSizeGiB: 100 };

/** KMS key administration by name, for key policies that grant no `kms:*`. */
export const KEY_ADMIN_ACTIONS = [
  'DescribeKey',
  'GetKeyPolicy',
  'PutKeyPolicy',
  'GetKeyRotationStatus',
  'EnableKeyRotation',
  'DisableKeyRotation',
  'EnableKey',
  'DisableKey',
  'UpdateKeyDescription',
  'ListResourceTags',
  'TagResource',
  'UntagResource',
  'ListGrants',
  'RevokeGrant',
  'ScheduleKeyDeletion',
  'CancelKeyDeletion',
] as const;

/** The port MSK serves SASL/SCRAM over TLS on. */
export const MSK_SASL_SCRAM_PORT = 9096;

export class SinkKafka extends Construct {
  readonly cluster: CfnCluster;
  readonly securityGroup: SecurityGroup;
  /** The sink's SCRAM user: `{ "username": …, "password": … }`. */
  readonly sinkCredentials: Secret;
  /** host:port,… for SASL/SCRAM (a token, resolved at deploy time). */
  readonly bootstrapBrokers: string;

  constructor(scope: Construct, id: string, props: SinkKafkaProps) {
    super(scope, id);
    const subnets = props.vpc.privateSubnets;
    const key = new Key(this, 'CredentialsKey', {
      enableKeyRotation: true,
      description: 'Kafka SCRAM credentials of the city',
      removalPolicy: RemovalPolicy.DESTROY,
      // In place of the default "kms:*" for the account: key administration by name (PutKeyPolicy keeps it
      // repairable); the uses (Secrets Manager, the sink's execution role, MSK) are granted beside it.
      policy: new PolicyDocument({
        statements: [
          new PolicyStatement({
            sid: 'AccountAdministersTheKey',
            principals: [new AccountRootPrincipal()],
            actions: KEY_ADMIN_ACTIONS.map((a) => `kms:${a}`),
            resources: ['*'],
          }),
        ],
      }),
    });
    this.sinkCredentials = new Secret(this, 'SinkCredentials', {
      secretName: `AmazonMSK_${props.clusterName}-sink`,
      description: 'SASL/SCRAM user of the city sink',
      encryptionKey: key,
      generateSecretString: { secretStringTemplate: JSON.stringify({ username: 'city-sink' }), generateStringKey: 'password', excludePunctuation: true, passwordLength: 40 },
    });
    this.securityGroup = new SecurityGroup(this, 'Brokers', { vpc: props.vpc, description: 'MSK brokers of the city', allowAllOutbound: false });
    this.cluster = new CfnCluster(this, 'Cluster', {
      clusterName: props.clusterName,
      kafkaVersion: props.kafkaVersion,
      numberOfBrokerNodes: props.brokerNodes,
      brokerNodeGroupInfo: {
        instanceType: props.instanceType,
        clientSubnets: subnets.map((s) => s.subnetId),
        securityGroups: [this.securityGroup.securityGroupId],
        storageInfo: { ebsStorageInfo: { volumeSize: props.volumeSizeGiB } },
      },
      clientAuthentication: { sasl: { scram: { enabled: true } }, unauthenticated: { enabled: false } },
      encryptionInfo: { encryptionInTransit: { clientBroker: 'TLS', inCluster: true } },
      enhancedMonitoring: 'DEFAULT',
    });
    new CfnBatchScramSecret(this, 'Scram', { clusterArn: this.cluster.attrArn, secretArnList: [this.sinkCredentials.secretArn] });
    const brokers = new AwsCustomResource(this, 'BootstrapBrokers', {
      onUpdate: {
        service: 'Kafka',
        action: 'getBootstrapBrokers',
        parameters: { ClusterArn: this.cluster.attrArn },
        physicalResourceId: PhysicalResourceId.of(`${props.clusterName}-bootstrap`),
      },
      policy: AwsCustomResourcePolicy.fromSdkCalls({ resources: [this.cluster.attrArn] }),
      installLatestAwsSdk: false,
    });
    this.bootstrapBrokers = brokers.getResponseField('BootstrapBrokerStringSaslScram');
  }
}
