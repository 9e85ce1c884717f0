import { defineErrors } from '@city/protocol';

export const gatewayErrors = defineErrors({
  GW_OPTIONS_INVALID: { message: 'invalid gateway options', canRetry: false },
  GW_BUFFER_OPEN: { message: 'cannot open the buffer', canRetry: false },
  GW_BUFFER_WRITE: { message: 'cannot write to the buffer', canRetry: true },
  GW_NOT_STARTED: { message: 'gateway is not started', canRetry: false },
  GW_CLOSED: { message: 'gateway is closed', canRetry: false },
  GW_KAFKA_SEND: { message: 'Kafka did not acknowledge a batch', canRetry: true },
  GW_SHUTDOWN_TIMEOUT: { message: 'shutdown did not finish in time', canRetry: false },
});
