// Error catalog of the one-command city (npm run city).
import { defineErrors } from '@city/protocol';

export const cityErrors = defineErrors('CITY', {
  CITY_USAGE: { message: 'invalid command line', canRetry: false, usage: true, action: 'see npm run city -- --help' },
  CITY_INVALID_OPTIONS: { message: 'invalid city options', canRetry: false, usage: true, action: 'fix the option the message names' },
  CITY_ALREADY_STARTED: { message: 'the city is already started', canRetry: false, action: 'call start() once per city' },
  CITY_CLOSED: { message: 'the city is stopping or stopped', canRetry: false, action: 'create a new city; a stopped one does not start again' },
  CITY_CLOSE_TIMEOUT: {
    message: 'the city did not stop in time',
    canRetry: false,
    action: 'the parts still running were forced; nothing acknowledged is lost (the gateway buffer and Kafka keep it for the next run in the same --dir)',
  },
  CITY_PART_FAILED: { message: 'a part of the city running as a process of its own (the sink, the warehouse loader) failed', canRetry: false, action: 'read the log the message names (in <dir>/logs)' },
  CITY_GATEWAY_FAILED: { message: 'a gateway process of the city, or its devices, failed', canRetry: false, action: 'read the log the message names (in <dir>/logs)' },
});
