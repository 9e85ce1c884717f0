// The sink image end to end, without a container runtime (podman cannot run containers here: crun's
// setrlimit is refused): build the image with podman, export its root filesystem, and run it the way
// a runtime would — the image's entry point, user, working directory and environment, the root
// read-only, a volume on /data and a tmpfs on /tmp — under systemd-nspawn against the run's Kafka.
// The sink must serve /healthz (the image's own HEALTHCHECK command says healthy), write the lake
// into the volume as the image's user, register it in the catalog, and stop cleanly on SIGTERM. And
// with the environment the AWS app gives its Fargate task, the same image writes the lake to S3.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { chown, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Template } from 'aws-cdk-lib/assertions';
import { createS3Store, objectSource, syncLakeCache } from '@city/cloud';
import { silentLog, waitFor, withTimeout } from '@city/protocol';
import { createApp } from '../aws/app.ts';
import { buildImage, exportImage, IMAGE, imageBaseCacheDir, inspectImage, type BuiltImage, type ImageConfig } from './index.ts';
import { expectedCounts, lakeCounts } from '../../test/support/lake.ts';
import { freePort } from '../../test/support/net.ts';
import { startS3 } from '../../test/support/s3.ts';
import { connectTestKafka, eventMessages, scenario, type TestKafka } from '../../test/support/sink.ts';
import { onTeardown, tempDir } from '../../test/support/teardown.ts';

const brokers = inject('kafkaBrokers');

const onPath = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
/** Why this machine cannot run the suite, or undefined when it can (CI can: it has podman, nspawn and root). */
function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (podman build with vfs storage, systemd-nspawn)';
  for (const tool of ['podman', 'systemd-nspawn', 'strip']) if (!onPath(tool)) return `needs ${tool} on PATH`;
  if (!existsSync(join(imageBaseCacheDir(), 'bookworm-minbase-amd64.tar')) && !onPath('mmdebstrap')) return 'needs mmdebstrap (no cached Debian base)';
  return undefined;
}
const skip = missing();

interface Running {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** Runs the image's entry point under systemd-nspawn as a runtime would start the container. */
function runContainer(rootfs: string, config: ImageConfig, volume: string, env: Record<string, string>, machine: string): Running {
  const user = config.User.split(':')[0]!;
  const passwd = spawnSync('awk', ['-F:', `$3 == ${user} { print $1 }`, join(rootfs, 'etc', 'passwd')], { encoding: 'utf8' }).stdout.trim();
  const environment = [...config.Env, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)];
  const args = [
    '--register=no',
    '--keep-unit',
    '--quiet',
    `--machine=${machine}`,
    `--directory=${rootfs}`,
    '--read-only',
    `--bind=${volume}:${IMAGE.dataDir}`,
    // What podman's and docker's --tmpfs give (nspawn's own default, 0755 root, would lock the user out).
    '--tmpfs=/tmp:mode=1777',
    `--user=${passwd || user}`,
    `--chdir=${config.WorkingDir}`,
    // A runtime stops a container with SIGTERM to its PID 1; nspawn's default without --boot is SIGKILL.
    '--kill-signal=SIGTERM',
    ...environment.map((e) => `--setenv=${e}`),
    '--',
    ...config.Entrypoint,
    ...(config.Cmd ?? []),
  ];
  const child = spawn('systemd-nspawn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = once(child, 'close').then(([code]) => code as number | null);
  onTeardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, output: () => out, exited };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).map((e) => join(e.parentPath, e.name));
}

