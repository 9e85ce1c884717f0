// The city geometry the dashboard ships is the simulator's own city: the committed file is what this
// module gives, and every place a device can be lies inside the map's frame.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AIR_SITES, CAMERA_SITES, DISTRICTS, ROUTE_SPECS, WEATHER_SITES } from './city.ts';
import { cityGeoJson, cityGeoJsonText } from './geojson.ts';

const SHIPPED = join(import.meta.dirname, '..', '..', 'cloud', 'src', 'dashboard', 'page', 'public', 'city.geojson');

describe('city GeoJSON', () => {
  it('is the file the dashboard ships (regenerate: node device-sim/src/geojson.ts > cloud/src/dashboard/page/public/city.geojson)', () => {
    expect(readFileSync(SHIPPED, 'utf8')).toBe(cityGeoJsonText());
  });

  it('has every district, road and sensor site, inside the bounding box, in lon/lat order', () => {
    const geo = cityGeoJson();
    const count = (layer: string) => geo.features.filter((f) => f.properties.layer === layer).length;
    expect(count('district')).toBe(DISTRICTS.length);
    expect(count('road')).toBe(ROUTE_SPECS.length);
    expect(count('weather_site')).toBe(WEATHER_SITES.length);
    expect(count('air_site')).toBe(AIR_SITES.length);
    expect(count('camera_site')).toBe(CAMERA_SITES.length);
    expect(new Set(geo.features.map((f) => f.id)).size).toBe(geo.features.length);
    const [w, s, e, n] = geo.bbox;
    const points = geo.features.flatMap((f) => (f.geometry.type === 'Point' ? [f.geometry.coordinates] : f.geometry.type === 'LineString' ? f.geometry.coordinates : f.geometry.coordinates.flat()));
    for (const [lon, lat] of points) {
      expect(lon).toBeGreaterThanOrEqual(w);
      expect(lon).toBeLessThanOrEqual(e);
      expect(lat).toBeGreaterThanOrEqual(s);
      expect(lat).toBeLessThanOrEqual(n);
    }
    // Havenstad lies near 52.37 N, 4.89 E: longitude first, as RFC 7946 says.
    expect(Math.abs((w + e) / 2 - 4.89)).toBeLessThan(0.01);
    expect(Math.abs((s + n) / 2 - 52.37)).toBeLessThan(0.01);
    for (const f of geo.features) if (f.geometry.type === 'Polygon') expect(f.geometry.coordinates[0]![0]).toEqual(f.geometry.coordinates[0]!.at(-1));
  });
});
