// The gateway's health: system sampling, rates, health events, /healthz and /metrics, and the status
// client `gateway status` uses.
export { systemProbe, type SystemProbe, type SystemReading, type SystemSample } from './system.ts';
export { createHealthMonitor, type HealthMonitor, type HealthMonitorOptions } from './monitor.ts';
export { createRateMeter, type RateMeter } from './rates.ts';
export { buildHealthEvent, type HealthEventInput } from './event.ts';
export { createHealthReporter, type HealthFigures, type HealthReporter, type HealthReporterOptions, type HealthSink } from './reporter.ts';
export { healthzBody, judgeHealth, type HealthVerdict, type HealthzBody, type StatusSnapshot } from './status.ts';
export { METRICS_CONTENT_TYPE, parseMetrics, renderMetrics, type MetricSample } from './metrics.ts';
export { createStatusServer, type StatusServer, type StatusServerOptions } from './server.ts';
export { fetchGatewayStatus, formatStatus, type GatewayStatusReport } from './client.ts';
export { createWatchdog, intakeAccepts, systemdNotify, type Watchdog, type WatchdogOptions, type WatchdogProbe } from './watchdog.ts';
export { CLOCK_FLOOR_MS, CLOCK_STATES, TIMESYNCD_FLAG, createClockWatch, readClock, type ClockReading, type ClockState, type ClockWatch, type ClockWatchOptions } from './clock.ts';
