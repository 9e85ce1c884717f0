// Configuration by environment in the sink image: SINK_* variables become `sink run` flags.
import { describe, expect, it } from 'vitest';
import { flagsFromEnv, sinkArgs } from './env.ts';

describe('sink image environment', () => {
  it('maps SINK_<NAME> to --<name>, "true" to a bare flag, and leaves other and secret-looking variables alone', () => {
    const env = {
      SINK_S3_BUCKET: 'city-lake',
      SINK_BROKERS: 'b-1:9096,b-2:9096',
      SINK_NO_RAW: 'true',
      SINK_CATALOG: 'false',
      SINK_GROUP: '',
      SINK_SASL_PASSWORD: 'hunter2',
      SINK_OAUTH_TOKEN: 'x',
      SINK_TLS_KEY: 'pem',
      SINK_SASL_PASSWORD_ENV: 'KAFKA_SASL_PASSWORD',
      AWS_REGION: 'eu-west-1',
      PATH: '/usr/bin',
    };
    // Where a secret is may be a flag; the secret itself never is.
    expect(flagsFromEnv(env)).toEqual(['--brokers', 'b-1:9096,b-2:9096', '--no-raw', '--s3-bucket', 'city-lake', '--sasl-password-env', 'KAFKA_SASL_PASSWORD']);
  });

  it('runs `sink run` with the environment unless a command is given', () => {
    const env = { SINK_LAKE: '/data/lake', SINK_HTTP: '0.0.0.0:8080' };
    expect(sinkArgs([], env)).toEqual(['run', '--http', '0.0.0.0:8080', '--lake', '/data/lake']);
    expect(sinkArgs(['--max-rows', '10'], env)).toEqual(['run', '--http', '0.0.0.0:8080', '--lake', '/data/lake', '--max-rows', '10']);
    expect(sinkArgs(['query', '--lake', '/data/lake'], env)).toEqual(['query', '--lake', '/data/lake']);
    expect(sinkArgs(['--help'], env)).toEqual(['run', '--help']);
  });
});
