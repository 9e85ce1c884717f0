// City-wide conditions as pure functions of event time: traffic demand, the sun and the weather.
// Being functions of time (not of a device's history) keeps every station and sensor in agreement.
import { CITY_CENTER } from './city.ts';
import { localTime, type LocalTime } from './clock.ts';
import { clamp } from './geo.ts';
import { Rng } from './rng.ts';

const RAD = Math.PI / 180;
const DAY_MS = 86_400_000;

function bump(hour: number, centre: number, width: number): number {
  return Math.exp(-(((hour - centre) / width) ** 2));
}

/**
 * Road traffic demand, 0..1 of the weekday peak: morning and evening rush hours on weekdays, one broad
 * midday hump at weekends, a trough around 03:00.
 */
export function trafficDemand(t: LocalTime): number {
  const h = t.hour;
  const daytime = h < 5 || h > 23.5 ? 0 : Math.sin((Math.PI * (h - 5)) / 18.5) ** 1.5;
  if (t.weekday === 0 || t.weekday === 6) {
    const scale = t.weekday === 6 ? 0.6 : 0.5;
    return clamp(0.05 + scale * daytime * bump(h, 14, 5), 0, 1);
  }
  return clamp(0.06 + 0.42 * daytime + 0.5 * bump(h, 8.1, 1.0) + 0.42 * bump(h, 17.3, 1.25), 0, 1);
}

/** Morning rush share of the day's demand: inbound lanes peak in the morning, outbound in the evening. */
export function morningShare(t: LocalTime): number {
  return bump(t.hour, 8.1, 1.6);
}

/** Solar elevation in degrees (low-precision almanac, ±0.5°). */
export function solarElevation(ms: number, lat = CITY_CENTER.lat, lon = CITY_CENTER.lon): number {
  const d = ms / DAY_MS - 10_957.5; // days since J2000.0
  const g = (357.529 + 0.98560028 * d) * RAD;
  const q = 280.459 + 0.98564736 * d;
  const l = (q + 1.915 * Math.sin(g) + 0.02 * Math.sin(2 * g)) * RAD;
  const e = (23.439 - 0.00000036 * d) * RAD;
  const ra = Math.atan2(Math.cos(e) * Math.sin(l), Math.cos(l)) / RAD;
  const decl = Math.asin(Math.sin(e) * Math.sin(l));
  const gmst = (18.697374558 + 24.06570982441908 * d) % 24;
  const hourAngle = (gmst * 15 + lon - ra) * RAD;
  const phi = lat * RAD;
  return Math.asin(Math.sin(phi) * Math.sin(decl) + Math.cos(phi) * Math.cos(decl) * Math.cos(hourAngle)) / RAD;
}

/** Sunrise in local standard time (CET) hours, from the day's declination. */
function sunriseStandardHour(dayOfYear: number): number {
  const decl = 23.44 * RAD * Math.sin((2 * Math.PI * (dayOfYear - 81)) / 365.25);
  const cosH0 = clamp(-Math.tan(CITY_CENTER.lat * RAD) * Math.tan(decl), -1, 1);
  const solarNoon = 12 + (15 - CITY_CENTER.lon) / 15;
  return solarNoon - Math.acos(cosH0) / RAD / 15;
}

export interface Weather {
  temperature: number;
  dewPoint: number;
  relativeHumidity: number;
  /** Sea-level pressure, hPa. */
  pressure: number;
  windSpeed: number;
  windDirection: number;
  cloudCover: number;
  /** Rain rate, mm/h. */
  rainRate: number;
  solarRadiation: number;
}

interface Wave {
  amplitude: number;
  periodMs: number;
  phase: number;
}

function waves(rng: Rng, specs: readonly (readonly [number, number, number])[]): Wave[] {
  // [amplitude, shortest period in hours, longest period in hours]
  return specs.map(([amplitude, minH, maxH]) => ({
    amplitude,
    periodMs: rng.range(minH, maxH) * 3_600_000,
    phase: rng.range(0, 2 * Math.PI),
  }));
}

function sumWaves(list: readonly Wave[], ms: number): number {
  let total = 0;
  for (const w of list) total += w.amplitude * Math.sin((2 * Math.PI * ms) / w.periodMs + w.phase);
  return total;
}

