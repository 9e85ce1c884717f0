// Vehicles driving city routes: buses and trams keep a timetable day and stop at stops, cars and vans
// make trips and park, emergency vehicles wait at base and answer calls. Speed never exceeds the road's
// limit; the odometer integrates the distance actually driven.
import type { VEHICLE_TYPES } from '@city/protocol';
import { getRoute, projection, speedLimitAt, type Route, type RoutePoint } from '../city.ts';
import { localTime } from '../clock.ts';
import { trafficDemand } from '../environment.ts';
import type { BodyFactory, DeviceContext } from '../device.ts';
import { round } from '../geo.ts';
import type { Rng } from '../rng.ts';

export type VehicleType = (typeof VEHICLE_TYPES)[number];
type Schedule = 'transit' | 'trips' | 'work' | 'emergency' | 'patrol' | 'sweeper';

interface Profile {
  routes: readonly string[];
  /** Vehicle's own top speed, m/s (road limits usually bind first). */
  maxSpeed: number;
  accel: number;
  schedule: Schedule;
  /** Share of a full tank used per metre; undefined for vehicles without a fuel gauge (trams). */
  fuelPerMetre?: number;
  odometerKm: readonly [number, number];
  plate: boolean;
  /** Public transport and service vehicles report their route. */
  reportsRoute: boolean;
}

const PROFILES: { readonly [T in VehicleType]?: Profile } = {
  bus: { routes: ['bus-12', 'bus-27', 'bus-40'], maxSpeed: 22.2, accel: 1.0, schedule: 'transit', fuelPerMetre: 1.4e-6, odometerKm: [80_000, 900_000], plate: true, reportsRoute: true },
  minibus: { routes: ['bus-40', 'bus-12'], maxSpeed: 25, accel: 1.3, schedule: 'transit', fuelPerMetre: 1.6e-6, odometerKm: [40_000, 400_000], plate: true, reportsRoute: true },
  tram: { routes: ['tram-5'], maxSpeed: 19.4, accel: 1.1, schedule: 'transit', odometerKm: [200_000, 1_500_000], plate: false, reportsRoute: true },
  car: { routes: ['ring-a10', 'arterial-ns', 'arterial-ew', 'centrum-loop'], maxSpeed: 50, accel: 2.2, schedule: 'trips', fuelPerMetre: 1.3e-6, odometerKm: [5_000, 250_000], plate: true, reportsRoute: false },
  van: { routes: ['centrum-loop', 'harbour', 'arterial-ew'], maxSpeed: 40, accel: 1.6, schedule: 'work', fuelPerMetre: 1.5e-6, odometerKm: [10_000, 350_000], plate: true, reportsRoute: false },
  lorry: { routes: ['harbour', 'ring-a10'], maxSpeed: 22.2, accel: 0.7, schedule: 'work', fuelPerMetre: 0.9e-6, odometerKm: [50_000, 1_200_000], plate: true, reportsRoute: false },
  motorcycle: { routes: ['ring-a10', 'arterial-ns'], maxSpeed: 50, accel: 3.0, schedule: 'trips', fuelPerMetre: 3.0e-6, odometerKm: [2_000, 90_000], plate: true, reportsRoute: false },
  ambulance: { routes: ['arterial-ns', 'arterial-ew', 'ring-a10'], maxSpeed: 45, accel: 2.4, schedule: 'emergency', fuelPerMetre: 1.7e-6, odometerKm: [20_000, 400_000], plate: true, reportsRoute: false },
  fireTruck: { routes: ['arterial-ew', 'arterial-ns'], maxSpeed: 30, accel: 1.2, schedule: 'emergency', fuelPerMetre: 1.4e-6, odometerKm: [10_000, 150_000], plate: true, reportsRoute: false },
  police: { routes: ['centrum-loop', 'ring-a10', 'arterial-ns'], maxSpeed: 50, accel: 2.5, schedule: 'patrol', fuelPerMetre: 1.4e-6, odometerKm: [20_000, 300_000], plate: true, reportsRoute: false },
  sweepingMachine: { routes: ['centrum-loop'], maxSpeed: 3.3, accel: 0.5, schedule: 'sweeper', fuelPerMetre: 6e-6, odometerKm: [5_000, 60_000], plate: true, reportsRoute: true },
};

/** The fleet's mix, repeated every 20 vehicles: mostly buses and cars, a few service vehicles. */
export const VEHICLE_MIX: readonly VehicleType[] = [
  'bus', 'car', 'van', 'bus', 'car', 'tram', 'car', 'bus', 'lorry', 'car',
  'ambulance', 'bus', 'van', 'car', 'police', 'minibus', 'car', 'motorcycle', 'sweepingMachine', 'fireTruck',
];

export function vehicleTypeOf(index: number): VehicleType {
  return VEHICLE_MIX[index % VEHICLE_MIX.length] as VehicleType;
}

