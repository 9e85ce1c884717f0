// People moving through the city on foot or by bike: head for a destination in some district with a
// wandering course, stay there a while, pick the next one. Shared by GPS trackers and phones.
import { DISTRICTS, clampToCity, pointInDistrict, type District } from '../city.ts';
import { localTime } from '../clock.ts';
import { clamp, distance, headingOf, type Point } from '../geo.ts';
import type { Rng } from '../rng.ts';

export type Persona = 'walker' | 'runner' | 'cyclist' | 'courier';

interface PersonaSpec {
  /** Cruising speed range, m/s. */
  speed: readonly [number, number];
  accel: number;
  /** Stay at a destination, minutes: [min, mean]. */
  stay: readonly [number, number];
  /** Couriers hop between nearby addresses. */
  hop?: number;
}

const PERSONAS: { readonly [P in Persona]: PersonaSpec } = {
  walker: { speed: [1.1, 1.5], accel: 0.6, stay: [2, 25] },
  runner: { speed: [2.6, 3.4], accel: 0.8, stay: [20, 240] },
  cyclist: { speed: [3.8, 6.0], accel: 1.0, stay: [3, 45] },
  courier: { speed: [4.5, 6.5], accel: 1.2, stay: [1, 3], hop: 900 },
};

const MINUTE = 60_000;

export class Walker {
  readonly persona: Persona;
  readonly spec: PersonaSpec;
  readonly rng: Rng;
  pos: Point;
  /** Speed over ground, m/s. */
  v = 0;
  /** Course, degrees clockwise from north. */
  heading: number;
  target: Point;
  pausedUntil = 0;
  #cruise: number;
  #wander = 0;

  constructor(persona: Persona, rng: Rng) {
    this.persona = persona;
    this.spec = PERSONAS[persona];
    this.rng = rng;
    this.pos = this.#randomPlace();
    this.target = this.#nextTarget();
    this.heading = headingOf(this.target.x - this.pos.x, this.target.y - this.pos.y);
    this.#cruise = rng.range(this.spec.speed[0], this.spec.speed[1]);
  }

  get moving(): boolean {
    return this.v > 0;
  }

  /** Whether the person is at a destination at time t. */
  pausedAt(t: number): boolean {
    return t < this.pausedUntil;
  }

  begin(t: number): void {
    if (this.rng.chance(0.5)) this.#pause(t, this.rng.next());
  }

  advance(t0: number, t1: number): void {
    const total = (t1 - t0) / 1000;
    if (total <= 0) return;
    const steps = Math.ceil(total);
    const h = total / steps;
    for (let k = 1; k <= steps; k++) {
      const t = t0 + k * h * 1000;
      if (t <= this.pausedUntil) this.v = 0;
      else this.#step(h, t);
    }
  }

  #step(h: number, t: number): void {
    const rng = this.rng;
    const d = distance(this.pos, this.target);
    if (d < 15) {
      this.#pause(t, 1);
      this.v = 0;
      return;
    }
    // Course wanders around the bearing to the target (streets are not straight lines).
    this.#wander = clamp(0.95 * this.#wander + rng.normal(0, 4), -40, 40);
    const bearing = headingOf(this.target.x - this.pos.x, this.target.y - this.pos.y);
    this.heading = (bearing + this.#wander * Math.min(1, d / 100) + 360) % 360;
    const want = Math.min(this.#cruise * (1 + rng.normal(0, 0.03)), d);
    const dv = clamp(want - this.v, -2 * this.spec.accel * h, this.spec.accel * h);
    const v1 = Math.max(0, this.v + dv);
    const ds = ((this.v + v1) / 2) * h;
    const rad = (this.heading * Math.PI) / 180;
    this.pos = clampToCity({ x: this.pos.x + ds * Math.sin(rad), y: this.pos.y + ds * Math.cos(rad) });
    this.v = v1;
  }

  /** Stays at the destination (`share` of a full stay), then sets off for the next one. */
  #pause(t: number, share: number): void {
    const [min, mean] = this.spec.stay;
    let stay = (min + this.rng.exponential(mean - min)) * MINUTE;
    // Nobody goes out much between midnight and six.
    const hour = localTime(t).hour;
    if (hour < 6 && this.persona !== 'courier') stay += (6 - hour) * 60 * MINUTE;
    this.pausedUntil = t + stay * share;
    this.target = this.#nextTarget();
    this.#cruise = this.rng.range(this.spec.speed[0], this.spec.speed[1]);
  }

  #randomPlace(): Point {
    const district = this.rng.weighted(DISTRICTS.map((d): [District, number] => [d, d.weight]));
    return pointInDistrict(district, this.rng.next(), this.rng.next());
  }

  #nextTarget(): Point {
    const hop = this.spec.hop;
    if (hop !== undefined) {
      const a = this.rng.range(0, 2 * Math.PI);
      const r = this.rng.range(150, hop);
      return clampToCity({ x: this.pos.x + r * Math.sin(a), y: this.pos.y + r * Math.cos(a) });
    }
    return this.#randomPlace();
  }
}
