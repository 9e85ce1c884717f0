import { CityError } from '@city/protocol';
import { describe, expect, it } from 'vitest';
import { parseCliArgs, spreadDevices } from './cli-options.ts';
import { SIM_KINDS } from './device.ts';

function flagError(argv: string[]): CityError {
  try {
    parseCliArgs(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(CityError);
    expect((err as CityError).code).toBe('SIM_BAD_FLAG');
    return err as CityError;
  }
  return expect.fail(`${argv.join(' ')} was accepted`);
}

describe('command line', () => {
  it('spreads --devices over every kind in the default proportions', () => {
    for (const total of [0, 3, 7, 10, 100, 555, 1000]) {
      const spread = spreadDevices(total);
      expect(Object.values(spread).reduce((a, b) => a + b, 0)).toBe(total);
      if (total >= SIM_KINDS.length) for (const k of SIM_KINDS) expect(spread[k]).toBeGreaterThanOrEqual(1);
    }
    expect(spreadDevices(1000).phone).toBeGreaterThan(spreadDevices(1000).weather);
  });

  it('turns flags into fleet options', () => {
    const parsed = parseCliArgs([
      '--url', 'mqtt://gw.local:1883', '--seed', '9', '--devices', '70', '--phone', '5', '--rate', '2.5',
      '--events-per-device', '100', '--invalid-count', '12', '--defects', 'notJson,naiveTime',
      '--start-time', '2025-06-01T08:00:00+02:00', '--prefix', 'soak1', '--concurrency', '20', '--json',
    ]);
    if (parsed.help) return expect.fail('help');
    const o = parsed.options;
    expect(o.url).toBe('mqtt://gw.local:1883');
    expect(o.seed).toBe(9);
    expect(o.devices?.phone).toBe(5);
    expect(o.devices?.vehicle).toBe(spreadDevices(70).vehicle);
    expect(o.ratePerDevice).toBe(2.5);
    expect(o.eventsPerDevice).toBe(100);
    expect(o.invalid).toEqual({ count: 12, defects: ['notJson', 'naiveTime'] });
    expect(o.startTime).toBe(Date.UTC(2025, 5, 1, 6, 0));
    expect(o.deviceIdPrefix).toBe('soak1');
    expect(o.connectConcurrency).toBe(20);
    expect(parsed.json).toBe(true);
    expect(parsed.statsIntervalMs).toBe(5000);
    const printed: string[] = [];
    expect(parseCliArgs(['--help'], (text) => printed.push(text))).toEqual({ help: true });
    expect(printed.join('')).toMatch(/^Usage: npm run sim -- \[flags\]/);
  });

  it('explains bad flags', () => {
    expect(flagError(['--devcies', '5']).message).toMatch(/devcies/);
    expect(flagError(['--rate', 'fast']).message).toMatch(/--rate must be a number/);
    expect(flagError(['--devices', '2.5']).message).toMatch(/whole number/);
    expect(flagError(['--invalid-rate', '1.5']).message).toMatch(/between 0 and 0.9/);
    expect(flagError(['--invalid-rate', '0.1', '--invalid-count', '3']).message).toMatch(/not both/);
    expect(flagError(['--defects', 'typo']).message).toMatch(/unknown defect "typo"/);
    expect(flagError(['--start-time', '2025-06-01 08:00:00']).message).toMatch(/no UTC offset/);
    expect(flagError(['--url', 'localhost:1883']).message).toMatch(/url/);
    expect(flagError(['--prefix', 'bad/prefix']).message).toMatch(/deviceIdPrefix/);
    expect(flagError(['--seed']).message).toMatch(/argument missing|seed/);
  });
});
