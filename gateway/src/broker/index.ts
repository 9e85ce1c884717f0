// The MQTT side of the gateway: the aedes broker and its listeners, device security (registry, ACL,
// limits, frame guard) and the intake that turns a publish into a buffered record.
export { openBroker, type Broker, type BrokerOptions, type BrokerPorts } from './listeners.ts';
export { createIntake, type Intake, type IntakeCounters, type IntakeOptions } from './intake.ts';
export {
  AuthConfig,
  LimitsConfig,
  REFUSAL_REASONS,
  SECURE_AUTH,
  SECURITY_DEFAULTS,
  TlsConfig,
  WebSocketConfig,
  checkSecurityConfig,
  createSecurity,
  type PublishVerdict,
  type RefusalCounts,
  type RefusalReason,
  type Security,
} from './security.ts';
export { FrameScanner, guardFrames, type GuardedStream } from './frame-guard.ts';
export { DEVICE_ID_PATTERN, checkDeviceId, hashSecret, openRegistry, verifySecret, type DeviceEntry, type DeviceRegistry, type VerifyResult } from './registry.ts';
