// The simulated city's geometry as GeoJSON (RFC 7946, WGS 84 lon/lat): districts, roads and the fixed
// sensor sites, from the same model the devices move in. The dashboard ships the output as a static
// file (`node device-sim/src/geojson.ts > cloud/src/dashboard/page/public/city.geojson`), so its map
// needs no tile server and a test checks the shipped copy is what this module gives.
import { AIR_SITES, CAMERA_SITES, CITY_NAME, DISTRICTS, getRoute, projection, ROUTE_SPECS, WEATHER_SITES } from './city.ts';
import { round, type Point } from './geo.ts';

export type Position = [lon: number, lat: number];

export interface CityFeature {
  type: 'Feature';
  id: string;
  properties: { layer: 'district' | 'road' | 'weather_site' | 'air_site' | 'camera_site'; name: string; [key: string]: string | number | boolean };
  geometry: { type: 'Polygon'; coordinates: Position[][] } | { type: 'LineString'; coordinates: Position[] } | { type: 'Point'; coordinates: Position };
}

export interface CityGeoJson {
  type: 'FeatureCollection';
  name: string;
  bbox: [number, number, number, number];
  features: CityFeature[];
}

/** Six decimals: about 0.1 m, far below what a city map shows, and a stable text for the shipped file. */
const pos = (p: Point): Position => {
  const ll = projection.toLatLon(p);
  return [round(ll.lon, 6), round(ll.lat, 6)];
};

const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

/** Districts are modelled as discs: drawn as 48-gons. */
const DISTRICT_VERTICES = 48;

export function cityGeoJson(): CityGeoJson {
  const features: CityFeature[] = [];
  for (const d of DISTRICTS) {
    const ring: Position[] = [];
    for (let i = 0; i <= DISTRICT_VERTICES; i++) {
      const a = (2 * Math.PI * (i % DISTRICT_VERTICES)) / DISTRICT_VERTICES;
      ring.push(pos({ x: d.center.x + d.radius * Math.sin(a), y: d.center.y + d.radius * Math.cos(a) }));
    }
    features.push({ type: 'Feature', id: `district-${slug(d.name)}`, properties: { layer: 'district', name: d.name }, geometry: { type: 'Polygon', coordinates: [ring] } });
  }
  for (const spec of ROUTE_SPECS) {
    const coords = spec.waypoints.map(([x, y]) => pos({ x, y }));
    if (spec.closed && coords[0] !== undefined) coords.push(coords[0]);
    const kind = spec.stopSpacing === undefined ? 'road' : spec.id.startsWith('tram') ? 'tram' : 'bus';
    features.push({
      type: 'Feature',
      id: `road-${spec.id}`,
      properties: { layer: 'road', name: spec.name, routeId: spec.id, kind, maxLimitKmh: Math.max(...spec.waypoints.map((w) => w[2])) },
      geometry: { type: 'LineString', coordinates: coords },
    });
  }
  for (const s of WEATHER_SITES) {
    features.push({ type: 'Feature', id: `weather-${slug(s.name)}`, properties: { layer: 'weather_site', name: s.name }, geometry: { type: 'Point', coordinates: pos(s.at) } });
  }
  for (const s of AIR_SITES) {
    features.push({ type: 'Feature', id: `air-${slug(s.name)}`, properties: { layer: 'air_site', name: s.name }, geometry: { type: 'Point', coordinates: pos(s.at) } });
  }
  for (const c of CAMERA_SITES) {
    const at = getRoute(c.routeId).line.at(c.s);
    features.push({ type: 'Feature', id: `camera-${slug(c.name)}`, properties: { layer: 'camera_site', name: c.name, routeId: c.routeId }, geometry: { type: 'Point', coordinates: pos(at) } });
  }
  // The city's extent (clampToCity) with a margin, so the map frames every place a device can be.
  const sw = pos({ x: -4000, y: -3800 });
  const ne = pos({ x: 4000, y: 3800 });
  return { type: 'FeatureCollection', name: CITY_NAME, bbox: [sw[0], sw[1], ne[0], ne[1]], features };
}

/** The shipped file's text: two-space JSON and a final newline. */
export function cityGeoJsonText(): string {
  return `${JSON.stringify(cityGeoJson(), null, 2)}\n`;
}

if (import.meta.main) process.stdout.write(cityGeoJsonText());