describe.skipIf(skip !== undefined)(`sink image${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  let built: BuiltImage;
  let config: ImageConfig;
  let rootfs = '';
  let kafka: TestKafka;
  const tag = `localhost/city-sink:test-${process.pid}`;

  beforeAll(async () => {
    built = await buildImage({ tag, log: silentLog });
    config = (await inspectImage(tag)).config;
    // Made here and removed in afterAll: tempDir's teardown runs after each test.
    rootfs = join(mkdtempSync(join(tmpdir(), 'city-sink-rootfs-')), 'rootfs');
    await exportImage(tag, rootfs);
    kafka = await connectTestKafka(brokers, 'image-test');
    // Figures for the report (under contention from whatever else runs on the machine).
    process.stderr.write(`[image] ${tag}: ${(built.sizeBytes / 2 ** 20).toFixed(0)} MiB; seconds ${JSON.stringify(built.seconds)}\n`);
  }, 20 * 60_000);

  afterAll(async () => {
    await kafka?.close();
    spawnSync('podman', ['--storage-driver', 'vfs', 'rmi', '-f', tag]);
    if (rootfs !== '') rmSync(dirname(rootfs), { recursive: true, force: true });
  });

  it('is configured for a read-only, non-root run with a health check', () => {
    expect(config.User).toBe(`${IMAGE.uid}:${IMAGE.uid}`);
    expect(config.Entrypoint).toEqual([`${IMAGE.appDir}/bin/node`, `${IMAGE.appDir}/app/entry.mjs`]);
    expect(Object.keys(config.Volumes ?? {})).toEqual([IMAGE.dataDir]);
    expect(config.Healthcheck?.Test).toEqual(['CMD', `${IMAGE.appDir}/bin/node`, `${IMAGE.appDir}/app/healthcheck.mjs`]);
    expect(config.Env).toEqual(expect.arrayContaining([`SINK_LAKE=${IMAGE.dataDir}/lake`, `SINK_HTTP=0.0.0.0:${IMAGE.healthPort}`, 'TMPDIR=/tmp']));
    // Its own Node 24, and the sink as JavaScript (nothing is type-stripped at run time).
    const version = spawnSync('chroot', [rootfs, `${IMAGE.appDir}/bin/node`, '--version'], { encoding: 'utf8' });
    expect(version.stdout).toMatch(/^v24\./);
    expect(filesUnder(join(rootfs, IMAGE.appDir.slice(1))).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(statSync(join(rootfs, IMAGE.dataDir.slice(1))).uid).toBe(IMAGE.uid);
  });

  it('runs from its exported filesystem: consumes Kafka into the lake on the volume, healthy, and stops on SIGTERM', async () => {
    const s = await scenario(brokers, tempDir('city-sink-image-'), 'image');
    const volume = join(s.lakeDir, 'volume');
    await mkdir(volume, { recursive: true });
    await chown(volume, IMAGE.uid, IMAGE.uid);
    const port = await freePort();
    const sink = runContainer(
      rootfs,
      config,
      volume,
      {
        SINK_BROKERS: brokers.join(','),
        SINK_TOPIC_SUFFIX: s.id,
        SINK_GROUP: s.groupId,
        SINK_MAX_AGE_MS: '300',
        SINK_CATALOG: 'local',
        SINK_HTTP: `127.0.0.1:${port}`,
      },
      `city-sink-test-${process.pid}`,
    );
    const healthz = async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        return { status: res.status, body: (await res.json()) as { healthy: boolean; state: string } };
      } catch {
        return undefined;
      }
    };
    await waitFor(async () => sink.child.exitCode === null && (await healthz())?.status === 200, { timeoutMs: 60_000, intervalMs: 200, what: () => `the sink's /healthz\n${sink.output()}` });
    expect((await healthz())?.body).toMatchObject({ healthy: true, state: 'running' });

    // The image's own HEALTHCHECK command, as the image's user, inside its filesystem.
    const [, ...check] = config.Healthcheck!.Test;
    const probe = spawnSync('chroot', [`--userspec=${IMAGE.uid}:${IMAGE.uid}`, rootfs, ...check], { encoding: 'utf8', env: { PATH: process.env['PATH'], SINK_HTTP: `127.0.0.1:${port}` } });
    expect(probe.status, `${String(probe.error)} ${probe.stderr}`).toBe(0);
    expect(JSON.parse(probe.stdout)).toMatchObject({ healthy: true });

    await kafka.produce(s.topics.events.vehicle, eventMessages('img', 'vehicle', 0, 40));
    await kafka.produce(s.topics.events.weather, eventMessages('img', 'weather', 0, 25));
    const lake = join(volume, 'lake');
    const want = expectedCounts({ vehicle: 40, weather: 25 }, 0);
    const reached = async () => {
      if (!existsSync(lake)) return false;
      const got = await lakeCounts(lake).catch(() => ({}) as Record<string, number>);
      return Object.entries(want).every(([table, n]) => (got[table] ?? 0) === n);
    };
    await waitFor(reached, { timeoutMs: 60_000, intervalMs: 500, what: () => `the lake written by the containerised sink\n${sink.output()}` });
    expect(await lakeCounts(lake)).toMatchObject(want);
    expect(existsSync(join(lake, '_catalog', 'catalog.json'))).toBe(true);
    await waitFor(async () => (await kafka.lagging(s.groupId, s.topics)) === 0, { timeoutMs: 30_000, what: 'offsets committed' });

    // Everything the sink wrote belongs to the image's user, on the volume (the root is read-only).
    const written = filesUnder(lake);
    expect(written.some((f) => f.endsWith('.parquet'))).toBe(true);
    expect(written.filter((f) => statSync(f).uid !== IMAGE.uid)).toEqual([]);

    sink.child.kill('SIGTERM');
    const code = await withTimeout(sink.exited, 60_000, 'the containerised sink stopping on SIGTERM');
    expect(code, sink.output()).toBe(0);
    expect(sink.output()).toMatch(/sink closed/);
    // No Node warning on the way (a bundled kafkajs would slip past the dependency-warning filter).
    expect(sink.output()).not.toMatch(/\(node:\d+\) \w*Warning/);
  }, 180_000);

  it('runs with the environment the AWS app gives its task: the lake goes to S3 (an S3-protocol server here)', async () => {
    // The container's environment exactly as the synthesized task definition has it, with the values
    // CloudFormation would fill in (brokers, bucket, region) given by the test. Glue cannot run here:
    // the catalog is turned off, the rest is the task's configuration as deployed.
    const { stack } = createApp({ outdir: tempDir('city-cdk-image-') });
    const [task] = Object.values(Template.fromStack(stack).findResources('AWS::ECS::TaskDefinition'));
    const taskEnv = (task!['Properties'] as { ContainerDefinitions: { Environment: { Name: string; Value: unknown }[] }[] }).ContainerDefinitions[0]!.Environment;
    const s3 = await startS3();
    onTeardown(() => s3.stop());
    const s = await scenario(brokers, tempDir('city-sink-image-s3-'), 'images3');
    const port = await freePort();
    const filled: Record<string, string> = { SINK_BROKERS: brokers.join(','), SINK_S3_BUCKET: s3.bucket, SINK_S3_REGION: s3.region };
    const env: Record<string, string> = {};
    for (const { Name, Value } of taskEnv) {
      const value = typeof Value === 'string' ? Value : filled[Name];
      expect(value, `a value for ${Name}`).toBeDefined();
      env[Name] = value!;
    }
    expect(env).toMatchObject({ SINK_LAKE: '', SINK_S3_PREFIX: 'lake', SINK_CATALOG: 'glue' });
    Object.assign(env, {
      SINK_CATALOG: '',
      SINK_GLUE_DATABASE: '',
      SINK_S3_ENDPOINT: s3.endpoint,
      SINK_HTTP: `127.0.0.1:${port}`,
      SINK_TOPIC_SUFFIX: s.id,
      SINK_GROUP: s.groupId,
      SINK_MAX_AGE_MS: '300',
      AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    });
    const volume = join(s.lakeDir, 'volume');
    await mkdir(volume, { recursive: true });
    await chown(volume, IMAGE.uid, IMAGE.uid);
    const sink = runContainer(rootfs, config, volume, env, `city-sink-s3-${process.pid}`);
    await kafka.produce(s.topics.events.gps, eventMessages('imgs3', 'gps', 0, 30));
    const cache = join(s.lakeDir, 'cache');
    const store = createS3Store({ bucket: s3.bucket, prefix: 'lake', region: s3.region, endpoint: s3.endpoint, credentials: s3.credentials });
    onTeardown(() => store.close());
    const want = expectedCounts({ gps: 30 }, 0);
    await waitFor(
      async () => {
        if (sink.child.exitCode !== null) throw new Error(`the sink exited\n${sink.output()}`);
        await syncLakeCache(objectSource(store), cache);
        const got = existsSync(cache) ? await lakeCounts(cache).catch(() => ({}) as Record<string, number>) : {};
        return Object.entries(want).every(([table, n]) => (got[table] ?? 0) === n);
      },
      { timeoutMs: 60_000, intervalMs: 500, what: () => `the lake on S3\n${sink.output()}` },
    );
    // Nothing went to the volume's folder lake: the lake is the bucket.
    expect(existsSync(join(volume, 'lake'))).toBe(false);
    sink.child.kill('SIGTERM');
    expect(await withTimeout(sink.exited, 60_000, 'the containerised sink stopping on SIGTERM'), sink.output()).toBe(0);
  }, 180_000);
});
