// Air-quality sensors: a regional background plus local traffic (rush hours), port industry and
// evening wood smoke in winter, all diluted by wind and washed out by rain. The AQI is the US EPA index.
import { AIR_SITES, projection, type AirSite } from '../city.ts';
import { localTime } from '../clock.ts';
import type { BodyFactory } from '../device.ts';
import { cityWeather, trafficDemand } from '../environment.ts';
import { clamp, round } from '../geo.ts';

export function airSiteOf(index: number): AirSite {
  return AIR_SITES[index % AIR_SITES.length] as AirSite;
}

type Breakpoints = readonly (readonly [number, number, number, number])[];
// [concentration low, high, index low, high] (US EPA, µg/m³).
const PM25_BP: Breakpoints = [
  [0, 12, 0, 50], [12.1, 35.4, 51, 100], [35.5, 55.4, 101, 150], [55.5, 150.4, 151, 200],
  [150.5, 250.4, 201, 300], [250.5, 350.4, 301, 400], [350.5, 500.4, 401, 500],
];
const PM10_BP: Breakpoints = [
  [0, 54, 0, 50], [55, 154, 51, 100], [155, 254, 101, 150], [255, 354, 151, 200],
  [355, 424, 201, 300], [425, 504, 301, 400], [505, 604, 401, 500],
];

function subIndex(c: number, table: Breakpoints): number {
  for (const [cLo, cHi, iLo, iHi] of table) {
    if (c <= cHi) return Math.round(iLo + ((iHi - iLo) * (Math.max(c, cLo) - cLo)) / (cHi - cLo));
  }
  return 500;
}

export function airQualityIndex(pm25: number, pm10: number): number {
  return clamp(Math.max(subIndex(Math.floor(pm25 * 10) / 10, PM25_BP), subIndex(Math.floor(pm10), PM10_BP)), 0, 500);
}

export const airQualityFactory: BodyFactory<'air_quality'> = (ctx) => {
  const site = airSiteOf(ctx.index);
  const rng = ctx.rng.fork('sensor');
  const copy = Math.floor(ctx.index / AIR_SITES.length);
  const at = copy === 0 ? site.at : { x: site.at.x + rng.normal(0, 250), y: site.at.y + rng.normal(0, 250) };
  const ll = projection.toLatLon(at);
  const world = cityWeather(ctx.seed);
  // Slowly varying local noise (log scale), so readings wander rather than jump.
  let drift = rng.normal(0, 0.1);
  const gain = rng.range(0.92, 1.08);
  return {
    timeFormat: 'iso',
    next(t, dt) {
      const lt = localTime(t);
      const w = world.at(t);
      const phi = Math.exp(-dt / 1800);
      drift = phi * drift + Math.sqrt(1 - phi * phi) * rng.normal(0, 0.12);
      const noise = () => Math.exp(drift + rng.normal(0, 0.04)) * gain;

      const demand = trafficDemand(lt);
      const winter = (1 + Math.cos((2 * Math.PI * (lt.dayOfYear - 20)) / 365.25)) / 2;
      const night = lt.hour < 6 || lt.hour > 21;
      // Low wind and clear nights (inversions) keep pollution near the ground.
      const dispersion = clamp(4.5 / (w.windSpeed + 1.5), 0.4, 2) * (night && w.cloudCover < 0.4 ? 1.3 : 1);
      const washout = w.rainRate > 0.3 ? 0.7 : 1;
      const woodSmoke = 7 * winter * Math.exp(-(((lt.hour - 20.5) / 2) ** 2)) * (1 - site.traffic / 2);

      const pm25 = (7 + 6 * winter + 8 * demand * site.traffic + 4 * site.industry + woodSmoke) * dispersion * washout * noise();
      const pm10 = pm25 * 1.5 + (4 + 5 * site.industry) * dispersion * washout * noise();
      const no2 = (15 + 70 * demand * site.traffic + 9 * site.industry) * dispersion * noise();
      const solar = clamp(w.solarRadiation / 800, 0, 1.2);
      const o3 = clamp((56 + 32 * solar - 0.5 * no2) * noise(), 2, 240);
      const so2 = (1.1 + 6 * site.industry) * dispersion * noise();
      const co = (0.17 + 0.45 * demand * site.traffic) * dispersion * noise();

      const pm25r = round(pm25, 1);
      const pm10r = round(Math.max(pm10, pm25), 1);
      return {
        location: { lat: round(ll.lat, 6), lon: round(ll.lon, 6), alt: 4 },
        pm25: pm25r,
        pm10: pm10r,
        no2: round(no2, 1),
        o3: round(o3, 1),
        so2: round(so2, 1),
        co: round(co, 2),
        // Read inside the sensor housing: slightly warm and dry.
        temperature: round(w.temperature + 0.6 + rng.normal(0, 0.1), 1),
        relativeHumidity: round(clamp(w.relativeHumidity - 0.03 + rng.normal(0, 0.01), 0.05, 1), 3),
        airQualityIndex: airQualityIndex(pm25r, pm10r),
      };
    },
  };
};
