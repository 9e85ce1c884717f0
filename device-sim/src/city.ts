// The simulated city, "Havenstad": a river-port town of about 8 x 7 km centred near 52.37 N, 4.89 E.
// Coordinates are metres east/north of the centre; road routes are polylines with per-segment limits.
import { Polyline, Projection, clamp, type LatLon, type Point } from './geo.ts';

export const CITY_NAME = 'Havenstad';
export const CITY_CENTER: LatLon = { lat: 52.37, lon: 4.89 };
export const projection = new Projection(CITY_CENTER);

export interface District {
  name: string;
  center: Point;
  /** Rough radius in metres: people and incidents are placed within it. */
  radius: number;
  /** Relative weight of people and incidents in the district. */
  weight: number;
}

export const DISTRICTS: readonly District[] = [
  { name: 'Centrum', center: { x: 0, y: 0 }, radius: 800, weight: 3 },
  { name: 'Oude Haven', center: { x: 950, y: 1250 }, radius: 600, weight: 1.5 },
  { name: 'Noordoever', center: { x: 250, y: 2650 }, radius: 1000, weight: 2 },
  { name: 'Oostpark', center: { x: 2500, y: -350 }, radius: 900, weight: 1.5 },
  { name: 'Zuidveld', center: { x: -300, y: -2500 }, radius: 1100, weight: 2 },
  { name: 'Westpoort', center: { x: -3000, y: 1100 }, radius: 1000, weight: 0.8 },
  { name: 'Lindenhof', center: { x: -2500, y: -1500 }, radius: 1000, weight: 1.7 },
  { name: 'Spoorzijde', center: { x: -700, y: 650 }, radius: 500, weight: 1.2 },
];

export const STREETS: readonly string[] = [
  'Havenstraat', 'Lindengracht', 'Marktplein', 'Kade Noord', 'Spoorlaan', 'Parkweg', 'Molenstraat',
  'Oosterdok', 'Zuiderlaan', 'Westhavenweg', 'Brugstraat', 'Kerkplein', 'Veerweg', 'Stationsplein',
];

export type RoutePointKind = 'stop' | 'light' | 'terminus';
export interface RoutePoint {
  /** Distance along the route, metres. */
  s: number;
  kind: RoutePointKind;
}

/** [x, y, limit of the segment starting here in km/h, 'L' if a traffic light stands here]. */
type Waypoint = readonly [number, number, number, ('L' | '')?];

export interface RouteSpec {
  id: string;
  name: string;
  /** Closed loops are driven round; open routes out and back with a turnaround at each end. */
  closed: boolean;
  waypoints: readonly Waypoint[];
  /** Public transport: a stop every so many metres. */
  stopSpacing?: number;
}

export const ROUTE_SPECS: readonly RouteSpec[] = [
  {
    id: 'ring-a10',
    name: 'Ring A10',
    closed: true,
    waypoints: [
      [0, 3300, 80], [2300, 2400, 80], [3400, 200, 80], [3000, -1900, 80], [1000, -3400, 80],
      [-1400, -3300, 80], [-3000, -2000, 80], [-3500, 300, 80], [-2600, 2500, 80], [-1000, 3300, 80],
    ],
  },
  {
    id: 'arterial-ns',
    name: 'Noord-Zuidas',
    closed: false,
    waypoints: [
      [200, 3200, 50], [180, 2100, 50, 'L'], [120, 1400, 50], [0, 800, 30, 'L'], [0, 0, 30, 'L'],
      [-80, -700, 50, 'L'], [-150, -1500, 50, 'L'], [-300, -2500, 50, 'L'], [-350, -3350, 50],
    ],
  },
  {
    id: 'arterial-ew',
    name: 'Oost-Westas',
    closed: false,
    waypoints: [
      [-3450, 900, 70], [-2000, 600, 50, 'L'], [-900, 300, 50, 'L'], [-300, 100, 30, 'L'], [400, -50, 50, 'L'],
      [1300, -200, 50, 'L'], [2400, -300, 50, 'L'], [3350, -100, 50],
    ],
  },
  {
    id: 'centrum-loop',
    name: 'Binnenring',
    closed: true,
    waypoints: [
      [-450, 450, 30, 'L'], [300, 550, 30, 'L'], [600, 50, 30, 'L'], [350, -450, 30, 'L'], [-300, -550, 30, 'L'],
      [-600, -50, 30, 'L'],
    ],
  },
  {
    id: 'harbour',
    name: 'Havenroute',
    closed: false,
    waypoints: [
      [-3450, 900, 50], [-3350, 1800, 50], [-2200, 2000, 50, 'L'], [-1300, 1600, 50, 'L'], [-600, 1000, 50, 'L'],
      [0, 800, 30],
    ],
  },
  {
    id: 'bus-12',
    name: 'Bus 12 Centraal - Zuidveld',
    closed: false,
    stopSpacing: 450,
    waypoints: [
      [0, 800, 30, 'L'], [0, 0, 50, 'L'], [-80, -700, 50, 'L'], [-150, -1500, 50, 'L'], [-300, -2500, 50],
      [-320, -2900, 50],
    ],
  },
  {
    id: 'bus-27',
    name: 'Bus 27 Westpoort - Oostpark',
    closed: false,
    stopSpacing: 500,
    waypoints: [
      [-3000, 800, 50], [-2000, 600, 50, 'L'], [-900, 300, 50, 'L'], [-300, 100, 30, 'L'], [400, -50, 50, 'L'],
      [1300, -200, 50, 'L'], [2600, -300, 50],
    ],
  },
  {
    id: 'bus-40',
    name: 'Bus 40 Lindenhof - Oostpark',
    closed: false,
    stopSpacing: 500,
    waypoints: [
      [-2600, -1500, 50], [-1500, -1800, 50, 'L'], [-300, -2500, 50, 'L'], [1200, -2000, 50, 'L'],
      [2200, -1100, 50, 'L'], [2600, -300, 50],
    ],
  },
  {
    id: 'tram-5',
    name: 'Tram 5 Centraal - Oostpark',
    closed: false,
    stopSpacing: 400,
    waypoints: [
      [0, 800, 30], [300, 550, 30, 'L'], [600, 50, 50, 'L'], [1300, -200, 50, 'L'], [2000, -250, 50, 'L'],
      [2700, -250, 50],
    ],
  },
];

