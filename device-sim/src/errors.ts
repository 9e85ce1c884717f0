// Error catalog of the device simulator.
import { defineErrors } from '@city/protocol';

export const simErrors = defineErrors({
  SIM_INVALID_OPTIONS: { message: 'invalid simulator options', canRetry: false },
  SIM_BAD_FLAG: { message: 'bad command-line flag', canRetry: false },
  SIM_CONNECT_TIMEOUT: { message: 'devices did not connect in time', canRetry: true },
  SIM_CONNECT_REFUSED: { message: 'broker refused the device connection', canRetry: false },
  SIM_CLOSED: { message: 'fleet is stopped', canRetry: false },
  SIM_STOPPED_BEFORE_DONE: { message: 'fleet stopped before every device finished', canRetry: false },
  SIM_NO_EVENT_LIMIT: { message: 'fleet has no eventsPerDevice, so it is never done', canRetry: false },
  SIM_PUBLISH_FAILED: { message: 'publish failed', canRetry: true },
});

export type SimErrorCode = keyof typeof simErrors.catalog;
