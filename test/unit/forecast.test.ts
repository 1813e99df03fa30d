import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type DailySpend,
  expectedCrossingDate,
  type ProjectionInput,
  projectMonthEnd,
  projectStraightLine,
} from '../../src/spend/core/forecast.ts';
import { DAY_MS } from '../../src/time.ts';

// June 2025: 30 days, the 1st is a Sunday; 21 weekdays and 9 weekend days.
const dayOf = (date: string) => Date.parse(`${date}T00:00:00Z`) / DAY_MS;
const dateOf = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10);
const isWeekend = (date: string) => [0, 6].includes(new Date(`${date}T00:00:00Z`).getUTCDay());

/** Deterministic, zero-mean, ±`amplitude` day-to-day wobble (an irrational step spreads it evenly). */
const wobble = (i: number, amplitude: number) => 1 + amplitude * Math.sin(i * 2.399963);

/** Daily spend from `from` up to the day before `until`. */
function series(from: string, until: string, usd: (date: string, i: number) => number): DailySpend[] {
  const out: DailySpend[] = [];
  for (let day = dayOf(from), i = 0; day < dayOf(until); day++, i++)
    out.push({ date: dateOf(day), usd: usd(dateOf(day), i) });
  return out;
}

/** The projection input for `today` (its month is projected), month-to-date summed from the history. */
function inputFor(history: DailySpend[], today: string, fractionElapsed = 0, usdSoFar = 0): ProjectionInput {
  const month = today.slice(0, 7);
  const monthToDateUsd = history.filter((d) => d.date.startsWith(month)).reduce((a, d) => a + d.usd, usdSoFar);
  return { history, today: { date: today, usdSoFar, fractionElapsed }, monthToDateUsd };
}

/** The month total when every day of June from `from` on spends `usd(date)`, plus what was spent before. */
function juneTotal(history: DailySpend[], usd: (date: string) => number): number {
  const known = history.filter((d) => d.date.startsWith('2025-06'));
  const spent = known.reduce((a, d) => a + d.usd, 0);
  let rest = 0;
  for (let day = dayOf('2025-06-01') + known.length; day <= dayOf('2025-06-30'); day++) rest += usd(dateOf(day));
  return spent + rest;
}

const relError = (value: number, truth: number) => Math.abs(value / truth - 1);

