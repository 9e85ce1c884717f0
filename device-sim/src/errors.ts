// Error catalog of the device simulator.
import { defineErrors } from '@city/protocol';

export const simErrors = defineErrors('SIM', {
  SIM_INVALID_OPTIONS: { message: 'invalid simulator options', canRetry: false, usage: true, action: 'fix the option the message names' },
  SIM_BAD_FLAG: { message: 'bad command-line flag', canRetry: false, usage: true, action: 'see npm run sim -- --help' },
  SIM_CONNECT_TIMEOUT: { message: 'devices did not connect in time', canRetry: true, action: 'check that the broker runs at --url and accepts the fleet\'s connections' },
  SIM_CONNECT_REFUSED: { message: 'broker refused the device connection', canRetry: false, action: 'register the devices (gateway devices add) or give their credentials' },
  SIM_CLOSED: { message: 'fleet is stopped', canRetry: false, action: 'create a new fleet' },
  SIM_STOPPED_BEFORE_DONE: { message: 'fleet stopped before every device finished', canRetry: false, action: 'wait for done() before stop(), or ignore it when stopping early on purpose' },
  SIM_NO_EVENT_LIMIT: { message: 'fleet has no eventsPerDevice, so it is never done', canRetry: false, action: 'set eventsPerDevice to wait for done()' },
  SIM_PUBLISH_FAILED: { message: 'publish failed', canRetry: true, action: 'the event was not acknowledged and the simulator does not resend it; see the publishError event (its cause) or the last error in the stats' },
});

export type SimErrorCode = (typeof simErrors.codes)[number];