/** Saturation vapour pressure (Magnus), hPa. */
function vapourPressure(celsius: number): number {
  return 6.1094 * Math.exp((17.625 * celsius) / (243.04 + celsius));
}

/**
 * The city's weather for one seed: slow synoptic waves (days) for temperature, pressure, cloud and wind,
 * a diurnal cycle with its minimum near sunrise and maximum mid-afternoon, and rain when cloud is thick.
 */
export class CityWeather {
  readonly #synoptic: Wave[];
  readonly #cloud: Wave[];
  readonly #pressure: Wave[];
  readonly #wind: Wave[];
  readonly #windDir: Wave[];
  readonly #showers: Wave[];

  constructor(seed: number) {
    const rng = new Rng(seed, 'city-weather');
    this.#synoptic = waves(rng, [[1.5, 96, 216], [0.9, 60, 140], [0.5, 40, 90]]);
    this.#cloud = waves(rng, [[0.3, 48, 120], [0.2, 14, 36], [0.1, 4, 9]]);
    this.#pressure = waves(rng, [[8, 72, 160], [4, 30, 60]]);
    this.#wind = waves(rng, [[2.2, 40, 110], [0.8, 8, 20]]);
    this.#windDir = waves(rng, [[45, 60, 150], [25, 10, 30]]);
    this.#showers = waves(rng, [[0.5, 2, 5]]);
  }

  at(ms: number): Weather {
    const t = localTime(ms);
    const season = Math.cos((2 * Math.PI * (t.dayOfYear - 20)) / 365.25); // 1 in late January
    const summer = (1 - season) / 2;
    const cloudCover = clamp(0.55 + sumWaves(this.#cloud, ms), 0, 1);
    const rainRate = cloudCover > 0.85 ? (cloudCover - 0.85) * 14 * (0.5 + sumWaves(this.#showers, ms)) : 0;

    const mean = 10.6 - 7.2 * season + sumWaves(this.#synoptic, ms);
    const rise = sunriseStandardHour(t.dayOfYear);
    const peak = 12 + (15 - CITY_CENTER.lon) / 15 + 2.3;
    const h = t.standardHour;
    let shape: number;
    if (h >= rise && h <= peak) shape = -Math.cos((Math.PI * (h - rise)) / (peak - rise));
    else shape = Math.cos((Math.PI * ((h - peak + 24) % 24)) / (24 - (peak - rise)));
    // Clear skies widen the daily range; winter days have a narrower one.
    const halfRange = (2 + 3 * (1 - cloudCover)) * (0.75 + 0.25 * summer);
    const temperature = mean + halfRange * shape;

    const spread = rainRate > 0 ? 0.6 : 2.5 + 3.5 * (1 - cloudCover);
    const dewPoint = mean - spread - 0.4 * halfRange;
    const relativeHumidity = clamp(vapourPressure(dewPoint) / vapourPressure(temperature), 0.2, 1);

    const pressure = 1013 + sumWaves(this.#pressure, ms) - 12 * (cloudCover - 0.55);
    const afternoon = Math.max(0, Math.sin((Math.PI * (h - 8)) / 12));
    const windSpeed = Math.max(0.2, 4 + sumWaves(this.#wind, ms) + 2.5 * (cloudCover - 0.5) + 1.2 * afternoon);
    const windDirection = 235 + sumWaves(this.#windDir, ms);

    const elevation = solarElevation(ms);
    const sinEl = Math.sin(elevation * RAD);
    // Haurwitz clear-sky irradiance dimmed by cloud (Kasten-Czeplak).
    const clearSky = sinEl > 0.01 ? 1098 * sinEl * Math.exp(-0.057 / sinEl) : 0;
    const solarRadiation = clearSky * (1 - 0.75 * cloudCover ** 3.4);

    return { temperature, dewPoint, relativeHumidity, pressure, windSpeed, windDirection, cloudCover, rainRate, solarRadiation };
  }
}

const WEATHER_BY_SEED = new Map<number, CityWeather>();

export function cityWeather(seed: number): CityWeather {
  let w = WEATHER_BY_SEED.get(seed);
  if (w === undefined) {
    w = new CityWeather(seed);
    WEATHER_BY_SEED.set(seed, w);
  }
  return w;
}
