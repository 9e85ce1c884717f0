// The object store port on S3 or any S3-compatible endpoint. A PutObject is atomic (readers see the old
// object or the new one) and durable once S3 answers 200, which is what ObjectStore.put promises.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Type, type Static } from '@sinclair/typebox';
import { defineOptions } from '@city/protocol';
import { cloudErrors, errorMessage } from '../../errors.ts';
import type { ObjectStore } from './port.ts';

/** Options of the S3 store (data only; `client` is passed beside them). */
export const S3StoreSchema = Type.Object(
  {
    // S3 bucket naming rules: 3–63 of lowercase letters, digits, dots and hyphens.
    bucket: Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' }),
    /** Key prefix inside the bucket (no leading or trailing '/'), e.g. `lake`; empty for the bucket root. */
    prefix: Type.String({ pattern: '^$|^[^/](.*[^/])?$' }),
    region: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * Endpoint of an S3-compatible store (MinIO, s3rver, …). Set, it turns on path-style addressing and
     * checksums only when required, which such stores need with recent SDK versions.
     */
    endpoint: Type.Optional(Type.String({ pattern: '^https?://' })),
    /** Static credentials; without them the SDK's default chain (env, profile, instance role) is used. */
    credentials: Type.Optional(
      Type.Object(
        { accessKeyId: Type.String({ minLength: 1 }), secretAccessKey: Type.String({ minLength: 1 }), sessionToken: Type.Optional(Type.String()) },
        { additionalProperties: false },
      ),
    ),
    /** SDK attempts per request (it backs off between them); the sink retries beyond that. */
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
    /** Local folder for scratch files; defaults to the OS temp folder. */
    scratchDir: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

export type S3StoreConfig = Static<typeof S3StoreSchema>;

export type S3StoreOptions = Partial<S3StoreConfig> & {
  bucket: string;
  /** A ready client (tests, custom middleware); the options above that configure a client are then ignored. */
  client?: S3Client;
};

const s3StoreOptions = defineOptions({
  schema: S3StoreSchema,
  defaults: { prefix: '' },
  error: (detail) => cloudErrors.create('CLD_INVALID_OPTIONS', `S3 store: ${detail}`),
});

export function createS3Store(options: S3StoreOptions): ObjectStore {
  const { client: givenClient, credentials: given, ...rest } = options;
  // Only the fields we know: the SDK marks credential objects it has used with extra ones.
  const resolved = s3StoreOptions.resolve(given === undefined ? rest : { ...rest, credentials: pickCredentials(given) });
  const { bucket, prefix, region, endpoint, credentials, maxAttempts } = resolved;
  const client = givenClient ?? new S3Client(clientConfig({ region, endpoint, credentials, maxAttempts }));
  const keyPrefix = prefix === '' ? '' : `${prefix}/`;
  const scratchDir = join(resolved.scratchDir ?? tmpdir(), `city-s3-scratch-${randomUUID()}`);
  let scratchSeq = 0;
  let closed = false;

  const objectKey = (key: string): string => {
    if (key === '' || key.startsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      throw new RangeError(`bad object key ${key}`);
    }
    return keyPrefix + key;
  };

  return {
    root: `s3://${bucket}/${keyPrefix}`,
    async scratchPath(key) {
      if (closed) throw cloudErrors.create('CLD_CLOSED', 'object store');
      await mkdir(scratchDir, { recursive: true });
      return join(scratchDir, `${++scratchSeq}-${key.slice(key.lastIndexOf('/') + 1)}`);
    },
    async put(key, scratchPath) {
      const target = objectKey(key);
      try {
        // Lake files are bounded by the sink's roll size: one PutObject (atomic) rather than a multipart upload.
        const body = await readFile(scratchPath);
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: target, Body: body, ContentLength: body.length }));
      } catch (err) {
        throw cloudErrors.create('CLD_STORE_PUT', `s3://${bucket}/${target}: ${errorMessage(err)}`, err);
      }
      await rm(scratchPath, { force: true });
    },
    async discard(scratchPath) {
      await rm(scratchPath, { force: true });
    },
    async list(listPrefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: keyPrefix + listPrefix, ContinuationToken: token }),
        );
        for (const object of page.Contents ?? []) {
          if (object.Key !== undefined && object.Key.startsWith(keyPrefix)) keys.push(object.Key.slice(keyPrefix.length));
        }
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
      return keys.sort();
    },
    locate(keyOrPattern) {
      return `s3://${bucket}/${keyPrefix}${keyOrPattern}`;
    },
    async download(key, toPath) {
      const reply = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
      if (reply.Body === undefined) throw new Error(`s3://${bucket}/${objectKey(key)} has no body`);
      await writeFile(toPath, await reply.Body.transformToByteArray());
    },
    async delete(key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
    },
    async close() {
      if (closed) return;
      closed = true;
      if (givenClient === undefined) client.destroy();
      await rm(scratchDir, { recursive: true, force: true });
    },
  };
}

type Credentials = NonNullable<S3StoreConfig['credentials']>;

function pickCredentials(c: Credentials): Credentials {
  const picked: Credentials = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey };
  if (c.sessionToken !== undefined) picked.sessionToken = c.sessionToken;
  return picked;
}

function clientConfig(o: Pick<S3StoreConfig, 'region' | 'endpoint' | 'credentials' | 'maxAttempts'>): S3ClientConfig {
  const config: S3ClientConfig = { region: o.region ?? process.env['AWS_REGION'] ?? 'us-east-1' };
  if (o.credentials !== undefined) config.credentials = o.credentials;
  if (o.maxAttempts !== undefined) config.maxAttempts = o.maxAttempts;
  if (o.endpoint !== undefined) {
    config.endpoint = o.endpoint;
    config.forcePathStyle = true;
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  return config;
}
