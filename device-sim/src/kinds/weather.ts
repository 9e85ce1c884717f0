// Weather stations at fixed sites reading the shared city weather through their own small biases:
// heat island, wind exposure, altitude, and a tipping-bucket rain gauge (0.2 mm per tip).
import { WEATHER_SITES, projection, type WeatherSite } from '../city.ts';
import type { BodyFactory } from '../device.ts';
import { cityWeather } from '../environment.ts';
import { clamp, normalizeDegrees, round } from '../geo.ts';

const BUCKET_MM = 0.2;

export function weatherSiteOf(index: number): WeatherSite {
  return WEATHER_SITES[index % WEATHER_SITES.length] as WeatherSite;
}

export const weatherFactory: BodyFactory<'weather'> = (ctx) => {
  const site = weatherSiteOf(ctx.index);
  const rng = ctx.rng.fork('sensor');
  // A second station at a site stands a few hundred metres away.
  const copy = Math.floor(ctx.index / WEATHER_SITES.length);
  const at = copy === 0 ? site.at : { x: site.at.x + rng.normal(0, 300), y: site.at.y + rng.normal(0, 300) };
  const ll = projection.toLatLon(at);
  const tempBias = rng.normal(0, 0.15);
  const rhBias = rng.normal(0, 0.012);
  const gauge = rng.range(0.9, 1.1);
  const world = cityWeather(ctx.seed);
  let bucket = 0;
  return {
    timeFormat: 'iso',
    next(t, dt) {
      const w = world.at(t);
      bucket += ((w.rainRate * dt) / 3600) * gauge;
      const tips = Math.floor(bucket / BUCKET_MM + 1e-9);
      bucket -= tips * BUCKET_MM;
      const windSpeed = Math.max(0, w.windSpeed * site.windExposure * (1 + rng.normal(0, 0.08)));
      return {
        location: { lat: round(ll.lat, 6), lon: round(ll.lon, 6), alt: site.altitude },
        temperature: round(w.temperature + site.heatOffset + tempBias + rng.normal(0, 0.05), 1),
        relativeHumidity: round(clamp(w.relativeHumidity + rhBias + rng.normal(0, 0.004), 0.05, 1), 3),
        atmosphericPressure: round(w.pressure - site.altitude * 0.12 + rng.normal(0, 0.05), 1),
        windSpeed: round(windSpeed, 1),
        // Light winds swing about; vanes report whole degrees.
        windDirection: normalizeDegrees(w.windDirection + rng.normal(0, 6 + 20 / (windSpeed + 1)), 0),
        precipitation: round(tips * BUCKET_MM, 1),
        solarRadiation: Math.round(Math.max(0, w.solarRadiation * (1 + rng.normal(0, 0.03)))),
      };
    },
  };
};
