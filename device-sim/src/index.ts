// Public entry of @city/device-sim: pure event generators, invalid payloads, and the MQTT fleet.
export {
  SIM_KINDS,
  DEVICE_SLUGS,
  DEFAULT_DEVICE_ID_PREFIX,
  deviceIdOf,
  eventIdOf,
  isSimKind,
  type DeviceOptions,
  type EventBody,
  type SimDevice,
  type SimEvent,
  type SimKind,
} from './device.ts';
export { createDevice } from './devices.ts';
export { spreadDevices } from './cli-options.ts';
export {
  DEFAULT_DEFECTS,
  INVALID_DEFECTS,
  isInvalidDefect,
  makeInvalid,
  planInvalid,
  type InvalidDefect,
  type InvalidPayload,
} from './invalid.ts';
export {
  DEFAULT_FLEET,
  resolveFleetOptions,
  type DeviceCredentials,
  type FleetOptions,
  type InvalidOptions,
  type ResolvedFleetOptions,
} from './fleet-options.ts';
export {
  Fleet,
  createAckLedger,
  createFleet,
  type AckLedger,
  type AckRecord,
  type FleetEvents,
  type FleetStats,
  type KindStats,
} from './fleet.ts';
export { Rng, stableUuid } from './rng.ts';
export { CITY_CENTER, CITY_NAME, DISTRICTS, ROUTES } from './city.ts';
export { cityTimeToUtc, localTime, utcOffsetMinutes } from './clock.ts';
export { simErrors, type SimErrorCode } from './errors.ts';
export { cityGeoJson, cityGeoJsonText, type CityFeature, type CityGeoJson } from './geojson.ts';
