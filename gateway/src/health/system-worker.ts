// Runs systeminformation off the main thread: on Linux its CPU load and temperature readings use
// execSync, which would stall every connected device for tens of milliseconds per sample.
import { parentPort } from 'node:worker_threads';
import si from 'systeminformation';

export type Settled<T> = { ok: true; value: T } | { ok: false; error: string };
export interface SystemWorkerReply {
  id: number;
  load: Settled<{ currentLoad: number }>;
  mem: Settled<{ total: number; available: number; free: number }>;
  temp: Settled<{ main: number | null }>;
}

const settle = async <T>(read: () => Promise<T>): Promise<Settled<T>> => {
  try {
    return { ok: true, value: await read() };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
};

parentPort?.on('message', async ({ id }: { id: number }) => {
  const [load, mem, temp] = await Promise.all([
    settle(async () => ({ currentLoad: (await si.currentLoad()).currentLoad })),
    settle(async () => {
      const m = await si.mem();
      return { total: m.total, available: m.available, free: m.free };
    }),
    settle(async () => ({ main: (await si.cpuTemperature()).main })),
  ]);
  const reply: SystemWorkerReply = { id, load, mem, temp };
  parentPort?.postMessage(reply);
});
