// The lake bucket and the bucket Athena writes its results to: no public access, TLS only (a bucket
// policy denies plain HTTP), encrypted at rest with S3-managed keys (so the sink's role needs no KMS
// actions), owner-enforced objects, and lifecycle rules: the raw zone moves to cheaper storage and
// expires, query results expire, unfinished uploads are aborted.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, StorageClass, type IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { cdkErrors } from './errors.ts';

export interface LakeBucketProps {
  /** Key prefix of the lake in the bucket (the sink's --s3-prefix); '' for the bucket root. */
  prefix: string;
  /** Days after which raw-zone objects move to Infrequent Access, then Glacier Instant Retrieval. */
  rawInfrequentAfterDays: number;
  rawGlacierAfterDays: number;
  /** Days after which raw-zone objects are deleted (0: kept for ever). */
  rawExpireAfterDays: number;
  /** Days Athena query results are kept. */
  resultsExpireAfterDays: number;
}

export const LAKE_DEFAULTS: LakeBucketProps = { prefix: 'lake', rawInfrequentAfterDays: 30, rawGlacierAfterDays: 90, rawExpireAfterDays: 730, resultsExpireAfterDays: 7 };

/** `lake/` for prefix "lake", '' for the bucket root. */
export const keyPrefix = (prefix: string) => (prefix === '' ? '' : `${prefix}/`);

export class LakeBuckets extends Construct {
  readonly lake: IBucket;
  readonly results: IBucket;
  readonly props: LakeBucketProps;

  constructor(scope: Construct, id: string, props: Partial<LakeBucketProps> = {}) {
    super(scope, id);
    const p = { ...LAKE_DEFAULTS, ...props };
    this.props = p;
    if (p.rawGlacierAfterDays <= p.rawInfrequentAfterDays) throw cdkErrors.create('CDK_INVALID_PROPS', 'lake.rawGlacierAfterDays must be after lake.rawInfrequentAfterDays');
    if (p.rawExpireAfterDays !== 0 && p.rawExpireAfterDays <= p.rawGlacierAfterDays) {
      throw cdkErrors.create('CDK_INVALID_PROPS', 'lake.rawExpireAfterDays must be after lake.rawGlacierAfterDays (or 0: never)');
    }
    const secure = {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: BucketEncryption.S3_MANAGED,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
    } as const;
    this.lake = new Bucket(this, 'Lake', {
      ...secure,
      // The lake is the city's record: a stack deletion must not take it along.
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'raw-zone',
          prefix: `${keyPrefix(p.prefix)}raw/`,
          transitions: [
            { storageClass: StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(p.rawInfrequentAfterDays) },
            { storageClass: StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(p.rawGlacierAfterDays) },
          ],
          ...(p.rawExpireAfterDays === 0 ? {} : { expiration: Duration.days(p.rawExpireAfterDays) }),
        },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });
    this.results = new Bucket(this, 'QueryResults', {
      ...secure,
      removalPolicy: RemovalPolicy.DESTROY,
      lifecycleRules: [{ id: 'expire-results', expiration: Duration.days(p.resultsExpireAfterDays), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
    });
  }

  /** ARN of every object below the lake prefix. */
  lakeObjects(): string {
    return this.lake.arnForObjects(`${keyPrefix(this.props.prefix)}*`);
  }
}