/** Which of its type's routes a vehicle drives: vehicles of one type spread over the routes. */
function routeOf(index: number, type: VehicleType, profile: Profile): Route {
  const cycle = Math.floor(index / VEHICLE_MIX.length);
  const perCycle = VEHICLE_MIX.filter((t) => t === type).length;
  const before = VEHICLE_MIX.slice(0, index % VEHICLE_MIX.length).filter((t) => t === type).length;
  const ordinal = cycle * perCycle + before;
  return getRoute(profile.routes[ordinal % profile.routes.length] as string);
}

const PLAN_DECEL = 1.3; // m/s², comfortable braking used for planning
const MAX_DECEL = 3.5; // m/s², what the brakes can do
const MAX_STEP_S = 0.5;
const MINUTE = 60_000;

export type VehicleMode = 'driving' | 'dwelling' | 'parked' | 'outOfService' | 'broken';
type RestMode = 'parked' | 'outOfService' | 'broken';

/** Plate in a Dutch-style side code, e.g. "GB-512-X" or "7-KPR-42". */
function plateOf(rng: Rng): string {
  const letters = 'BDFGHJKLNPRSTVXZ';
  const l = (n: number) => Array.from({ length: n }, () => rng.pick([...letters])).join('');
  const d = (n: number) => Array.from({ length: n }, () => String(rng.int(0, 9))).join('');
  return rng.pick([
    () => `${l(2)}-${d(3)}-${l(1)}`,
    () => `${d(1)}-${l(3)}-${d(2)}`,
    () => `${l(1)}-${d(3)}-${l(2)}`,
    () => `${d(2)}-${l(3)}-${d(1)}`,
  ])();
}

/** The motion state of one vehicle on its route; exported for tests. */
export class VehicleModel {
  readonly type: VehicleType;
  readonly profile: Profile;
  readonly route: Route;
  readonly rng: Rng;
  /** Distance along the route, m. */
  s: number;
  /** Speed, m/s. */
  v = 0;
  /** Odometer, m. */
  odometer: number;
  fuel: number | undefined;
  mode: VehicleMode = 'parked';
  /** When the current rest, trip or dwell ends (epoch ms). */
  until = 0;
  /** Rest to enter once the vehicle has braked to a halt at `stopAt`. */
  pendingRest: { mode: RestMode; until: number } | undefined;
  stopAt: number | undefined;
  /** Emergency vehicles on a call pass red lights. */
  onCall = false;
  readonly #driverFactor: number;
  #nextPoint = 0;
  #decided = false;
  #stopAtNext = false;
  #dwellSeconds = 0;
  /** When the current trip ends; a dwell at a stop does not extend it. */
  #tripEnd = 0;

  constructor(type: VehicleType, route: Route, rng: Rng) {
    const profile = PROFILES[type];
    if (profile === undefined) throw new RangeError(`no profile for vehicle type ${type}`);
    this.type = type;
    this.profile = profile;
    this.route = route;
    this.rng = rng;
    this.s = rng.range(0, route.line.length);
    this.odometer = rng.range(profile.odometerKm[0], profile.odometerKm[1]) * 1000;
    this.fuel = profile.fuelPerMetre === undefined ? undefined : rng.range(0.25, 1);
    this.#driverFactor = rng.range(0.86, 1);
    this.#nextPoint = this.#firstPointAhead(this.s);
  }

  /** Limit of the road here for this vehicle, m/s. */
  limitHere(): number {
    return Math.min(speedLimitAt(this.route, this.s), this.profile.maxSpeed);
  }

  /** Puts the vehicle in the state its schedule says for time t (first event). */
  begin(t: number): void {
    // Which phase came before decides what is planned next for trip-making vehicles.
    this.mode = this.rng.chance(0.5) ? 'driving' : 'parked';
    const plan = this.#plan(t);
    // Already part-way through the trip or rest.
    const until = t + this.rng.range(0.05, 1) * (plan.until - t);
    if (plan.drive) this.#drive(until);
    else this.#rest(plan.mode, until);
  }

  /** Integrates motion from t0 to t1 (epoch ms) in small steps. */
  advance(t0: number, t1: number): void {
    const total = (t1 - t0) / 1000;
    if (total <= 0) return;
    const steps = Math.ceil(total / MAX_STEP_S);
    const h = total / steps;
    for (let k = 1; k <= steps; k++) this.#step(h, t0 + k * h * 1000);
  }

