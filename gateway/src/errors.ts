import { defineErrors } from '@city/protocol';

export const gatewayErrors = defineErrors({
  GW_OPTIONS_INVALID: { message: 'invalid gateway options', canRetry: false },
  GW_BUFFER_OPEN: { message: 'cannot open the buffer', canRetry: false },
  GW_BUFFER_WRITE: { message: 'cannot write to the buffer', canRetry: true },
  GW_NOT_STARTED: { message: 'gateway is not started', canRetry: false },
  GW_CLOSED: { message: 'gateway is closed', canRetry: false },
  GW_KAFKA_SEND: { message: 'Kafka did not acknowledge a batch', canRetry: true },
  GW_SHUTDOWN_TIMEOUT: { message: 'shutdown did not finish in time', canRetry: false },
  GW_BUFFER_FULL: { message: 'the buffer is full and nothing can be evicted', canRetry: true },
  GW_BUFFER_CORRUPT: { message: 'the buffer file failed its integrity check and was moved aside', canRetry: false },
  GW_REGISTRY_OPEN: { message: 'cannot open the device registry', canRetry: false },
  GW_DEVICE_INVALID: { message: 'invalid device', canRetry: false },
  GW_TLS_FILES: { message: 'cannot read the TLS certificate or key', canRetry: false },
  GW_RATE_LIMITED: { message: 'over the rate limit', canRetry: true },
  GW_NOT_AUTHORIZED: { message: 'not authorized', canRetry: false },
  GW_CONFIG_FILE: { message: 'invalid gateway config file', canRetry: false },
  GW_HTTP_LISTEN: { message: 'cannot start the status and metrics listener', canRetry: true },
  GW_HEALTH_SAMPLE: { message: 'cannot sample system health', canRetry: true },
  GW_STATUS_UNREACHABLE: { message: 'cannot reach the gateway status endpoint', canRetry: true },
});