describe('projectMonthEnd on hand-made series', () => {
  it('flat spend: the median is the run rate and the interval holds the outcome without being vague', () => {
    const history = series('2025-03-01', '2025-06-16', (_d, i) => 100 * wobble(i, 0.1));
    const p = projectMonthEnd(inputFor(history, '2025-06-16'));
    const truth = juneTotal(history, () => 100);

    expect(p.method).toBe('weekday-level-trend');
    expect(relError(p.p50, truth)).toBeLessThan(0.02);
    expect(p.p10).toBeLessThan(truth);
    expect(p.p90).toBeGreaterThan(truth);
    expect(p.p90 / p.p10).toBeLessThan(1.3);
    expect(p.basis.weekdayFactors.every((f) => Math.abs(f - 1) < 0.05)).toBe(true);
  });

  it.each([
    // Sun + Mon–Thu elapsed: more weekdays behind than ahead, so the straight line overshoots.
    ['2025-06-06', 'over'],
    // Sun, Mon–Fri, Sat, Sun elapsed: weekend-heavy, so the straight line undershoots.
    ['2025-06-09', 'under'],
  ])('weekly pattern (weekdays 2.5× weekends), today %s: the straight line is %s, keywarden is not', (today, side) => {
    const spend = (date: string) => (isWeekend(date) ? 100 : 250);
    const history = series('2025-03-01', today, (date, i) => spend(date) * wobble(i, 0.1));
    const truth = juneTotal(history, spend);
    const keywarden = projectMonthEnd(inputFor(history, today));
    const line = projectStraightLine(inputFor(history, today));

    expect(relError(keywarden.p50, truth)).toBeLessThan(0.02);
    expect(relError(line.p50, truth)).toBeGreaterThan(0.04);
    expect(line.p50 > truth).toBe(side === 'over');
    const [sunday, monday] = keywarden.basis.weekdayFactors as [number, number];
    expect(monday / sunday).toBeGreaterThan(2.2);
    expect(monday / sunday).toBeLessThan(2.8);
  });

  it('step change: the level doubles on the 10th, the projection follows the new level', () => {
    const spend = (date: string) => (date >= '2025-06-10' ? 200 : 100);
    const history = series('2025-03-01', '2025-06-20', (date, i) => spend(date) * wobble(i, 0.1));
    const truth = juneTotal(history, spend);
    const p = projectMonthEnd(inputFor(history, '2025-06-20'));
    const line = projectStraightLine(inputFor(history, '2025-06-20'));

    expect(p.basis.levelShiftOn).toMatch(/^2025-06-(09|10|11)$/);
    expect(p.basis.dailyLevelUsd).toBeGreaterThan(185);
    expect(relError(p.p50, truth)).toBeLessThan(0.04);
    expect(p.p10).toBeLessThan(truth);
    expect(p.p90).toBeGreaterThan(truth);
    expect(relError(line.p50, truth)).toBeGreaterThan(0.08);
  });

  it('step change down: a key halves its spend on the 8th, the projection drops to the new level', () => {
    const spend = (date: string) => (date >= '2025-06-08' ? 100 : 200);
    const history = series('2025-03-01', '2025-06-20', (date, i) => spend(date) * wobble(i, 0.1));
    const truth = juneTotal(history, spend);
    const p = projectMonthEnd(inputFor(history, '2025-06-20'));
    const line = projectStraightLine(inputFor(history, '2025-06-20'));

    expect(p.basis.levelShiftOn).toMatch(/^2025-06-(07|08|09)$/);
    expect(p.basis.dailyLevelUsd).toBeLessThan(115);
    expect(relError(p.p50, truth)).toBeLessThan(0.04);
    expect(p.p10).toBeLessThan(truth);
    expect(p.p90).toBeGreaterThan(truth);
    expect(line.p50).toBeGreaterThan(truth * 1.1);
  });

  it('a key created five days ago is projected from those days, with no weekly pattern read into them', () => {
    const history = series('2025-06-15', '2025-06-20', (_d, i) => 40 * wobble(i, 0.1));
    const input = inputFor(history, '2025-06-20');
    const p = projectMonthEnd(input);
    // what it spent, and $40 a day from the 20th to the 30th
    const truth = input.monthToDateUsd + 11 * 40;

    expect(p.method).toBe('weekday-level-trend');
    expect(p.basis.historyDays).toBe(5);
    expect(p.basis.weekdayFactors).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(relError(p.p50, truth)).toBeLessThan(0.05);
    // five days say less than sixteen weeks: a wider interval than the flat key's
    expect(p.p90 / p.p10).toBeGreaterThan(1.15);
    expect(p.p10).toBeLessThan(truth);
    expect(p.p90).toBeGreaterThan(truth);
  });

  it('a new key with no history is projected from its rate today, with a wide interval', () => {
    const p = projectMonthEnd(inputFor([], '2025-06-20', 0.5, 50));

    expect(p.method).toBe('today-rate');
    // $100/day for the rest of today and the 10 days after it.
    expect(p.p50).toBeCloseTo(50 + 100 * 10.5, 6);
    expect(p.p10).toBeGreaterThanOrEqual(50);
    expect(p.p90 / p.p10).toBeGreaterThan(3);
  });

  it('a new key that has spent nothing yet projects its month-to-date', () => {
    const p = projectMonthEnd(inputFor([], '2025-06-20', 0.5, 0));

    expect(p.method).toBe('month-to-date');
    expect([p.p10, p.p50, p.p90]).toEqual([0, 0, 0]);
  });

  it('on the first day of the month, the projection rests on earlier months', () => {
    const spend = (date: string) => (isWeekend(date) ? 100 : 250);
    const history = series('2025-03-01', '2025-06-01', (date, i) => spend(date) * wobble(i, 0.1));
    // An hour and a bit into Sunday the 1st, at the weekend rate.
    const p = projectMonthEnd(inputFor(history, '2025-06-01', 0.05, 5));
    const truth = 21 * 250 + 9 * 100;

    expect(p.method).toBe('weekday-level-trend');
    expect(relError(p.p50, truth)).toBeLessThan(0.03);
    expect(p.p10).toBeLessThan(truth);
    expect(p.p90).toBeGreaterThan(truth);
  });

  it('a single spike day does not blow up the level', () => {
    const history = series('2025-03-01', '2025-06-16', (date, i) =>
      date === '2025-06-12' ? 5000 : 100 * wobble(i, 0.1),
    );
    const p = projectMonthEnd(inputFor(history, '2025-06-16'));
    const truth = juneTotal(history, () => 100);

    expect(p.basis.dailyLevelUsd).toBeGreaterThan(95);
    expect(p.basis.dailyLevelUsd).toBeLessThan(105);
    expect(relError(p.p50, truth)).toBeLessThan(0.02);
    expect(p.basis.levelShiftOn).toBeNull();
  });

  it('today’s spend so far moves the projection more as the day goes on', () => {
    const history = series('2025-03-01', '2025-06-16', () => 100);
    const morning = projectMonthEnd(inputFor(history, '2025-06-16', 0.25, 250));
    const evening = projectMonthEnd(inputFor(history, '2025-06-16', 0.9, 900));
    const quiet = projectMonthEnd(inputFor(history, '2025-06-16', 0.9, 90));

    // A $1000/day pace: in the morning mostly discounted, by evening mostly believed for today (not beyond).
    expect(evening.p50 - evening.monthToDateUsd).toBeGreaterThan(quiet.p50 - quiet.monthToDateUsd);
    expect(morning.p50).toBeLessThan(morning.monthToDateUsd + 15 * 100 + 200);
    expect(evening.p50).toBeLessThan(evening.monthToDateUsd + 14 * 100 + 100);
  });
});

