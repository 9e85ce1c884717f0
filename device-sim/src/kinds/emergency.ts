// Emergency units (ambulance, fire, police dispatch terminals) reporting the incident they work on:
// one "open" report, "inProgress" updates, one "closed" report, all under the same incidentId and
// location; the next report opens the unit's next incident. An incident closes after its planned
// duration in event time or after a bounded number of reports, whichever comes first, so fast and
// slow report rates both see whole incidents.
import type { ALERT_CATEGORIES } from '@city/protocol';
import { DISTRICTS, STREETS, pointInDistrict, projection, type District } from '../city.ts';
import type { BodyFactory, EventBody } from '../device.ts';
import { round } from '../geo.ts';
import { stableHex } from '../rng.ts';

type Category = (typeof ALERT_CATEGORIES)[number];
type Severity = EventBody<'emergency'>['severity'];
const SEVERITIES: readonly Severity[] = ['informational', 'low', 'medium', 'high', 'critical'];

type Service = 'ambulance' | 'fire' | 'police';
const SERVICES: readonly Service[] = ['ambulance', 'fire', 'police'];

interface IncidentType {
  category: Category;
  subCategory: string;
  /** Typical severity index into SEVERITIES. */
  severity: number;
  /** Median duration, minutes. */
  minutes: number;
  text: (place: string) => string;
}

const INCIDENTS: { readonly [S in Service]: readonly (readonly [IncidentType, number])[] } = {
  ambulance: [
    [{ category: 'health', subCategory: 'cardiacArrest', severity: 4, minutes: 45, text: (p) => `Person collapsed at ${p}, CPR in progress` }, 1],
    [{ category: 'health', subCategory: 'fall', severity: 2, minutes: 35, text: (p) => `Elderly person fallen at home, ${p}` }, 3],
    [{ category: 'health', subCategory: 'breathingProblem', severity: 3, minutes: 40, text: (p) => `Breathing difficulties reported, ${p}` }, 2],
    [{ category: 'traffic', subCategory: 'carAccident', severity: 3, minutes: 50, text: (p) => `Collision between car and cyclist on ${p}` }, 2],
  ],
  fire: [
    [{ category: 'fire', subCategory: 'buildingFire', severity: 3, minutes: 90, text: (p) => `Smoke from apartment window, ${p}` }, 2],
    [{ category: 'fire', subCategory: 'vehicleFire', severity: 2, minutes: 40, text: (p) => `Car on fire in parking area, ${p}` }, 2],
    [{ category: 'fire', subCategory: 'automaticAlarm', severity: 1, minutes: 20, text: (p) => `Automatic fire alarm, office building ${p}` }, 4],
    [{ category: 'environment', subCategory: 'oilSpill', severity: 2, minutes: 120, text: (p) => `Oil slick on the water near ${p}` }, 1],
    [{ category: 'weather', subCategory: 'fallenTree', severity: 2, minutes: 60, text: (p) => `Tree down across the road, ${p}` }, 1],
  ],
  police: [
    [{ category: 'security', subCategory: 'burglary', severity: 2, minutes: 60, text: (p) => `Break-in reported at shop, ${p}` }, 3],
    [{ category: 'security', subCategory: 'disturbance', severity: 1, minutes: 30, text: (p) => `Noise and fighting outside bar, ${p}` }, 3],
    [{ category: 'security', subCategory: 'suspiciousPackage', severity: 3, minutes: 75, text: (p) => `Unattended bag, area cordoned off, ${p}` }, 1],
    [{ category: 'traffic', subCategory: 'roadBlocked', severity: 1, minutes: 45, text: (p) => `Broken-down lorry blocking a lane on ${p}` }, 2],
  ],
};

const UPDATES: readonly string[] = [
  'First unit on scene', 'Second unit requested', 'Situation under control', 'Area cordoned off',
  'Traffic diverted', 'Patient being treated on site', 'Awaiting tow truck',
];

interface Incident {
  id: string;
  type: IncidentType;
  severity: number;
  openedAt: number;
  closeAt: number;
  reportsLeft: number;
  units: number;
  location: { lat: number; lon: number };
  place: string;
}

export function serviceOf(index: number): Service {
  return SERVICES[index % SERVICES.length] as Service;
}

export const emergencyFactory: BodyFactory<'emergency'> = (ctx) => {
  const service = serviceOf(ctx.index);
  const rng = ctx.rng.fork('incidents');
  let opened = 0;
  let current: Incident | undefined;

  function open(t: number): Incident {
    const type = rng.weighted(INCIDENTS[service]);
    const district = rng.weighted(DISTRICTS.map((d): [District, number] => [d, d.weight]));
    const ll = projection.toLatLon(pointInDistrict(district, rng.next(), rng.next()));
    const minutes = Math.min(Math.max(type.minutes * Math.exp(rng.normal(0, 0.5)), 5), 240);
    const day = new Date(t).toISOString().slice(0, 10).replaceAll('-', '');
    opened++;
    return {
      id: `INC-${day}-${stableHex(10, ctx.seed, ctx.deviceId, 'incident', opened)}`,
      type,
      severity: Math.min(4, Math.max(0, type.severity + rng.pick([-1, 0, 0, 0, 1]))),
      openedAt: t,
      closeAt: t + minutes * 60_000,
      reportsLeft: rng.int(3, 14),
      units: 1,
      location: { lat: round(ll.lat, 6), lon: round(ll.lon, 6) },
      place: `${rng.pick(STREETS)}, ${district.name}`,
    };
  }

  return {
    timeFormat: 'iso',
    next(t) {
      let incidentStatus: 'open' | 'inProgress' | 'closed';
      let description: string | undefined;
      if (current === undefined) {
        current = open(t);
        incidentStatus = 'open';
        description = current.type.text(current.place);
      } else if (current.reportsLeft <= 1 || t >= current.closeAt) {
        incidentStatus = 'closed';
        description = 'Incident closed, units released';
      } else {
        incidentStatus = 'inProgress';
        if (rng.chance(0.3)) current.units = Math.min(current.units + 1, 2 + current.severity * 2);
        if (rng.chance(0.12)) current.severity = Math.min(4, Math.max(0, current.severity + rng.pick([-1, 1])));
        if (rng.chance(0.4)) description = rng.pick(UPDATES);
      }
      const incident = current;
      incident.reportsLeft--;
      if (incidentStatus === 'closed') current = undefined;
      return {
        location: { ...incident.location, accuracy: 10 },
        incidentId: incident.id,
        category: incident.type.category,
        subCategory: incident.type.subCategory,
        severity: SEVERITIES[incident.severity] as Severity,
        incidentStatus,
        unitsAssigned: incidentStatus === 'closed' ? 0 : incident.units,
        ...(description === undefined ? {} : { description }),
      };
    },
  };
};
