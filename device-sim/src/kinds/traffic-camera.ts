// Traffic cameras counting vehicles per lane. Each report covers one lane since that lane's previous
// report; lanes take turns. Flow follows the city's demand (inbound lanes peak in the morning,
// outbound in the evening); speed falls with load (BPR curve) and breaks down when a lane congests;
// occupancy is computed from the counted vehicles' lengths and speed, so the three agree.
import { CAMERA_SITES, getRoute, projection, type CameraSite } from '../city.ts';
import { localTime } from '../clock.ts';
import type { BodyFactory } from '../device.ts';
import { morningShare, trafficDemand } from '../environment.ts';
import { clamp, round } from '../geo.ts';

export function cameraSiteOf(index: number): CameraSite {
  return CAMERA_SITES[index % CAMERA_SITES.length] as CameraSite;
}

const DETECTOR_M = 2; // length of the detection zone
const LIGHT = [[4.4, 0.78], [5.8, 0.22]] as const; // car, van: [length m, share of light traffic]

export const trafficCameraFactory: BodyFactory<'traffic_camera'> = (ctx) => {
  const site = cameraSiteOf(ctx.index);
  const rng = ctx.rng.fork('counts');
  const route = getRoute(site.routeId);
  const pos = route.line.at(site.s);
  const copy = Math.floor(ctx.index / CAMERA_SITES.length);
  // A second camera at a site watches the same road a little further on.
  const ll = projection.toLatLon({ x: pos.x + copy * 40, y: pos.y + copy * 40 });
  const lanes = site.lanesPerDirection * 2;
  const freeSpeed = route.limits[pos.segment] as number;
  const lastReport: number[] = new Array<number>(lanes).fill(-1);
  const congested: boolean[] = new Array<boolean>(lanes).fill(false);
  let turn = rng.int(0, lanes - 1);

  function vehicleLength(): number {
    if (rng.chance(site.heavyShare)) return rng.chance(0.5) ? 12 : rng.range(10, 16.5);
    return rng.weighted(LIGHT) + rng.normal(0, 0.3);
  }

  return {
    timeFormat: 'iso',
    next(t) {
      const lane = turn;
      turn = (turn + 1) % lanes;
      const previous = lastReport[lane] as number;
      lastReport[lane] = t;
      const periodDuration = clamp(Math.round(previous < 0 ? (lanes * ctx.intervalMs) / 1000 : (t - previous) / 1000), 1, 3600);

      const lt = localTime(t);
      const forward = lane < site.lanesPerDirection;
      const am = morningShare(lt);
      // Forward lanes lead into town: heavier in the morning rush, lighter in the evening.
      const direction = forward ? 1 + 0.25 * am - 0.15 * (1 - am) : 1 - 0.25 * am + 0.15 * (1 - am);
      const x = clamp(trafficDemand(lt) * site.busyness * direction * (1 + rng.normal(0, 0.05)), 0.005, 1.2);

      // A lane near capacity tips into congestion and takes a while to clear.
      const wasCongested = congested[lane] as boolean;
      const p = wasCongested ? (x > 0.75 ? 0.85 : 0.3) : x > 0.9 ? 0.25 : 0;
      const isCongested = rng.chance(p);
      congested[lane] = isCongested;

      let flow: number; // veh/h
      let speed: number; // m/s
      if (isCongested) {
        flow = site.capacityPerLane * rng.range(0.55, 0.85);
        speed = freeSpeed * rng.range(0.12, 0.4);
      } else {
        flow = site.capacityPerLane * Math.min(x, 0.98);
        speed = freeSpeed * 0.95 / (1 + 0.15 * Math.min(x, 1) ** 4);
      }
      const intensity = rng.poisson((flow * periodDuration) / 3600);
      if (intensity === 0) {
        return {
          location: { lat: round(ll.lat, 6), lon: round(ll.lon, 6) },
          laneId: lane + 1,
          laneDirection: forward ? 'forward' : 'backward',
          periodDuration,
          intensity: 0,
          occupancy: 0,
          congested: false,
        };
      }
      let totalLength = 0;
      const sampled = Math.min(intensity, 60);
      for (let i = 0; i < sampled; i++) totalLength += vehicleLength();
      const averageVehicleLength = totalLength / sampled;
      const averageVehicleSpeed = clamp(speed * (1 + rng.normal(0, 0.06)), 0.5, 40);
      // Each vehicle occupies the zone for (length + zone) / speed seconds.
      const occupancy = clamp((intensity * (averageVehicleLength + DETECTOR_M)) / averageVehicleSpeed / periodDuration, 0, 1);
      return {
        location: { lat: round(ll.lat, 6), lon: round(ll.lon, 6) },
        laneId: lane + 1,
        laneDirection: forward ? 'forward' : 'backward',
        periodDuration,
        intensity,
        occupancy: round(occupancy, 3),
        averageVehicleSpeed: round(averageVehicleSpeed, 1),
        averageVehicleLength: round(averageVehicleLength, 1),
        congested: isCongested,
      };
    },
  };
};
