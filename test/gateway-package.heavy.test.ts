// The gateway's Debian packages, installed and booted without hardware: both packages are built here;
// an amd64 bookworm root filesystem is booted with systemd-nspawn, the package installed with dpkg, a
// device on the host publishes QoS 1 and the event reaches the host's Kafka; kill -9 of the service is
// survived with nothing acknowledged lost; an upgrade with a backlog delivers the backlog; remove keeps
// the state, purge deletes it. An arm64 root filesystem under qemu-user installs, boots to active and
// accepts a publish. Figures (sizes, time to active, exposure, RSS) are printed, never asserted on.
// Needs root, mmdebstrap, systemd-nspawn, nsenter and (for arm64) qemu-user-static: .ci/run installs them.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exampleEvent, kafkaTopicSet, mqttTopic, topicSpecs, type KafkaTopicSet } from '@city/protocol';
import { PACKAGE_NAME, bootRootfs, buildPackage, ensureRootfs, extractRootfs, type BootedRootfs, type BuiltPackage, type RootfsArch } from '@city/deploy/gateway-package';
import { ensureTopics } from './support/kafka.ts';
import { freePortOutsideEphemeral } from './support/net.ts';
import { onTeardown } from './support/teardown.ts';

const brokers = inject('kafkaBrokers');

const TOOLS = ['mmdebstrap', 'systemd-nspawn', 'nsenter', 'dpkg-deb'];
const missing = TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const canBoot = process.getuid?.() === 0 && missing.length === 0;
if (!canBoot) process.stderr.write(`[gateway-package] skipped: needs root and ${TOOLS.join(', ')} (missing: ${missing.join(', ') || 'root'})\n`);

const SECRET = 'package-test-secret-0123456789';
const figures: Record<string, string> = {};
const figure = (name: string, value: string) => {
  figures[name] = value;
  process.stderr.write(`[gateway-package] ${name}: ${value}\n`);
};

let work: string;
let packages: { v1: BuiltPackage; v2: BuiltPackage; arm64: BuiltPackage };

interface Installed {
  rootfs: BootedRootfs;
  mqttPort: number;
  httpPort: number;
}

/** A fresh copy of the arch's cached rootfs with the packages and the gateway's config, booted. */
async function boot(arch: RootfsArch, config: (ports: { mqtt: number; http: number }) => Record<string, unknown>): Promise<Installed> {
  const dir = join(work, `rootfs-${arch}-${randomUUID().slice(0, 6)}`);
  await extractRootfs(await ensureRootfs(arch), dir);
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(work, 'debs'), join(dir, 'root', 'debs'), { recursive: true });
  const ports = { mqtt: await freePortOutsideEphemeral(), http: await freePortOutsideEphemeral() };
  // Written before the install, as first boot does (cloud-init's write_files, then dpkg --force-confold).
  mkdirSync(join(dir, 'etc', PACKAGE_NAME), { recursive: true });
  writeConfig(dir, config(ports));
  const rootfs = await bootRootfs(dir, { bootTimeoutMs: 300_000 });
  onTeardown(() => rootfs.close());
  figure(`${arch} boot to running`, `${(rootfs.bootMs / 1000).toFixed(1)} s`);
  return { rootfs, mqttPort: ports.mqtt, httpPort: ports.http };
}

function writeConfig(dir: string, config: Record<string, unknown>): void {
  writeFileSync(join(dir, 'etc', PACKAGE_NAME, 'gateway.json'), `${JSON.stringify(config, null, 2)}\n`);
}

function gatewayConfig(arch: string, ports: { mqtt: number; http: number }, topics: KafkaTopicSet): Record<string, unknown> {
  return {
    gatewayId: `gw-pkg-${arch}`,
    mqtt: { host: '127.0.0.1', port: ports.mqtt },
    buffer: { path: `/var/lib/${PACKAGE_NAME}/buffer.db`, durability: 'power-loss' },
    auth: { mode: 'registry', registryPath: `/var/lib/${PACKAGE_NAME}/devices.db` },
    kafka: { brokers },
    forward: { maxBackoffMs: 2000 },
    topics,
    http: { enabled: true, host: '127.0.0.1', port: ports.http },
    healthIntervalMs: 0,
  };
}

