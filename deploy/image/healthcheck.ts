// The image's HEALTHCHECK command (bundled to /opt/city-sink/app/healthcheck.mjs): asks the sink's
// /healthz on the address SINK_HTTP names and exits 0 only on 200. No curl in the image: Node asks.
const address = process.env['SINK_HTTP'] ?? '';
const m = /^(?:(.+):)?(\d{1,5})$/.exec(address);
if (!m) {
  process.stderr.write(`healthcheck: SINK_HTTP must be [HOST:]PORT, got "${address}"\n`);
  process.exit(2);
}
const host = m[1] === undefined || m[1] === '0.0.0.0' || m[1] === '::' || m[1] === '[::]' ? '127.0.0.1' : m[1];
try {
  const res = await fetch(`http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${m[2]}/healthz`, { signal: AbortSignal.timeout(4_000) });
  const body = await res.text();
  process.stdout.write(body);
  process.exitCode = res.status === 200 ? 0 : 1;
} catch (err) {
  process.stderr.write(`healthcheck: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
