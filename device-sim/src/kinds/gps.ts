// GPS trackers carried by walkers, runners, cyclists and bike couriers. Fixes carry receiver noise that
// grows with HDOP, a little speed even when standing still, and no course below walking pace.
import { groundAltitude, projection } from '../city.ts';
import type { BodyFactory } from '../device.ts';
import { clamp, normalizeDegrees, round } from '../geo.ts';
import { Walker, type Persona } from './walker.ts';

const PERSONA_MIX: readonly Persona[] = ['walker', 'cyclist', 'courier', 'cyclist', 'walker', 'runner'];

export function gpsPersonaOf(index: number): Persona {
  return PERSONA_MIX[index % PERSONA_MIX.length] as Persona;
}

export const gpsFactory: BodyFactory<'gps'> = (ctx) => {
  const walker = new Walker(gpsPersonaOf(ctx.index), ctx.rng.fork('motion'));
  const rx = ctx.rng.fork('receiver');
  let satellites = rx.int(8, 12);
  let battery = rx.range(0.4, 1);
  let last: number | undefined;
  return {
    timeFormat: 'iso',
    next(t, dt) {
      if (last === undefined) walker.begin(t);
      else walker.advance(last, t);
      last = t;
      // Satellites in view drift slowly; street canyons in the centre cost a few.
      if (rx.chance(Math.min(1, dt / 20))) satellites = clamp(satellites + rx.pick([-1, 1]), 5, 14);
      const hdop = clamp(0.45 + 6 / satellites + rx.normal(0, 0.08), 0.6, 5);
      const sigma = 2.2 * hdop;
      const ll = projection.toLatLon({ x: walker.pos.x + rx.normal(0, sigma), y: walker.pos.y + rx.normal(0, sigma) });
      const speed = Math.max(0, walker.v + rx.normal(0, 0.12 + 0.05 * hdop));
      battery -= (dt / 3600) * (walker.moving ? 0.03 : 0.01);
      if (battery < 0.05) battery = rx.range(0.95, 1); // recharged
      return {
        location: {
          lat: round(ll.lat, 6),
          lon: round(ll.lon, 6),
          alt: round(groundAltitude(walker.pos) + 1 + rx.normal(0, 3 * hdop), 1),
          accuracy: round(sigma * 2, 1),
        },
        speed: round(speed, 2),
        // Course over ground is noise below walking pace, so receivers leave it out.
        ...(speed >= 0.5 ? { heading: normalizeDegrees(walker.heading + rx.normal(0, 4), 1) } : {}),
        satellites,
        hdop: round(hdop, 1),
        batteryLevel: round(clamp(battery, 0, 1), 2),
      };
    },
  };
};