/** Installs a package and waits for the unit to be active; returns ms from dpkg's start to active. */
async function install(rootfs: BootedRootfs, deb: BuiltPackage, timeoutMs: number): Promise<number> {
  const started = Date.now();
  try {
    await rootfs.sh(`dpkg --force-confold -i /root/debs/${deb.path.split('/').pop()}`, { timeoutMs });
    await waitActive(rootfs, timeoutMs);
  } catch (err) {
    // The service's own words on why it did not start.
    const journal = await rootfs.sh(`journalctl -u ${PACKAGE_NAME} --no-pager -n 40 || true`).catch((e: unknown) => String(e));
    throw new Error(`${(err as Error).message}\n--- journal of ${PACKAGE_NAME} ---\n${journal}`, { cause: err });
  }
  expect((await rootfs.sh(`dpkg-query -W -f='\${Version}' ${PACKAGE_NAME}`)).trim()).toBe(deb.version);
  return Date.now() - started;
}

async function unit(rootfs: BootedRootfs, ...props: string[]): Promise<Record<string, string>> {
  const out = await rootfs.sh(`systemctl show ${PACKAGE_NAME}.service ${props.map((p) => `-p ${p}`).join(' ')}`);
  return Object.fromEntries(out.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

async function waitActive(rootfs: BootedRootfs, timeoutMs: number): Promise<void> {
  await expect
    .poll(async () => (await rootfs.exec(['systemctl', 'is-active', `${PACKAGE_NAME}.service`])).stdout.trim(), { timeout: timeoutMs, interval: 250 })
    .toBe('active');
}

function connectDevice(port: number, deviceId: string): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: deviceId, username: deviceId, password: SECRET, reconnectPeriod: 0, connectTimeout: 20_000 });
}

/** Publishes QoS 1 events and records the ids that got a PUBACK. */
async function publish(client: MqttClient, deviceId: string, count: number, prefix: string, acked: Set<string>): Promise<void> {
  for (let seq = 0; seq < count; seq++) {
    const eventId = `${prefix}-${seq}`;
    await client.publishAsync(mqttTopic(deviceId, 'vehicle'), JSON.stringify(exampleEvent('vehicle', { deviceId, eventId, seq })), { qos: 1 });
    acked.add(eventId);
  }
}

