// Citizens' phones running the city app (iOS and Android). A session is appOpen, location updates and
// the odd issue report or transit check-in, then appClose (or a crash). Some people never share their
// location. Android builds write event times as epoch milliseconds, iOS as RFC 3339.
import { STREETS, groundAltitude, projection } from '../city.ts';
import { localTime } from '../clock.ts';
import type { BodyFactory, EventBody } from '../device.ts';
import { clamp, round } from '../geo.ts';
import type { Rng } from '../rng.ts';
import { Walker } from './walker.ts';

type Body = EventBody<'phone'>;
type PhoneEventType = Body['eventType'];
type ReportCategory = NonNullable<Body['reportCategory']>;
export type Platform = Body['platform'];

const IOS_VERSIONS = [['18.3.2', 25], ['18.3.1', 12], ['18.2.1', 15], ['18.1.1', 8], ['17.7.2', 10], ['17.6.1', 8], ['16.7.10', 4]] as const;
const ANDROID_VERSIONS = [['15', 30], ['14', 35], ['13', 20], ['12', 10], ['11', 5]] as const;
const APP_VERSIONS = [['4.12.1', 45], ['4.12.0', 20], ['4.11.3', 20], ['4.10.0', 10], ['4.9.2', 5]] as const;

const REPORTS: readonly (readonly [ReportCategory, number, readonly string[]])[] = [
  ['pothole', 25, ['Deep pothole in the cycle lane on {street}', 'Loose paving stones on {street}', 'Hole in the road near the bus stop, {street}']],
  ['streetlight', 15, ['Streetlight out on {street} since last night', 'Lamp post flickering on {street}']],
  ['litter', 30, ['Overflowing bin on {street}', 'Dumped mattress on the pavement, {street}', 'Broken glass on the cycle path, {street}']],
  ['graffiti', 10, ['Graffiti on the bridge at {street}', 'Tags sprayed on the school wall, {street}']],
  ['noise', 12, ['Loud music from a boat on the canal near {street}', 'Construction noise before 7am on {street}']],
  ['other', 8, ['Broken bench on {street}', 'Fallen branch on the footpath, {street}', 'Traffic light stuck on red at {street}']],
];

/** 40 % iPhones, spread evenly through the fleet. */
export function platformOf(index: number): Platform {
  return index % 5 === 0 || index % 5 === 2 ? 'ios' : 'android';
}

function issueReport(rng: Rng): { reportCategory: ReportCategory; message?: string } {
  const [category, , templates] = rng.weighted(REPORTS.map((r) => [r, r[1]] as const));
  if (rng.chance(0.2)) return { reportCategory: category };
  return { reportCategory: category, message: rng.pick(templates).replace('{street}', rng.pick(STREETS)) };
}

export const phoneFactory: BodyFactory<'phone'> = (ctx) => {
  const platform = platformOf(ctx.index);
  const ios = platform === 'ios';
  const rng = ctx.rng.fork('app');
  const walker = new Walker(rng.chance(0.8) ? 'walker' : 'cyclist', ctx.rng.fork('motion'));
  const osVersion = rng.weighted(ios ? IOS_VERSIONS : ANDROID_VERSIONS);
  const appVersion = rng.weighted(APP_VERSIONS);
  const sharesLocation = rng.chance(0.85);
  const crashRate = ios ? 0.004 : 0.009;
  let battery = rng.range(0.3, 1);
  let inSession = false;
  let eventsLeft = 0;
  let last: number | undefined;

  return {
    timeFormat: ios ? 'iso' : 'epochMs',
    next(t, dt) {
      if (last === undefined) walker.begin(t);
      else walker.advance(last, t);
      last = t;
      const hour = localTime(t).hour;
      // Phones charge overnight and drain faster while the app is in use.
      if (hour < 7 && hour >= 0.5) battery += (dt / 3600) * 0.25;
      else battery -= (dt / 3600) * (inSession ? 0.1 : 0.015);
      battery = clamp(battery, 0.03, 1);

      let eventType: PhoneEventType;
      if (!inSession) {
        eventType = 'appOpen';
        inSession = true;
        eventsLeft = rng.int(3, 25);
      } else if (rng.chance(crashRate)) {
        eventType = 'crash';
        inSession = false;
      } else if (--eventsLeft <= 0) {
        eventType = 'appClose';
        inSession = false;
      } else {
        eventType = rng.weighted<PhoneEventType>([
          ['locationUpdate', sharesLocation ? 80 : 0],
          ['issueReport', 6],
          ['transitCheckIn', 6],
        ]);
      }
      const withLocation = sharesLocation && eventType !== 'appClose' && eventType !== 'crash';
      let location: Body['location'];
      if (withLocation) {
        // Phones report coarse accuracy classes; iOS also gives altitude.
        const accuracy = ios ? rng.weighted([[5, 40], [10, 30], [16.5, 15], [35, 10], [65, 5]] as const) : round(clamp(rng.normal(12, 6), 3, 100), 1);
        const ll = projection.toLatLon({ x: walker.pos.x + rng.normal(0, accuracy / 2), y: walker.pos.y + rng.normal(0, accuracy / 2) });
        location = {
          lat: round(ll.lat, 6),
          lon: round(ll.lon, 6),
          accuracy,
          ...(ios ? { alt: round(groundAltitude(walker.pos) + 1.2 + rng.normal(0, 4), 1) } : {}),
        };
      }
      return {
        ...(location === undefined ? {} : { location }),
        platform,
        osVersion,
        appVersion,
        eventType,
        ...(eventType === 'issueReport' ? issueReport(rng) : {}),
        batteryLevel: round(battery, 2),
      };
    },
  };
};