  #plan(t: number): { drive: true; until: number } | { drive: false; mode: RestMode; until: number } {
    const lt = localTime(t);
    const rng = this.rng;
    const weekday = lt.weekday >= 1 && lt.weekday <= 5;
    switch (this.profile.schedule) {
      case 'transit': {
        const inService = lt.hour >= 5.5 || lt.hour < 0.5;
        return inService ? { drive: true, until: t + 15 * MINUTE } : { drive: false, mode: 'outOfService', until: t + 15 * MINUTE };
      }
      case 'sweeper': {
        const working = lt.hour >= 5 && lt.hour < 13 && lt.weekday !== 0;
        return working ? { drive: true, until: t + 30 * MINUTE } : { drive: false, mode: 'parked', until: t + 30 * MINUTE };
      }
      case 'work': {
        const working = weekday ? lt.hour >= 6 && lt.hour < 19 : lt.weekday === 6 && lt.hour >= 7 && lt.hour < 14;
        if (!working) return { drive: false, mode: 'parked', until: t + 30 * MINUTE };
        if (this.mode === 'driving') return { drive: false, mode: 'parked', until: t + rng.range(3, 15) * MINUTE };
        return { drive: true, until: t + rng.range(5, 25) * MINUTE };
      }
      case 'emergency': {
        if (this.mode === 'driving') {
          const rest = this.type === 'fireTruck' ? 150 : 50;
          return { drive: false, mode: 'parked', until: t + Math.min(rng.exponential(rest), 8 * 60) * MINUTE };
        }
        return { drive: true, until: t + rng.range(8, 30) * MINUTE };
      }
      case 'patrol': {
        if (this.mode === 'driving') return { drive: false, mode: 'parked', until: t + rng.range(5, 30) * MINUTE };
        return { drive: true, until: t + rng.range(15, 50) * MINUTE };
      }
      case 'trips': {
        const demand = trafficDemand(lt);
        if (this.mode === 'driving') {
          const mean = 25 / (demand + 0.12);
          return { drive: false, mode: 'parked', until: t + Math.min(Math.max(rng.exponential(mean), 5), 600) * MINUTE };
        }
        return { drive: true, until: t + Math.min(Math.max(rng.exponential(18), 4), 60) * MINUTE };
      }
    }
  }

  #firstPointAhead(s: number): number {
    const pts = this.route.points;
    const i = pts.findIndex((p) => p.s > s);
    return i === -1 ? 0 : i;
  }

  #ahead(from: number, to: number): number {
    const d = to - from;
    return d >= 0 ? d : d + this.route.line.length;
  }

  #decide(p: RoutePoint, distance: number): void {
    const rng = this.rng;
    const transit = this.profile.schedule === 'transit';
    // Too close to stop comfortably: the light is amber, nobody rang the bell.
    const canStop = (this.v * this.v) / (2 * Math.max(distance - 0.3, 0.01)) <= 3;
    this.#decided = true;
    this.#stopAtNext = false;
    if (p.kind === 'terminus') {
      this.#stopAtNext = true;
      this.#dwellSeconds = transit ? rng.range(60, 240) : rng.range(3, 10);
    } else if (p.kind === 'stop' && transit) {
      this.#stopAtNext = canStop && rng.chance(0.85);
      this.#dwellSeconds = Math.min(8 + rng.exponential(12), 60);
    } else if (p.kind === 'light' && !this.onCall && rng.chance(0.45)) {
      this.#stopAtNext = canStop;
      this.#dwellSeconds = rng.range(5, 45);
    }
  }

  #rest(mode: RestMode, until: number): void {
    this.mode = mode;
    this.until = until;
    this.v = 0;
    this.onCall = false;
    this.pendingRest = undefined;
    this.stopAt = undefined;
    if (this.fuel !== undefined && this.fuel < 0.2 && mode !== 'broken') this.fuel = this.rng.range(0.85, 1);
  }

  #step(h: number, tau: number): void {
    if (this.mode !== 'driving') {
      this.v = 0;
      if (tau < this.until) return;
      if (this.mode === 'dwelling') {
        this.mode = 'driving';
        this.until = this.#tripEnd;
        return;
      }
      const plan = this.#plan(tau);
      if (plan.drive) this.#drive(plan.until);
      else this.#rest(plan.mode, plan.until);
      return;
    }

    if (this.pendingRest === undefined) {
      if (tau >= this.until) {
        const plan = this.#plan(tau);
        if (plan.drive) this.#drive(plan.until);
        else this.#requestStop(plan.mode, plan.until);
      } else if (this.rng.chance((h * 0.004) / 3600)) {
        // About one breakdown per 250 hours on the road.
        this.#requestStop('broken', tau + this.rng.range(20, 90) * MINUTE);
      }
    }

    const line = this.route.line;
    // Routes without stops or lights (the ring road) have no points at all.
    const point = this.route.points[this.#nextPoint];
    const dPoint = point === undefined ? Infinity : this.#ahead(this.s, point.s);
    if (point !== undefined && !this.#decided) this.#decide(point, dPoint);

    const factor = this.onCall ? 1 : this.#driverFactor;
    const limit = this.limitHere();
    let target = limit * factor;
    // Brake ahead of a slower segment so the new limit holds on entering it.
    const seg = line.segmentAt(this.s);
    const segCount = this.route.limits.length;
    let boundary = this.#ahead(this.s, line.cumulative[seg + 1] as number);
    for (let j = 1; j <= 2 && boundary < 300; j++) {
      const nextSeg = (seg + j) % segCount;
      const nextLimit = Math.min(this.route.limits[nextSeg] as number, this.profile.maxSpeed) * factor;
      target = Math.min(target, Math.sqrt(nextLimit ** 2 + 2 * PLAN_DECEL * boundary));
      boundary += (line.cumulative[nextSeg + 1] as number) - (line.cumulative[nextSeg] as number);
    }
    const dStop = this.stopAt === undefined ? Infinity : this.#ahead(this.s, this.stopAt);
    const haltAtPoint = this.#stopAtNext && dPoint <= dStop;
    const dHalt = haltAtPoint ? dPoint : dStop;
    if (dHalt !== Infinity) target = Math.min(target, Math.sqrt(2 * PLAN_DECEL * Math.max(0, dHalt - 0.3)));

    let v1 = this.v < target ? Math.min(target, this.v + this.profile.accel * h) : Math.max(target, this.v - MAX_DECEL * h);
    v1 = Math.min(v1, limit);
    const ds = ((this.v + v1) / 2) * h;

    if (dHalt !== Infinity && ds >= dHalt - 0.3) {
      // Arrived where the vehicle must halt: at a stop, a red light or where it parks.
      this.#move(dHalt);
      this.v = 0;
      if (dHalt >= dPoint) this.#passPoint();
      if (haltAtPoint) {
        this.mode = 'dwelling';
        this.until = tau + this.#dwellSeconds * 1000;
      } else if (this.pendingRest !== undefined) {
        this.#rest(this.pendingRest.mode, this.pendingRest.until);
      }
      return;
    }

    this.#move(ds);
    this.v = Math.min(v1, this.limitHere());
    if (ds >= dPoint) this.#passPoint();
  }

  #drive(until: number): void {
    this.mode = 'driving';
    this.until = until;
    this.#tripEnd = until;
    this.onCall = this.profile.schedule === 'emergency';
  }

  #requestStop(mode: RestMode, until: number): void {
    this.pendingRest = { mode, until };
    this.stopAt = this.route.line.wrap(this.s + (this.v * this.v) / (2 * PLAN_DECEL) + 15);
  }

  #passPoint(): void {
    this.#nextPoint = (this.#nextPoint + 1) % Math.max(1, this.route.points.length);
    this.#decided = false;
  }

  #move(ds: number): void {
    this.s = this.route.line.wrap(this.s + ds);
    this.odometer += ds;
    if (this.fuel !== undefined && this.profile.fuelPerMetre !== undefined) {
      this.fuel = Math.max(0.02, this.fuel - ds * this.profile.fuelPerMetre);
    }
  }

  serviceStatus(): 'parked' | 'onRoute' | 'broken' | 'outOfService' {
    if (this.mode === 'driving' || this.mode === 'dwelling') return 'onRoute';
    return this.mode;
  }
}

