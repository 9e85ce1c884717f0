// The one place a dependency's warning is filtered, for every process that loads @city/protocol.
//
// kafkajs 2.2.4 (no release since 2023) schedules its request queue's check at `throttledUntil - now`
// with throttledUntil = -1 when nothing is throttled: a negative delay, which Node has always run as
// 1 ms and which Node 24 also reports as a TimeoutNegativeWarning on every client. The timing is what
// kafkajs means ("as soon as possible"), so only that warning, raised from inside kafkajs, is dropped;
// any other warning (ours included) still prints.
const KAFKAJS_FRAME = /[\\/]kafkajs[\\/]/;

let installed = false;

export function filterDependencyWarnings(): void {
  if (installed) return;
  installed = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = function emitWarning(this: NodeJS.Process, warning: string | Error, ...rest: unknown[]): void {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: unknown } | undefined)?.type;
    const name = warning instanceof Error ? warning.name : type;
    if (name === 'TimeoutNegativeWarning' && KAFKAJS_FRAME.test(new Error().stack ?? '')) return;
    emit(warning, ...rest);
  } as typeof process.emitWarning;
}
