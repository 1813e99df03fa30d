import { describe, expect, it } from 'vitest';
import { planPollChunks } from '../../src/usage/window.ts';

const at = (s: string) => new Date(`2026-11-16T${s}Z`);
const opts = { overlapMinutes: 15, freshnessMinutes: 1, firstStart: at('08:00:00') };
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
});
