// Public entry of @city/gateway: create and run a gateway, its options and errors, what it reports
// (stats, /healthz, the status client), and the tools an operator needs (config files, the device
// registry, reading a buffer file). The parts it is built from stay inside.
export { createGateway, type Gateway, type GatewayEvents, type GatewayStats } from './gateway.ts';
export { GATEWAY_DEFAULTS, GATEWAY_NODE_FLAGS, gatewayOptions, resolveGatewayOptions, type GatewayConfig, type GatewayOptions } from './options.ts';
export { gatewayErrors, type GatewayErrorCode } from './errors.ts';
export { DURABILITY, LANES, readBufferFile, type Durability, type Lane, type LaneCounts, type StoredRecord } from './buffer/index.ts';
// The forwarder's record encoding, for the benchmark that feeds the producer as the forwarder does.
export { createMessageEncoder } from './forward/index.ts';
export { REPLAY_ORDERS, KAFKA_STATES, type KafkaState, type KafkaStateName, type ReplayOrder } from './forward/index.ts';
export {
  REFUSAL_REASONS,
  SECURE_AUTH,
  openRegistry,
  type AuthConfig,
  type DeviceEntry,
  type DeviceRegistry,
  type LimitsConfig,
  type RefusalCounts,
  type RefusalReason,
  type TlsConfig,
  type VerifyResult,
  type WebSocketConfig,
} from './broker/index.ts';
export {
  METRICS_CONTENT_TYPE,
  fetchGatewayStatus,
  formatStatus,
  judgeHealth,
  type GatewayStatusReport,
  type HealthVerdict,
  type HealthzBody,
  type StatusSnapshot,
  type SystemSample,
} from './health/index.ts';
export { CLI_DEFAULTS, loadGatewayConfig, readConfigFile, statusUrlFromConfig, type ConfigSources } from './cli/config.ts';
export { runDevicesCommand } from './cli/devices.ts';
export { loadUplinkSecurity } from './options.ts';
