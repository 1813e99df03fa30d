import { describe, expect, it } from 'vitest';
import {
  compoundPoissonLaw,
  cusum,
  emulatorLaw,
  episodes,
  logDensity,
  logLikelihoodRatios,
  type MinuteLaw,
  thresholdFor,
} from '../../bench/oracle.ts';

/**
 * The detection benches' oracle (bench/oracle.ts): every ratio they print divides by its latency, so its laws and
 * its CUSUM are pinned here on hand-made series whose figures can be worked out on paper.
 */

/** The mean of a law: Σ weight × e^(mu + sigma²/2). */
const meanOf = (law: MinuteLaw) => law.parts.reduce((sum, p) => sum + p.weight * Math.exp(p.mu + p.sigma ** 2 / 2), 0);
const massOf = (law: MinuteLaw) => law.zero + law.parts.reduce((sum, p) => sum + p.weight, 0);

describe('the oracle’s laws', () => {
  it('a lognormal density is the textbook one, and no spend has the law’s mass at zero', () => {
    const law: MinuteLaw = { zero: 0.25, parts: [{ weight: 0.75, mu: 0, sigma: 0.5 }] };
    // at x = e: z = 2, density 0.75 × φ(2) / (0.5 e)
    const expected = Math.log((0.75 * Math.exp(-2)) / Math.sqrt(2 * Math.PI) / (0.5 * Math.E));
    expect(logDensity(law, Math.E)).toBeCloseTo(expected, 12);
    expect(logDensity(law, 0)).toBeCloseTo(Math.log(0.25), 12);
    expect(logDensity(emulatorLaw(1, 1, 0.2), 0)).toBe(Number.NEGATIVE_INFINITY);
  });

  it('the emulator’s minute: mean kept, active share at zero, and a runaway spends in every minute', () => {
    const pre = emulatorLaw(2, 0.2, 0.3);
    expect(pre.zero).toBeCloseTo(0.8, 12);
    expect(meanOf(pre)).toBeCloseTo(2, 9);
    const runaway = emulatorLaw(2, 0.2, 0.3, 8);
    expect(runaway.zero).toBe(0);
    expect(massOf(runaway)).toBeCloseTo(1, 12);
    expect(meanOf(runaway)).toBeCloseTo(10, 9);
  });

  it('a compound Poisson minute: no requests with e^-Λ, total mass 1, mean kept, few or many requests', () => {
    for (const usdPerMinute of [0.01, 0.2, 3]) {
      const flows = [
        { usdPerMinute, median: 0.05, sigma: 1 },
        { usdPerMinute: usdPerMinute * 4, median: 0.05, sigma: 0.3 },
      ];
      const law = compoundPoissonLaw(flows);
      const requests = usdPerMinute / (0.05 * Math.exp(0.5)) + (4 * usdPerMinute) / (0.05 * Math.exp(0.045));
      expect(law.zero).toBeCloseTo(Math.exp(-requests), 12);
      expect(massOf(law)).toBeCloseTo(1, 8);
      expect(meanOf(law) / (5 * usdPerMinute)).toBeCloseTo(1, 6);
    }
    // One request a minute at most, nearly always: a single request's cost law.
    const single = compoundPoissonLaw([{ usdPerMinute: 1e-4, median: 0.5, sigma: 0.8 }]);
    expect(single.parts[0]).toMatchObject({ mu: Math.log(0.5), sigma: 0.8 });
    expect(compoundPoissonLaw([])).toEqual({ zero: 1, parts: [] });
  });
});

