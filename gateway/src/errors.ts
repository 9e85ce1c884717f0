// Error catalog of the gateway: every error it raises carries one of these codes (README: "Error codes").
import { defineErrors } from '@city/protocol';

export const gatewayErrors = defineErrors('GW', {
  GW_USAGE: { message: 'invalid command line', canRetry: false, usage: true, action: 'see the command\'s --help' },
  GW_OPTIONS_INVALID: {
    message: 'invalid gateway options',
    canRetry: false,
    usage: true,
    action: 'fix the option the message names (field path and rule); nothing was started',
  },
  GW_CONFIG_FILE: {
    message: 'invalid gateway config file',
    canRetry: false,
    usage: true,
    action: 'fix the file and field the message names; unknown keys are errors',
  },
  GW_ALREADY_STARTED: { message: 'gateway is already started', canRetry: false, action: 'call start() once per gateway' },
  GW_NOT_STARTED: { message: 'gateway is not started', canRetry: false, action: 'start() the gateway first' },
  GW_CLOSED: { message: 'gateway is closed', canRetry: false, action: 'create a new gateway; a closed one does not start again' },
  GW_SHUTDOWN_TIMEOUT: {
    message: 'shutdown did not finish in time',
    canRetry: false,
    action: 'nothing is lost: what was not forwarded stays in the buffer for the next start; raise shutdownTimeoutMs to wait longer',
  },
  GW_BUFFER_OPEN: {
    message: 'cannot open the buffer',
    canRetry: false,
    action: 'check that buffer.path is on a writable disk with free space and not opened by another gateway',
  },
  GW_BUFFER_WRITE: {
    message: 'cannot write to the buffer',
    canRetry: true,
    action: 'devices were not acknowledged and resend; check the disk (space, errors in the kernel log)',
  },
  GW_BUFFER_FULL: {
    message: 'the buffer is full and nothing can be evicted',
    canRetry: true,
    action: 'devices keep their messages and resend; restore the Kafka uplink or raise buffer.maxBytes',
  },
  GW_BUFFER_CORRUPT: {
    message: 'the buffer file failed its integrity check and was moved aside',
    canRetry: false,
    action: 'the gateway runs on a fresh buffer; keep the moved file (<file>.corrupt-<time>) for recovery',
  },
  GW_REGISTRY_OPEN: { message: 'cannot open the device registry', canRetry: false, action: 'check auth.registryPath and its permissions' },
  GW_DEVICE_INVALID: { message: 'invalid device', canRetry: false, action: 'use an id matching the protocol\'s id rule and a secret of 16 or more characters' },
  GW_TLS_FILES: { message: 'cannot read the TLS certificate or key', canRetry: false, action: 'check tls.certFile and tls.keyFile' },
  GW_RATE_LIMITED: { message: 'over the rate limit', canRetry: true, action: 'the device backs off and resends; raise limits.* if the rate is legitimate' },
  GW_NOT_AUTHORIZED: { message: 'not authorized', canRetry: false, action: 'a device publishes and subscribes only under its own topic prefix' },
  GW_KAFKA_SEND: {
    message: 'Kafka did not acknowledge a batch',
    canRetry: true,
    action: 'nothing is lost: the batch stays buffered and is resent with backoff; check the brokers and the uplink',
  },
  GW_KAFKA_TOPIC_MISSING: {
    message: 'a Kafka topic the gateway sends to does not exist',
    canRetry: true,
    action: 'create the topics (npm run kafka -- topics --brokers HOST:PORT); the gateway buffers meanwhile',
  },
  GW_KAFKA_TLS: {
    message: 'the TLS handshake with Kafka failed',
    canRetry: true,
    action: 'nothing is lost: the gateway buffers and retries; the message names the cause (an untrusted certificate: check kafka.security.tls.caFile; a plaintext port, or a TLS listener without kafka.security.tls)',
  },
  GW_KAFKA_AUTH: {
    message: 'Kafka refused the SASL authentication',
    canRetry: true,
    action: 'nothing is lost: the gateway buffers and retries; fix the user, the password (or token) file or variable, or the mechanism — a new password file is read at the next attempt',
  },
  GW_KAFKA_SECRET: {
    message: 'cannot read a Kafka secret',
    canRetry: true,
    action: 'nothing is lost: the gateway buffers and retries; create the file or set the variable the message names (kafka.security.sasl.passwordFile, tls.caFile, …)',
  },
  GW_HTTP_LISTEN: { message: 'cannot start the status and metrics listener', canRetry: true, action: 'free the port or change http.port (--http HOST:PORT)' },
  GW_HEALTH_SAMPLE: { message: 'cannot sample system health', canRetry: true, action: 'the previous sample is served; see the warning for the part that failed' },
  GW_STATUS_UNREACHABLE: { message: 'cannot reach the gateway status endpoint', canRetry: true, action: 'check that the gateway runs and that --url or the config\'s http matches it' },
});

export type GatewayErrorCode = (typeof gatewayErrors.codes)[number];