export interface Route {
  id: string;
  name: string;
  line: Polyline;
  /** Speed limit of each segment of `line`, m/s. */
  limits: readonly number[];
  maxLimit: number;
  /** Stops, lights and turnarounds in order of distance along the route. */
  points: readonly RoutePoint[];
}

const KMH = 1 / 3.6;

function buildRoute(spec: RouteSpec): Route {
  const fwd = spec.waypoints.map(([x, y]) => ({ x, y }));
  const fwdLimits = spec.waypoints.slice(0, -1).map((w) => w[2] * KMH);
  const lights = spec.waypoints.map((w) => w[3] === 'L');
  let pts: Point[];
  let limits: number[];
  let lightIdx: number[];
  if (spec.closed) {
    pts = fwd;
    limits = [...fwdLimits, (spec.waypoints[spec.waypoints.length - 1] as Waypoint)[2] * KMH];
    lightIdx = lights.flatMap((l, i) => (l ? [i] : []));
  } else {
    // Out and back: forward points, then the same road in reverse (segment limits mirrored).
    const n = fwd.length;
    pts = [...fwd, ...fwd.slice(1, n - 1).reverse()];
    limits = [...fwdLimits, ...[...fwdLimits].reverse()];
    lightIdx = [];
    for (let i = 0; i < pts.length; i++) {
      const original = i < n ? i : 2 * (n - 1) - i;
      if (lights[original]) lightIdx.push(i);
    }
  }
  const line = new Polyline(pts, true);
  const raw: RoutePoint[] = lightIdx.map((i) => ({ s: line.cumulative[i] as number, kind: 'light' }));
  if (!spec.closed) {
    raw.push({ s: 0, kind: 'terminus' }, { s: line.cumulative[fwd.length - 1] as number, kind: 'terminus' });
  }
  if (spec.stopSpacing !== undefined) {
    const half = spec.closed ? line.length : (line.cumulative[fwd.length - 1] as number);
    for (let s = spec.stopSpacing; s < half - spec.stopSpacing / 2; s += spec.stopSpacing) {
      raw.push({ s, kind: 'stop' });
      if (!spec.closed) raw.push({ s: line.length - s, kind: 'stop' });
    }
  }
  // Points closer than 25 m merge, the stronger kind winning: a stop at a light is a stop.
  const rank: Record<RoutePointKind, number> = { terminus: 3, stop: 2, light: 1 };
  raw.sort((a, b) => a.s - b.s);
  const points: RoutePoint[] = [];
  for (const p of raw) {
    const last = points[points.length - 1];
    if (last !== undefined && p.s - last.s < 25) {
      if (rank[p.kind] > rank[last.kind]) last.kind = p.kind;
      continue;
    }
    points.push({ ...p });
  }
  return { id: spec.id, name: spec.name, line, limits, maxLimit: Math.max(...limits), points };
}

export const ROUTES: ReadonlyMap<string, Route> = new Map(ROUTE_SPECS.map((spec) => [spec.id, buildRoute(spec)]));

export function getRoute(id: string): Route {
  const route = ROUTES.get(id);
  if (route === undefined) throw new RangeError(`unknown route ${id}`);
  return route;
}

export function speedLimitAt(route: Route, s: number): number {
  return route.limits[route.line.segmentAt(s)] as number;
}

