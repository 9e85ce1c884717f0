export { createGateway, defaultLog, type Gateway, type GatewayEvents, type GatewayStats, type Log, type LogLevel } from './gateway.ts';
export { GATEWAY_DEFAULTS, resolveGatewayOptions, type GatewayConfig, type GatewayOptions } from './options.ts';
export {
  DURABILITY,
  LANES,
  openBuffer,
  readBufferFile,
  type BufferCounters,
  type BufferLimits,
  type Durability,
  type Lane,
  type LaneCounts,
  type OutboxBuffer,
  type OutboxRecord,
} from './buffer.ts';
export { REPLAYED_HEADER, REPLAY_ORDERS, createForwarder, jittered, type Forwarder, type ForwarderOptions, type ReplayOrder } from './forwarder.ts';
export { gatewayErrors } from './errors.ts';
export {
  buildHealthEvent,
  createHealthMonitor,
  createRateMeter,
  judgeHealth,
  systemProbe,
  type HealthMonitor,
  type HealthMonitorOptions,
  type StatusSnapshot,
  type SystemProbe,
  type SystemSample,
} from './health.ts';
export {
  METRICS_CONTENT_TYPE,
  createStatusServer,
  fetchGatewayStatus,
  formatStatus,
  healthzBody,
  parseMetrics,
  renderMetrics,
  type GatewayStatusReport,
  type HealthzBody,
  type StatusServer,
} from './http.ts';
export { CLI_DEFAULTS, loadGatewayConfig, readConfigFile, statusUrlFromConfig, type ConfigSources } from './config.ts';
export { openRegistry, hashSecret, verifySecret, type DeviceEntry, type DeviceRegistry, type VerifyResult } from './registry.ts';
export {
  REFUSAL_REASONS,
  SECURE_AUTH,
  SECURITY_DEFAULTS,
  TokenBucket,
  type AuthConfig,
  type LimitsConfig,
  type RefusalCounts,
  type RefusalReason,
  type TlsConfig,
  type WebSocketConfig,
} from './security.ts';
export { runDevicesCommand, DEVICES_USAGE } from './cli-devices.ts';