export const vehicleFactory: BodyFactory<'vehicle'> = (ctx: DeviceContext) => {
  const type = vehicleTypeOf(ctx.index);
  const profile = PROFILES[type] as Profile;
  const route = routeOf(ctx.index, type, profile);
  const model = new VehicleModel(type, route, ctx.rng.fork('motion'));
  const noise = ctx.rng.fork('gnss');
  const plate = profile.plate ? plateOf(ctx.rng.fork('plate')) : undefined;
  let last: number | undefined;
  return {
    timeFormat: 'iso',
    next(t) {
      if (last === undefined) model.begin(t);
      else model.advance(last, t);
      last = t;
      const pos = route.line.at(model.s);
      const ll = projection.toLatLon({ x: pos.x + noise.normal(0, 1.2), y: pos.y + noise.normal(0, 1.2) });
      return {
        location: { lat: round(ll.lat, 6), lon: round(ll.lon, 6), accuracy: round(noise.range(2.5, 6), 1) },
        vehicleType: type,
        // Floor, so rounding never lifts a speed at the limit above it.
        speed: Math.floor(model.v * 100) / 100,
        heading: round(pos.heading, 1) % 360,
        mileageFromOdometer: round(model.odometer, 1),
        serviceStatus: model.serviceStatus(),
        ...(model.fuel === undefined ? {} : { fuelLevel: round(model.fuel, 3) }),
        ...(profile.reportsRoute ? { routeId: route.id } : {}),
        ...(plate === undefined ? {} : { vehiclePlateIdentifier: plate }),
      };
    },
  };
};