/** Fixed sites of stationary sensors. */
export interface WeatherSite {
  name: string;
  at: Point;
  /** Metres above sea level of the sensor. */
  altitude: number;
  /** Urban heat island offset, °C. */
  heatOffset: number;
  /** Wind exposure factor (open water > 1, sheltered streets < 1). */
  windExposure: number;
}

export const WEATHER_SITES: readonly WeatherSite[] = [
  { name: 'Centrum', at: { x: 40, y: 60 }, altitude: 14, heatOffset: 1.0, windExposure: 0.75 },
  { name: 'Westpoort', at: { x: -3050, y: 1150 }, altitude: 6, heatOffset: 0.3, windExposure: 1.25 },
  { name: 'Zuidveld', at: { x: -320, y: -2480 }, altitude: 3, heatOffset: 0, windExposure: 1.0 },
  { name: 'Noordoever', at: { x: 220, y: 2700 }, altitude: 2, heatOffset: -0.3, windExposure: 1.2 },
  { name: 'Oostpark', at: { x: 2550, y: -380 }, altitude: 4, heatOffset: -0.5, windExposure: 0.9 },
];

export interface AirSite {
  name: string;
  at: Point;
  /** Share of the city's traffic emissions felt here (roadside near 1, parks near 0.3). */
  traffic: number;
  /** Port and industry: ships and refineries add SO2 and PM. */
  industry: number;
}

export const AIR_SITES: readonly AirSite[] = [
  { name: 'Stationsplein', at: { x: 20, y: 760 }, traffic: 1.0, industry: 0.1 },
  { name: 'Westhavenweg', at: { x: -2000, y: 640 }, traffic: 0.85, industry: 1.0 },
  { name: 'Oostpark', at: { x: 2600, y: -420 }, traffic: 0.25, industry: 0 },
  { name: 'A10 Zuid', at: { x: 1000, y: -3320 }, traffic: 1.15, industry: 0.1 },
  { name: 'Marktplein', at: { x: 100, y: 100 }, traffic: 0.7, industry: 0 },
  { name: 'Noordoever', at: { x: 300, y: 2600 }, traffic: 0.35, industry: 0.3 },
];

export interface CameraSite {
  name: string;
  routeId: string;
  /** Distance along the route's forward direction where the camera looks. */
  s: number;
  lanesPerDirection: number;
  /** Saturation flow per lane, vehicles per hour. */
  capacityPerLane: number;
  /** Peak demand as a share of capacity. */
  busyness: number;
  /** Share of lorries and buses. */
  heavyShare: number;
}

export const CAMERA_SITES: readonly CameraSite[] = [
  { name: 'A10 Noord', routeId: 'ring-a10', s: 1200, lanesPerDirection: 2, capacityPerLane: 1900, busyness: 0.95, heavyShare: 0.12 },
  { name: 'A10 Zuid', routeId: 'ring-a10', s: 9800, lanesPerDirection: 2, capacityPerLane: 1900, busyness: 0.9, heavyShare: 0.14 },
  { name: 'Stationsplein', routeId: 'arterial-ns', s: 2900, lanesPerDirection: 1, capacityPerLane: 750, busyness: 0.9, heavyShare: 0.08 },
  { name: 'Westhavenweg', routeId: 'arterial-ew', s: 1000, lanesPerDirection: 2, capacityPerLane: 1000, busyness: 0.8, heavyShare: 0.2 },
  { name: 'Oosterlaan', routeId: 'arterial-ew', s: 4600, lanesPerDirection: 1, capacityPerLane: 900, busyness: 0.85, heavyShare: 0.06 },
  { name: 'Zuiderlaan', routeId: 'arterial-ns', s: 5200, lanesPerDirection: 1, capacityPerLane: 900, busyness: 0.8, heavyShare: 0.05 },
  { name: 'Kade Noord', routeId: 'harbour', s: 1600, lanesPerDirection: 1, capacityPerLane: 800, busyness: 0.6, heavyShare: 0.3 },
  { name: 'Marktstraat', routeId: 'centrum-loop', s: 900, lanesPerDirection: 1, capacityPerLane: 600, busyness: 0.75, heavyShare: 0.03 },
];

/** A point inside a district, denser towards its centre. */
export function pointInDistrict(district: District, u: number, v: number): Point {
  const r = district.radius * Math.sqrt(u) * 0.9;
  const a = 2 * Math.PI * v;
  return { x: district.center.x + r * Math.sin(a), y: district.center.y + r * Math.cos(a) };
}

/** Keeps a point within the city's extent (people do not wander into the sea). */
export function clampToCity(p: Point): Point {
  return { x: clamp(p.x, -3900, 3900), y: clamp(p.y, -3700, 3700) };
}

/** Altitude of ground level, m: the city is at sea level, the north bank slightly lower. */
export function groundAltitude(p: Point): number {
  return p.y > 1800 ? -1 : 1.5;
}