describe('the oracle’s CUSUM', () => {
  it('adds the evidence, floors it at 0, alarms at the threshold and starts again; excursions give their peaks', () => {
    const llr = [1, 2, -5, 3, -1, -10, 0.5];
    const feed = (m: number, out: Float64Array) => {
      out[0] = llr[m]!;
    };
    // W: 1, 3, 0, 3, 2, 0, 0.5
    expect(cusum(0, llr.length, 1, feed, Number.POSITIVE_INFINITY)).toEqual({ alarms: [], peaks: [3, 3, 0.5] });
    expect(cusum(0, llr.length, 1, feed, 3).alarms).toEqual([1, 3]);
    expect(cusum(0, llr.length, 1, feed, 2.5).alarms).toEqual([1, 3]);
    expect(cusum(0, llr.length, 1, feed, 0.5).alarms).toEqual([0, 1, 3, 6]);
  });

  it('a bank alarms on whichever alternative gets there first', () => {
    const rows = [
      [1, -1],
      [1, -1],
      [-3, 4],
      [1, 4],
    ];
    const feed = (m: number, out: Float64Array) => out.set(rows[m]!);
    // W1: 1, 2, 0, 1; W2: 0, 0, 4, 8
    expect(cusum(0, 4, 2, feed, 5)).toEqual({ alarms: [3], peaks: [8] });
  });

  it('on an every-minute key, a step to its bar shows in the first minute at the step’s size', () => {
    // $1 a minute, noise 0.2: ln(spend) ~ N(-0.02, 0.04); a ×5 step moves the median by ln 5.
    const sigma = 0.2;
    const pre = emulatorLaw(1, 1, sigma);
    const bar = emulatorLaw(1, 1, sigma, 4);
    const median = Math.exp(-(sigma ** 2) / 2);
    const series = [...Array(30).fill(median), ...Array(10).fill(5 * median)];
    const feed = (m: number, out: Float64Array) => logLikelihoodRatios([bar], pre, series[m]!, out);
    // each minute at the old median: -(ln 5)² / 2σ² = -32.4; at the new one: +32.4
    const evidence = new Float64Array(1);
    feed(0, evidence);
    expect(evidence[0]).toBeCloseTo(-(Math.log(5) ** 2) / (2 * sigma ** 2), 9);
    // After an alarm it starts again from 0: a change that lasts alarms again (the benches keep the first).
    expect(cusum(0, series.length, 1, feed, 15).alarms).toEqual([30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
    expect(cusum(0, series.length, 1, feed, 50).alarms).toEqual([31, 33, 35, 37, 39]);
  });

  it('on a bursty key, a quiet minute clears the runaway’s evidence; a loop’s unbroken run of spend does not', () => {
    // Active in 1 minute of 10 at $1 (mean $0.1/min), against a runaway adding $0.4 a minute in every minute.
    const pre = emulatorLaw(0.1, 0.1, 0.2);
    const alt = emulatorLaw(0.1, 0.1, 0.2, 0.4);
    const feed = (series: number[]) => (m: number, out: Float64Array) =>
      logLikelihoodRatios([alt], pre, series[m]!, out);
    const bursts = [1, 0, 0, 1, 0, 1, 0, 0, 0, 1];
    expect(cusum(0, bursts.length, 1, feed(bursts), 10).alarms).toEqual([]);
    const loop = Array(10).fill(0.4 * Math.exp(-0.02));
    // every minute: ln(0.9 / 0.1) ≈ 2.2 from the spend being there at all, plus the size's evidence
    const { alarms } = cusum(0, loop.length, 1, feed(loop), 10);
    expect(alarms.length).toBeGreaterThan(0);
    expect(alarms[0]).toBeLessThanOrEqual(2);
  });

  it('the threshold lets through at most the allowed number of excursions', () => {
    expect(thresholdFor([5, 3, 9, 1], 1)).toBeGreaterThan(5);
    expect(thresholdFor([5, 3, 9, 1], 1)).toBeLessThan(5.001);
    expect(thresholdFor([5, 3, 9, 1], 0)).toBeGreaterThan(9);
    expect(thresholdFor([5, 3, 9, 1], 10)).toBe(1);
  });
});

describe('the oracle’s episodes', () => {
  it('alarms within the gap of the one before belong to its episode', () => {
    expect(episodes([3, 4, 30, 34, 70, 101], 30)).toEqual([3, 70, 101]);
    expect(episodes([3, 40, 80], 30)).toEqual([3, 40, 80]);
    expect(episodes([], 30)).toEqual([]);
  });
});
