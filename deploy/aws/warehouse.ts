// The optional Redshift Serverless warehouse: a namespace encrypted under its own KMS key with the admin
// password kept by Secrets Manager, a small workgroup in the VPC's private subnets (not public, enhanced
// VPC routing, so COPY reaches S3 from inside the VPC), the role Redshift assumes for COPY (the
// namespace's default IAM role, so the loader's `--iam-role default` works), and `LoaderPolicy`, what
// `npm run sink -- warehouse load --warehouse redshift --workgroup …` needs through the Data API.
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Peer, Port, SecurityGroup, type IVpc } from 'aws-cdk-lib/aws-ec2';
import { AccountRootPrincipal, CompositePrincipal, ManagedPolicy, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { CfnNamespace, CfnWorkgroup } from 'aws-cdk-lib/aws-redshiftserverless';
import { Construct } from 'constructs';
import { cdkErrors } from './errors.ts';
import { keyPrefix, type LakeBuckets } from './lake.ts';
import { KEY_ADMIN_ACTIONS } from './msk.ts';

export interface WarehouseProps {
  vpc: IVpc;
  buckets: LakeBuckets;
  namespaceName: string;
  workgroupName: string;
  /** The database the loader's --database names. */
  database: string;
  adminUsername: string;
  /** Redshift Processing Units the workgroup starts from: 8 to 512 in steps of 8. */
  baseCapacity: number;
  /** Where the loader writes its COPY manifests, below the lake prefix (the loader's manifestPrefix). */
  manifestPrefix: string;
}

export const WAREHOUSE_DEFAULTS: Omit<WarehouseProps, 'vpc' | 'buckets'> = {
  namespaceName: 'city',
  workgroupName: 'city',
  database: 'dev',
  adminUsername: 'cityadmin',
  baseCapacity: 8,
  manifestPrefix: '_warehouse/manifests/',
};

/** What cloud/src/warehouse/redshift.ts sends through the Data API. */
export const LOADER_DATA_API_ACTIONS = ['redshift-data:BatchExecuteStatement', 'redshift-data:ExecuteStatement'] as const;
/** The statement actions, which have no resource form: limited to the caller's own statements instead. */
export const LOADER_STATEMENT_ACTIONS = ['redshift-data:DescribeStatement', 'redshift-data:GetStatementResult', 'redshift-data:CancelStatement'] as const;

/** Key uses Redshift Serverless and Secrets Manager make of the namespace's key on the account's behalf. */
const KEY_USE_ACTIONS = ['Encrypt', 'Decrypt', 'ReEncryptFrom', 'ReEncryptTo', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'CreateGrant', 'DescribeKey'] as const;

/** Redshift's rules for names of namespaces and workgroups (3–64 of a-z, 0-9, '-'). */
const SERVERLESS_NAME = /^[a-z0-9-]{3,64}$/;

export class Warehouse extends Construct {
  readonly key: Key;
  readonly namespace: CfnNamespace;
  readonly workgroup: CfnWorkgroup;
  readonly securityGroup: SecurityGroup;
  /** The role Redshift assumes for COPY from the lake (the namespace's default IAM role). */
  readonly copyRole: Role;
  /** Running the loader against the workgroup: attach to the loader's role. */
  readonly loaderPolicy: ManagedPolicy;
  readonly props: Omit<WarehouseProps, 'vpc' | 'buckets'>;

  constructor(scope: Construct, id: string, props: WarehouseProps) {
    super(scope, id);
    for (const name of ['namespaceName', 'workgroupName'] as const) {
      if (!SERVERLESS_NAME.test(props[name])) throw cdkErrors.create('CDK_INVALID_PROPS', `warehouse ${name} must match ${SERVERLESS_NAME.source}, got "${props[name]}"`);
    }
    if (!Number.isInteger(props.baseCapacity) || props.baseCapacity < 8 || props.baseCapacity > 512 || props.baseCapacity % 8 !== 0) {
      throw cdkErrors.create('CDK_INVALID_PROPS', `warehouse baseCapacity must be 8 to 512 in steps of 8, got ${props.baseCapacity}`);
    }
    const { vpc, buckets, ...rest } = props;
    this.props = rest;
    const stack = Stack.of(this);
    const lakePrefix = keyPrefix(buckets.props.prefix);
    const manifests = buckets.lake.arnForObjects(`${lakePrefix}${props.manifestPrefix.replace(/\/?$/, '/')}*`);

    this.key = new Key(this, 'Key', {
      enableKeyRotation: true,
      description: 'Redshift Serverless namespace of the city and its admin password',
      removalPolicy: RemovalPolicy.RETAIN,
      // In place of the default "kms:*" for the account: administration by name, and uses only through
      // the two services that encrypt with it.
      policy: new PolicyDocument({
        statements: [
          new PolicyStatement({ sid: 'AccountAdministersTheKey', principals: [new AccountRootPrincipal()], actions: KEY_ADMIN_ACTIONS.map((a) => `kms:${a}`), resources: ['*'] }),
          new PolicyStatement({
            sid: 'UseThroughRedshiftAndSecretsManager',
            principals: [new AccountRootPrincipal()],
            actions: KEY_USE_ACTIONS.map((a) => `kms:${a}`),
            resources: ['*'],
            conditions: { StringEquals: { 'kms:ViaService': [`redshift-serverless.${stack.region}.amazonaws.com`, `secretsmanager.${stack.region}.amazonaws.com`] } },
          }),
        ],
      }),
    });

    this.copyRole = new Role(this, 'CopyRole', {
      description: 'City warehouse: Redshift reads the lake and the loader manifests for COPY',
      assumedBy: new CompositePrincipal(new ServicePrincipal('redshift.amazonaws.com'), new ServicePrincipal('redshift-serverless.amazonaws.com')),
    });
    this.copyRole.addToPolicy(new PolicyStatement({ sid: 'LakeAndManifestsRead', actions: ['s3:GetObject'], resources: [buckets.lakeObjects(), manifests] }));
    this.copyRole.addToPolicy(new PolicyStatement({ sid: 'LakeList', actions: ['s3:ListBucket'], resources: [buckets.lake.bucketArn] }));

    this.namespace = new CfnNamespace(this, 'Namespace', {
      namespaceName: props.namespaceName,
      dbName: props.database,
      adminUsername: props.adminUsername,
      manageAdminPassword: true,
      adminPasswordSecretKmsKeyId: this.key.keyArn,
      kmsKeyId: this.key.keyArn,
      iamRoles: [this.copyRole.roleArn],
      defaultIamRoleArn: this.copyRole.roleArn,
      logExports: ['userlog', 'connectionlog'],
    });

    // No ingress: the loader goes through the Data API. Egress to HTTPS only, for S3 under enhanced VPC routing.
    this.securityGroup = new SecurityGroup(this, 'WorkgroupSecurityGroup', { vpc, description: 'Redshift Serverless workgroup of the city', allowAllOutbound: false });
    this.securityGroup.addEgressRule(Peer.anyIpv4(), Port.tcp(443), 'S3 for COPY (enhanced VPC routing)');
    this.workgroup = new CfnWorkgroup(this, 'Workgroup', {
      workgroupName: props.workgroupName,
      namespaceName: props.namespaceName,
      baseCapacity: props.baseCapacity,
      publiclyAccessible: false,
      enhancedVpcRouting: true,
      subnetIds: vpc.privateSubnets.map((s) => s.subnetId),
      securityGroupIds: [this.securityGroup.securityGroupId],
    });
    this.workgroup.node.addDependency(this.namespace);

    const workgroupArn = this.workgroup.attrWorkgroupWorkgroupArn;
    this.loaderPolicy = new ManagedPolicy(this, 'LoaderPolicy', {
      description: 'Load the smart-city lake into the Redshift Serverless warehouse (npm run sink -- warehouse load --warehouse redshift)',
      statements: [
        new PolicyStatement({ sid: 'DataApiStatements', actions: [...LOADER_DATA_API_ACTIONS], resources: [workgroupArn] }),
        new PolicyStatement({
          sid: 'DataApiOwnStatements',
          actions: [...LOADER_STATEMENT_ACTIONS],
          resources: ['*'],
          conditions: { StringEquals: { 'redshift-data:statement-owner-iam-userid': '${aws:userid}' } },
        }),
        new PolicyStatement({ sid: 'WorkgroupCredentials', actions: ['redshift-serverless:GetCredentials'], resources: [workgroupArn] }),
        new PolicyStatement({
          sid: 'LakeList',
          actions: ['s3:ListBucket'],
          resources: [buckets.lake.bucketArn],
          ...(lakePrefix === '' ? {} : { conditions: { StringLike: { 's3:prefix': [`${lakePrefix}*`] } } }),
        }),
        new PolicyStatement({ sid: 'LakeRead', actions: ['s3:GetObject'], resources: [buckets.lakeObjects()] }),
        new PolicyStatement({ sid: 'ManifestsWrite', actions: ['s3:PutObject', 's3:DeleteObject'], resources: [manifests] }),
      ],
    });
  }
}