/** Every event id that arrives on the topics, from the beginning. */
async function watchKafka(topics: string[]): Promise<Set<string>> {
  const kafka = new Kafka({ clientId: 'gw-package-reader', brokers, logLevel: logLevel.NOTHING });
  const consumer: Consumer = kafka.consumer({ groupId: `gw-package-${randomUUID()}`, maxWaitTimeInMs: 100 });
  onTeardown(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  const seen = new Set<string>();
  await consumer.run({ eachMessage: async ({ message }) => void seen.add((JSON.parse(message.value!.toString()) as { eventId: string }).eventId) });
  return seen;
}

const missingFrom = (seen: Set<string>, acked: Set<string>) => [...acked].filter((id) => !seen.has(id));

describe.skipIf(!canBoot)('gateway package booted in Debian root filesystems', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'gw-package-'));
    const debs = join(work, 'debs');
    // zstd: seconds instead of minutes per build; the release default (xz) differs only in compression.
    const v1 = await buildPackage({ arch: 'amd64', outDir: debs, compression: 'zstd' });
    const v2 = await buildPackage({ arch: 'amd64', version: `${v1.version}+upgrade`, outDir: debs, compression: 'zstd' });
    const arm64 = await buildPackage({ arch: 'arm64', outDir: debs, compression: 'zstd' });
    packages = { v1, v2, arm64 };
    for (const p of [v1, arm64]) figure(`package ${p.arch} (zstd)`, `${(p.bytes / 1048576).toFixed(1)} MiB, installed ${(p.installedKiB / 1024).toFixed(0)} MiB`);
    // Both root filesystems before the first boot (cached: a no-op after the first run).
    await ensureRootfs('amd64');
    await ensureRootfs('arm64');
  }, 1_800_000);

  afterAll(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
    process.stderr.write(`[gateway-package] figures (under contention from other work on this machine): ${JSON.stringify(figures)}\n`);
  });

  it("each package holds its own arch's Node and addon, the bundle, a conffile and no sources", () => {
    const ELF_MACHINE = { amd64: 0x3e, arm64: 0xb7 } as const;
    for (const deb of [packages.v1, packages.arm64]) {
      const files = execFileSync('dpkg-deb', ['-c', deb.path], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map((line) => line.slice(line.indexOf('./') + 1));
      const opt = `/opt/${PACKAGE_NAME}`;
      for (const path of [`${opt}/bin/node`, `${opt}/lib/gateway.mjs`, `/etc/${PACKAGE_NAME}/gateway.json`, '/usr/bin/gateway']) {
        expect(files, path).toContain(path);
      }
      expect(files.filter((f) => f.endsWith('.node'))).toEqual([`${opt}/node_modules/better-sqlite3/prebuilds/linux-${deb.arch === 'amd64' ? 'x64' : 'arm64'}.node`]);
      expect(files.filter((f) => /\.(ts|c|cc|h|gyp)$/.test(f))).toEqual([]);
      expect(new Set(files.filter((f) => f.includes('/node_modules/')).map((f) => f.split('/node_modules/')[1]!.split('/')[0]).filter(Boolean))).toEqual(new Set(['better-sqlite3', '@platformatic']));
      expect(execFileSync('dpkg-deb', ['-f', deb.path, 'Package', 'Version', 'Architecture'], { encoding: 'utf8' })).toBe(
        `Package: ${PACKAGE_NAME}\nVersion: ${deb.version}\nArchitecture: ${deb.arch}\n`,
      );
      expect(execFileSync('dpkg-deb', ['-I', deb.path, 'conffiles'], { encoding: 'utf8' })).toBe(`/etc/${PACKAGE_NAME}/gateway.json\n`);
      // The binaries are the target's: ELF e_machine at offset 18.
      const unpacked = join(work, `unpacked-${deb.arch}`);
      execFileSync('dpkg-deb', ['-x', deb.path, unpacked]);
      for (const binary of [`${opt}/bin/node`, ...files.filter((f) => f.endsWith('.node'))]) {
        expect(readFileSync(join(unpacked, binary)).readUInt16LE(18), `${deb.arch} ${binary}`).toBe(ELF_MACHINE[deb.arch]);
      }
      rmSync(unpacked, { recursive: true, force: true });
    }
  });

  it('amd64: install → active → publish reaches Kafka; kill -9 loses nothing; upgrade delivers the backlog; remove keeps state, purge deletes it', { timeout: 1_200_000 }, async () => {
    const live = kafkaTopicSet(`pkg${randomUUID().slice(0, 8)}`);
    const later = kafkaTopicSet(`pkgup${randomUUID().slice(0, 8)}`);
    await ensureTopics(brokers, topicSpecs(live));
    const { rootfs, mqttPort, httpPort } = await boot('amd64', (ports) => gatewayConfig('amd64', ports, live));

    const toActive = await install(rootfs, packages.v1, 180_000);
    const times = await unit(rootfs, 'ExecMainStartTimestampMonotonic', 'ActiveEnterTimestampMonotonic');
    figure('amd64 dpkg -i to active', `${(toActive / 1000).toFixed(1)} s (unit start to READY=1 ${((Number(times.ActiveEnterTimestampMonotonic) - Number(times.ExecMainStartTimestampMonotonic)) / 1e6).toFixed(1)} s)`);

    // The unit as shipped: verify is clean; the exposure score is reported.
    const verify = await rootfs.exec(['systemd-analyze', 'verify', `/usr/lib/systemd/system/${PACKAGE_NAME}.service`]);
    expect({ code: verify.code, output: (verify.stdout + verify.stderr).trim() }).toEqual({ code: 0, output: '' });
    const security = await rootfs.sh(`systemd-analyze security ${PACKAGE_NAME}.service --no-pager || true`);
    const exposure = /Overall exposure level for \S+: ([\d.]+) (\S+)/.exec(security);
    expect(exposure, security).not.toBeNull();
    figure('systemd-analyze security', `${exposure![1]} ${exposure![2]}`);

    // The journald limits are in force.
    expect(await rootfs.sh('systemd-analyze cat-config systemd/journald.conf')).toMatch(/SystemMaxUse=48M/);

    // State and the service user, as the package promises.
    expect(await rootfs.sh(`stat -c '%U %a' /var/lib/${PACKAGE_NAME}; stat -c %U /proc/$(systemctl show -p MainPID --value ${PACKAGE_NAME})`)).toBe(`${PACKAGE_NAME} 750\n${PACKAGE_NAME}\n`);
    expect(await rootfs.sh(`gateway devices add bus-pkg-1 --secret ${SECRET}`)).toContain('added bus-pkg-1');
    expect(await rootfs.sh('gateway status')).toMatch(/HEALTHY/);
    // The sandboxed service sees timesyncd's flag (no time service syncs inside the container: made here).
    await rootfs.sh('mkdir -p /run/systemd/timesync && touch /run/systemd/timesync/synchronized');
    const clock = async () => (JSON.parse(await rootfs.sh('gateway status --json || true')) as { clock?: { state: string } }).clock?.state;
    await expect.poll(clock, { timeout: 60_000, interval: 1000 }).toBe('synchronized');
    expect(await rootfs.sh('gateway status')).toMatch(/clock {7}synchronized/);

    // A device on the host publishes QoS 1; the event reaches the host's Kafka.
    const seen = await watchKafka(Object.values(live.events));
    const acked = new Set<string>();
    const device = await connectDevice(mqttPort, 'bus-pkg-1');
    await publish(device, 'bus-pkg-1', 1, 'first', acked);
    await expect.poll(() => missingFrom(seen, acked), { timeout: 60_000 }).toEqual([]);
    const rss = /VmRSS:\s+(\d+) kB/.exec(await rootfs.sh(`cat /proc/$(systemctl show -p MainPID --value ${PACKAGE_NAME})/status`));
    figure('amd64 RSS at idle', `${(Number(rss![1]) / 1024).toFixed(0)} MiB`);

    // kill -9 mid-stream: systemd restarts the gateway, and every acknowledged event reaches Kafka.
    const before = Number((await unit(rootfs, 'NRestarts')).NRestarts);
    let streamed = 0;
    const stream = (async () => {
      for (;;) {
        const eventId = `stream-${streamed}`;
        try {
          await device.publishAsync(mqttTopic('bus-pkg-1', 'vehicle'), JSON.stringify(exampleEvent('vehicle', { deviceId: 'bus-pkg-1', eventId, seq: streamed })), { qos: 1 });
        } catch {
          return; // not acknowledged: a real device resends it, the ledger does not count it
        }
        acked.add(eventId);
        streamed++;
      }
    })();
    await expect.poll(() => streamed, { timeout: 60_000, interval: 5 }).toBeGreaterThanOrEqual(100);
    await rootfs.sh(`kill -9 $(systemctl show -p MainPID --value ${PACKAGE_NAME})`);
    // Ending the dead connection fails the publishes still waiting for a PUBACK.
    await device.endAsync(true);
    await stream;
    await expect.poll(async () => Number((await unit(rootfs, 'NRestarts')).NRestarts), { timeout: 60_000, interval: 250 }).toBe(before + 1);
    await waitActive(rootfs, 120_000);
    const again = await connectDevice(mqttPort, 'bus-pkg-1');
    await publish(again, 'bus-pkg-1', 20, 'after-kill', acked);
    await again.endAsync();
    await expect.poll(() => missingFrom(seen, acked), { timeout: 120_000 }).toEqual([]);

    // Upgrade with a backlog: the topics the gateway now writes to do not exist yet, so it buffers.
    writeConfig(rootfs.dir, gatewayConfig('amd64', { mqtt: mqttPort, http: httpPort }, later));
    await rootfs.sh(`systemctl restart ${PACKAGE_NAME}`);
    await waitActive(rootfs, 120_000);
    const backlog = new Set<string>();
    const buffered = await connectDevice(mqttPort, 'bus-pkg-1');
    await publish(buffered, 'bus-pkg-1', 200, 'backlog', backlog);
    await buffered.endAsync();
    const held = async () => JSON.parse(await rootfs.sh('gateway status --json || true')) as { kafka: string; stats: { bufferDepth: number } };
    await expect.poll(async () => (await held()).kafka, { timeout: 60_000, interval: 500 }).toBe('topic-missing');
    expect((await held()).stats.bufferDepth).toBeGreaterThanOrEqual(200);
    const upgradeMs = await install(rootfs, packages.v2, 180_000);
    // A restart asked for (the upgrade's) resets systemd's count of automatic ones.
    const afterUpgradeRestarts = Number((await unit(rootfs, 'NRestarts')).NRestarts);
    figure('amd64 upgrade (dpkg -i to active)', `${(upgradeMs / 1000).toFixed(1)} s`);
    expect(await rootfs.sh('gateway devices list')).toMatch(/bus-pkg-1\tactive/);
    await ensureTopics(brokers, topicSpecs(later));
    const seenLater = await watchKafka(Object.values(later.events));
    await expect.poll(() => missingFrom(seenLater, backlog), { timeout: 120_000 }).toEqual([]);
    // The registry survived: the device still gets in after the upgrade.
    const afterUpgrade = await connectDevice(mqttPort, 'bus-pkg-1');
    await publish(afterUpgrade, 'bus-pkg-1', 1, 'after-upgrade', backlog);
    await afterUpgrade.endAsync();
    await expect.poll(() => missingFrom(seenLater, backlog), { timeout: 60_000 }).toEqual([]);
    // The watchdog is fed (every WatchdogSec/4 = 7.5 s) and nothing restarted the gateway on its own.
    const fed = Number((await unit(rootfs, 'WatchdogTimestampMonotonic')).WatchdogTimestampMonotonic);
    await expect
      .poll(async () => Number((await unit(rootfs, 'WatchdogTimestampMonotonic')).WatchdogTimestampMonotonic), { timeout: 30_000, interval: 1000 })
      .toBeGreaterThan(fed);
    expect(Number((await unit(rootfs, 'NRestarts')).NRestarts)).toBe(afterUpgradeRestarts);

    // A hung gateway (stopped, so it feeds nothing) is aborted by the watchdog and restarted.
    await rootfs.sh(`kill -STOP $(systemctl show -p MainPID --value ${PACKAGE_NAME})`);
    await expect.poll(async () => Number((await unit(rootfs, 'NRestarts')).NRestarts), { timeout: 180_000, interval: 1000 }).toBe(afterUpgradeRestarts + 1);
    expect(await rootfs.sh(`journalctl -u ${PACKAGE_NAME} --no-pager`)).toMatch(/[Ww]atchdog timeout/);
    await waitActive(rootfs, 120_000);

    // Remove keeps the buffer, the registry and the config; purge deletes them.
    await rootfs.sh(`dpkg -r ${PACKAGE_NAME}`);
    expect((await rootfs.exec(['systemctl', 'is-active', `${PACKAGE_NAME}.service`])).stdout.trim()).not.toBe('active');
    expect(await rootfs.sh(`ls /var/lib/${PACKAGE_NAME}/buffer.db /var/lib/${PACKAGE_NAME}/devices.db /etc/${PACKAGE_NAME}/gateway.json`)).toMatch(/devices\.db/);
    await rootfs.sh(`dpkg -P ${PACKAGE_NAME}`);
    expect(await rootfs.sh(`test ! -e /var/lib/${PACKAGE_NAME} && test ! -e /etc/${PACKAGE_NAME} && echo gone`)).toBe('gone\n');
  });

  it('arm64 under qemu-user: install → active → a QoS 1 publish is accepted and reaches Kafka', { timeout: 1_200_000 }, async () => {
    const topics = kafkaTopicSet(`pkgarm${randomUUID().slice(0, 8)}`);
    await ensureTopics(brokers, topicSpecs(topics));
    const { rootfs, mqttPort } = await boot('arm64', (ports) => gatewayConfig('arm64', ports, topics));
    expect((await rootfs.sh('uname -m')).trim()).toBe('aarch64');
    const toActive = await install(rootfs, packages.arm64, 600_000);
    figure('arm64 (qemu-user) dpkg -i to active', `${(toActive / 1000).toFixed(1)} s`);
    expect(await rootfs.sh(`gateway devices add bus-pkg-arm --secret ${SECRET}`, { timeoutMs: 300_000 })).toContain('added bus-pkg-arm');
    const seen = await watchKafka(Object.values(topics.events));
    const acked = new Set<string>();
    const device = await connectDevice(mqttPort, 'bus-pkg-arm');
    await publish(device, 'bus-pkg-arm', 1, 'arm', acked);
    await device.endAsync();
    expect(acked.size).toBe(1);
    await expect.poll(() => missingFrom(seen, acked), { timeout: 120_000 }).toEqual([]);
  });
});
