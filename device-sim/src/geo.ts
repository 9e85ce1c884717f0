// Geometry on a local tangent plane around the city centre: motion is computed in metres (x east,
// y north) and converted to WGS 84 only when an event is written.

export interface LatLon {
  lat: number;
  lon: number;
}

/** Metres east (x) and north (y) of the city centre. */
export interface Point {
  x: number;
  y: number;
}

export const EARTH_RADIUS_M = 6_371_008.8;
const RAD = Math.PI / 180;

/** Equirectangular projection around an origin: well under 0.1 % error across a 10 km city. */
export class Projection {
  readonly origin: LatLon;
  readonly metresPerDegLat: number;
  readonly metresPerDegLon: number;

  constructor(origin: LatLon) {
    this.origin = origin;
    const phi = origin.lat * RAD;
    this.metresPerDegLat = 111_132.92 - 559.82 * Math.cos(2 * phi) + 1.175 * Math.cos(4 * phi);
    this.metresPerDegLon = 111_412.84 * Math.cos(phi) - 93.5 * Math.cos(3 * phi);
  }

  toLatLon(p: Point): LatLon {
    return { lat: this.origin.lat + p.y / this.metresPerDegLat, lon: this.origin.lon + p.x / this.metresPerDegLon };
  }

  toPoint(ll: LatLon): Point {
    return { x: (ll.lon - this.origin.lon) * this.metresPerDegLon, y: (ll.lat - this.origin.lat) * this.metresPerDegLat };
  }
}

export function haversineMetres(a: LatLon, b: LatLon): number {
  const dLat = (b.lat - a.lat) * RAD;
  const dLon = (b.lon - a.lon) * RAD;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Initial great-circle bearing from a to b, degrees clockwise from true north in [0, 360). */
export function bearingDegrees(a: LatLon, b: LatLon): number {
  const phi1 = a.lat * RAD;
  const phi2 = b.lat * RAD;
  const dLon = (b.lon - a.lon) * RAD;
  const y = Math.sin(dLon) * Math.cos(phi2);
  const x = Math.cos(phi1) * Math.sin(phi2) - Math.sin(phi1) * Math.cos(phi2) * Math.cos(dLon);
  return normalizeDegrees(Math.atan2(y, x) / RAD);
}

/** Into [0, 360); also after rounding, since protocol's heading maximum is exclusive. */
export function normalizeDegrees(deg: number, decimals?: number): number {
  let d = ((deg % 360) + 360) % 360;
  if (decimals !== undefined) d = round(d, decimals);
  return d >= 360 ? 0 : d;
}

/** Heading of a displacement on the local plane, degrees clockwise from north. */
export function headingOf(dx: number, dy: number): number {
  return normalizeDegrees(Math.atan2(dx, dy) / RAD);
}

/** Smallest absolute difference between two headings, in degrees. */
export function headingDifference(a: number, b: number): number {
  const d = Math.abs(normalizeDegrees(a) - normalizeDegrees(b));
  return d > 180 ? 360 - d : d;
}

export function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

export function clamp(value: number, min: number, max: number): number {
  return value < min ? min : value > max ? max : value;
}

export function distance(a: Point, b: Point): number {
  return Math.hypot(b.x - a.x, b.y - a.y);
}

export interface PolylinePosition extends Point {
  /** Heading of the segment, degrees clockwise from north. */
  heading: number;
  segment: number;
}

/** A path on the local plane, addressed by distance along it; closed paths wrap around. */
export class Polyline {
  readonly points: readonly Point[];
  readonly closed: boolean;
  /** cumulative[i] = distance from the start to points[i]; the last entry is the total length. */
  readonly cumulative: readonly number[];
  readonly length: number;

  constructor(points: readonly Point[], closed: boolean) {
    if (points.length < 2) throw new RangeError('a polyline needs at least two points');
    this.points = closed ? [...points, points[0] as Point] : points;
    this.closed = closed;
    const cumulative = [0];
    for (let i = 1; i < this.points.length; i++) {
      cumulative.push((cumulative[i - 1] as number) + distance(this.points[i - 1] as Point, this.points[i] as Point));
    }
    this.cumulative = cumulative;
    this.length = cumulative[cumulative.length - 1] as number;
  }

  get segmentCount(): number {
    return this.points.length - 1;
  }

  /** Distance wrapped into [0, length) for closed paths, clamped for open ones. */
  wrap(s: number): number {
    if (this.closed) return ((s % this.length) + this.length) % this.length;
    return clamp(s, 0, this.length);
  }

  segmentAt(s: number): number {
    const d = this.wrap(s);
    let lo = 0;
    let hi = this.segmentCount - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.cumulative[mid] as number) <= d) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  at(s: number): PolylinePosition {
    const d = this.wrap(s);
    const segment = this.segmentAt(d);
    const a = this.points[segment] as Point;
    const b = this.points[segment + 1] as Point;
    const start = this.cumulative[segment] as number;
    const len = (this.cumulative[segment + 1] as number) - start;
    const f = len > 0 ? (d - start) / len : 0;
    return { x: a.x + (b.x - a.x) * f, y: a.y + (b.y - a.y) * f, heading: headingOf(b.x - a.x, b.y - a.y), segment };
  }
}
