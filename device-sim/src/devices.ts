// The registry of device kinds: which generator makes which kind's events.
import { createDeviceWith, isSimKind, type BodyFactory, type DeviceOptions, type SimDevice, type SimKind } from './device.ts';
import { simErrors } from './errors.ts';
import { airQualityFactory } from './kinds/air-quality.ts';
import { emergencyFactory } from './kinds/emergency.ts';
import { gpsFactory } from './kinds/gps.ts';
import { phoneFactory } from './kinds/phone.ts';
import { trafficCameraFactory } from './kinds/traffic-camera.ts';
import { vehicleFactory } from './kinds/vehicle.ts';
import { weatherFactory } from './kinds/weather.ts';

const FACTORIES: { readonly [K in SimKind]: BodyFactory<K> } = {
  vehicle: vehicleFactory,
  gps: gpsFactory,
  weather: weatherFactory,
  air_quality: airQualityFactory,
  traffic_camera: trafficCameraFactory,
  emergency: emergencyFactory,
  phone: phoneFactory,
};

/**
 * Device `index` of `kind` (ids like sim-vehicle-0003). The same kind, index and seed always give the
 * same event sequence; with `startTime` the event times are simulated too.
 */
export function createDevice<K extends SimKind>(kind: K, index: number, options: DeviceOptions = {}): SimDevice<K> {
  if (!isSimKind(kind)) throw simErrors.create('SIM_INVALID_OPTIONS', `unknown device kind ${String(kind)}`);
  return createDeviceWith(kind, index, FACTORIES[kind], options);
}
