import { describe, expect, it } from 'vitest';
import { MAX_BUCKETS } from '../../src/anthropic/client.ts';
import { lateRereadChunk, planPollChunks } from '../../src/usage/core/window.ts';

const at = (s: string) => new Date(`2026-11-16T${s}Z`);
const opts = {
  overlapMinutes: 15,
  freshnessMinutes: 1,
  firstStart: at('08:00:00'),
  maxChunkMinutes: MAX_BUCKETS['1m'],
};
const iso = (cs: { start: Date; end: Date }[]) => cs.map((c) => [c.start.toISOString(), c.end.toISOString()]);

describe('planPollChunks', () => {
  it.each([
    ['a poll a minute after the last one re-reads the overlap', at('10:00:00'), at('10:01:30'), [['09:45', '10:00']]],
    ['the minute in progress is not read', at('10:00:00'), at('10:00:59'), [['09:45', '09:59']]],
    ['no watermark: from the first start', null, at('10:00:10'), [['08:00', '09:59']]],
  ] as const)('%s', (_name, watermark, now, expected) => {
    const chunks = planPollChunks(watermark, now, opts);
    expect(iso(chunks)).toEqual(expected.map(([s, e]) => [at(`${s}:00`).toISOString(), at(`${e}:00`).toISOString()]));
  });

  it('walks a long gap in day-sized chunks that tile it exactly', () => {
    const chunks = planPollChunks(at('10:00:00'), new Date('2026-11-19T12:30:00Z'), opts);
    expect(chunks).toHaveLength(4);
    expect(chunks[0]!.start).toEqual(at('09:45:00'));
    for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.start).toEqual(chunks[i - 1]!.end);
    for (const c of chunks) expect(c.end.getTime() - c.start.getTime()).toBeLessThanOrEqual(1440 * 60_000);
    expect(chunks.at(-1)!.end).toEqual(new Date('2026-11-19T12:29:00Z'));
  });

  it('asks for nothing when there is no finished minute to read', () => {
    expect(planPollChunks(at('10:00:00'), at('10:00:30'), { ...opts, overlapMinutes: 0 })).toEqual([]);
  });

  it.each([
    [
      'data 20 minutes late: re-read from the newest minute with data, less the overlap',
      at('09:40:00'),
      [['09:25', '10:00']],
    ],
    ['data on time: the watermark decides', at('10:00:00'), [['09:45', '10:00']]],
    ['data hours late: bounded by the late window (6 h)', at('02:00:00'), [['04:00', '10:00']]],
  ] as const)('%s', (_name, settled, expected) => {
    const chunks = planPollChunks(at('10:00:00'), at('10:01:30'), { ...opts, settled, lateWindowMinutes: 360 });
    expect(iso(chunks)).toEqual(expected.map(([s, e]) => [at(`${s}:00`).toISOString(), at(`${e}:00`).toISOString()]));
  });

  it('after downtime the whole gap is still walked, whatever the newest data', () => {
    const chunks = planPollChunks(at('10:00:00'), new Date('2026-11-17T12:30:00Z'), {
      ...opts,
      settled: at('09:50:00'),
      lateWindowMinutes: 360,
    });
    expect(chunks[0]!.start).toEqual(at('09:45:00'));
  });
});

describe('lateRereadChunk', () => {
  it('walks the late window behind the poll a slice per minute: every minute of it is read again within a sweep', () => {
    const o = { freshnessMinutes: 1, lateWindowMinutes: 360, sliceMinutes: 5 };
    const seen = new Set<number>();
    const polls = 80; // a sweep is 360 / 5 = 72 minutes, a poll a minute
    for (let m = 0; m < polls; m++) {
      const now = new Date(at('10:01:00').getTime() + m * 60_000);
      const pollFrom = new Date(at('09:45:00').getTime() + m * 60_000); // the poll's own range moves with the clock
      const c = lateRereadChunk(pollFrom, now, o);
      if (c === null) continue;
      expect(c.end.getTime()).toBeLessThanOrEqual(pollFrom.getTime());
      expect(c.end.getTime() - c.start.getTime()).toBeLessThanOrEqual(5 * 60_000);
      for (let t = c.start.getTime(); t < c.end.getTime(); t += 60_000) seen.add(t);
    }
    // every minute that stayed inside the late window the whole time was re-read
    const windowStartAtEnd = at('10:00:00').getTime() + (polls - 1 - 360) * 60_000;
    for (let t = windowStartAtEnd; t < at('09:45:00').getTime(); t += 60_000) expect(seen.has(t)).toBe(true);
  });

  it('nothing behind a poll that already reads the whole late window', () => {
    expect(
      lateRereadChunk(at('04:00:00'), at('10:01:00'), { freshnessMinutes: 1, lateWindowMinutes: 360, sliceMinutes: 5 }),
    ).toBeNull();
  });
});