describe('expectedCrossingDate', () => {
  // $100 every day, 10 days spent: $1,000 by the start of the 11th.
  const history = series('2025-03-01', '2025-06-11', () => 100);
  const projection = projectMonthEnd(inputFor(history, '2025-06-11'));

  it('finds the day the median path reaches the limit, and an earlier-or-equal day for the upper path', () => {
    const crossing = expectedCrossingDate(projection, 2000);

    expect(crossing.p50).toBe('2025-06-20');
    expect(crossing.p90).not.toBeNull();
    expect(crossing.p90! <= crossing.p50!).toBe(true);
    expect(crossing.p90! >= '2025-06-16').toBe(true);
  });

  it('is null when the limit is out of reach this month, and today when it is already reached', () => {
    expect(expectedCrossingDate(projection, 10_000)).toEqual({ p50: null, p90: null });
    expect(expectedCrossingDate(projection, 500)).toEqual({ p50: '2025-06-11', p90: '2025-06-11' });
  });
});

describe('projectStraightLine', () => {
  it('is spend so far ÷ days elapsed × days in the month', () => {
    const history = series('2025-06-01', '2025-06-11', () => 100);
    expect(projectStraightLine(inputFor(history, '2025-06-11')).p50).toBeCloseTo(3000, 6);
    expect(projectStraightLine(inputFor(history, '2025-06-11', 0.5, 50)).p50).toBeCloseTo(3000, 6);
  });
});

describe('input checks', () => {
  const history = series('2025-06-01', '2025-06-05', () => 10);

  it.each([
    ['history out of order', { ...inputFor(history, '2025-06-05'), history: [...history].reverse() }, /ascending/],
    ['history on or after today', inputFor(history, '2025-06-04'), /not before today/],
    ['a fraction of the day above 1', inputFor(history, '2025-06-05', 1.5), /fractionElapsed/],
    ['an impossible date', inputFor([], '2025-02-30'), /not a calendar date/],
  ])('rejects %s', (_name, input, message) => {
    expect(() => projectMonthEnd(input)).toThrow(message);
  });
});

describe('projection properties', () => {
  const spendArb = fc.oneof(
    fc.constant(0),
    fc.double({ min: 0, max: 50, noNaN: true }),
    fc.double({ min: 0, max: 100_000, noNaN: true }),
  );
  const caseArb = fc.record({
    todayOffset: fc.integer({ min: 0, max: 3 * 365 }),
    history: fc.array(fc.option(spendArb, { freq: 5 }), { maxLength: 130 }),
    fractionElapsed: fc.double({ min: 0, max: 1, noNaN: true }),
    usdSoFar: spendArb,
  });

  it('p10 ≤ p50 ≤ p90, p10 ≥ month-to-date, and the daily path is monotone and ends at the total', () => {
    fc.assert(
      fc.property(caseArb, ({ todayOffset, history: raw, fractionElapsed, usdSoFar }) => {
        const today = dateOf(dayOf('2024-01-01') + todayOffset);
        // Days before today, oldest first; a null is a day without a record (it counts as zero).
        const history: DailySpend[] = [];
        raw.forEach((usd, i) => {
          if (usd !== null) history.push({ date: dateOf(dayOf(today) - raw.length + i), usd });
        });
        const input = inputFor(history, today, fractionElapsed, usdSoFar);
        const p = projectMonthEnd(input);
        const slack = 1e-9 * Math.max(1, p.p90);

        expect(p.p10).toBeGreaterThanOrEqual(input.monthToDateUsd - slack);
        expect(p.p10).toBeLessThanOrEqual(p.p50 + slack);
        expect(p.p50).toBeLessThanOrEqual(p.p90 + slack);
        expect(Number.isFinite(p.p90)).toBe(true);
        const [y, m] = today.split('-').map(Number) as [number, number];
        const daysLeft = new Date(Date.UTC(y, m, 0)).getUTCDate() - Number(today.slice(8)) + 1;
        expect(p.path).toHaveLength(daysLeft);
        p.path.forEach((d, i) => {
          const prev = p.path[i - 1];
          if (prev) {
            expect(d.p10).toBeGreaterThanOrEqual(prev.p10);
            expect(d.p50).toBeGreaterThanOrEqual(prev.p50);
            expect(d.p90).toBeGreaterThanOrEqual(prev.p90);
          }
        });
        expect(p.path.at(-1)).toEqual({ date: p.path.at(-1)!.date, p10: p.p10, p50: p.p50, p90: p.p90 });
        const crossing = expectedCrossingDate(p, (p.p50 + input.monthToDateUsd) / 2 + 1);
        if (crossing.p50 !== null) expect(crossing.p90! <= crossing.p50).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
