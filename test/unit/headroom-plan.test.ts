import { describe, expect, it } from 'vitest';
import type { RateLimitGroup, TokenUsageMinute } from '../../src/anomaly/core/headroom.ts';
import {
  type HeadroomInput,
  headroomReadsNeeded,
  headroomScopes,
  planHeadroom,
} from '../../src/anomaly/core/headroom-plan.ts';

const MINUTE = 60_000;
const FROM = new Date('2026-06-08T10:00:00Z');
const window = { from: FROM, until: new Date(FROM.getTime() + 9 * MINUTE) };

/** Ten minutes of `output` output tokens a minute on Sonnet. */
const usage = (output: number): TokenUsageMinute[] =>
  Array.from({ length: 10 }, (_, i) => ({
    minute: new Date(FROM.getTime() + i * MINUTE),
    model: 'claude-sonnet-4-5',
    uncachedInputTokens: 0,
    cacheReadInputTokens: 0,
    cacheCreationInputTokens: 0,
    outputTokens: output,
  }));
const sonnet = (limits: Array<{ type: string; value: number }>): RateLimitGroup[] => [
  { id: 'rlg_01S', name: 'Claude Sonnet', models: ['claude-sonnet-4-5'], limits },
];
const otpm = sonnet([{ type: 'output_tokens_per_minute', value: 100_000 }]);

function input(over: Partial<HeadroomInput>): HeadroomInput {
  return {
    window,
    usage: new Map(),
    limits: new Map(),
    fast: null,
    lastDay: null,
    names: new Map([['wrkspc_1', { name: 'Research' }]]),
    ...over,
  };
}

describe('planHeadroom', () => {
  it.each<[string, Partial<HeadroomInput>, string[], string[]]>([
    [
      'a workspace at 85% of its output limit over the window: an alert',
      { usage: new Map([['wrkspc_1', usage(85_000)]]), limits: new Map([['wrkspc_1', otpm]]) },
      ['workspace:wrkspc_1'],
      ['Workspace "Research" uses 85% of its output tokens per minute limit'],
    ],
    [
      'at 50%: judged (its alert, if any, resolves), no alert',
      { usage: new Map([['wrkspc_1', usage(50_000)]]), limits: new Map([['wrkspc_1', otpm]]) },
      ['workspace:wrkspc_1'],
      [],
    ],
    [
      'a workspace whose alert fires but whose usage stopped: judged on no usage, so its alert resolves',
      { limits: new Map([['wrkspc_1', otpm]]) },
      ['workspace:wrkspc_1'],
      [],
    ],
    [
      'a workspace whose limits could not be read: not judged, its alerts stay as they were',
      { usage: new Map([['wrkspc_1', usage(85_000)]]) },
      [],
      [],
    ],
    [
      'a workspace the inventory does not know is named by its id',
      { usage: new Map([['wrkspc_9', usage(99_000)]]), limits: new Map([['wrkspc_9', otpm]]) },
      ['workspace:wrkspc_9'],
      ['Workspace "wrkspc_9" uses 99% of its output tokens per minute limit'],
    ],
    [
      'fast-mode limits are skipped when fast-mode usage could not be read',
      {
        usage: new Map([['wrkspc_1', usage(85_000)]]),
        limits: new Map([['wrkspc_1', sonnet([{ type: 'fast_otpm', value: 10_000 }])]]),
      },
      ['workspace:wrkspc_1'],
      [],
    ],
    [
      'and count fast-mode usage only when it was',
      {
        usage: new Map([['wrkspc_1', usage(85_000)]]),
        limits: new Map([['wrkspc_1', sonnet([{ type: 'fast_otpm', value: 10_000 }])]]),
        fast: new Map([['wrkspc_1', usage(9_000)]]),
      },
      ['workspace:wrkspc_1'],
      ['Workspace "Research" uses 90% of its fast-mode output tokens per minute limit'],
    ],
  ])('%s', (_name, over, evaluated, titles) => {
    const plan = planHeadroom(input(over));
    expect(plan.evaluated).toEqual(evaluated);
    expect(plan.observations.map((o) => o.title)).toEqual(titles);
  });

  it('a limit at or above 100% is critical, one alert per limit and group (its period)', () => {
    const plan = planHeadroom(
      input({ usage: new Map([['wrkspc_1', usage(100_000)]]), limits: new Map([['wrkspc_1', otpm]]) }),
    );
    expect(plan.observations.map((o) => [o.severity, o.period])).toEqual([
      ['critical', 'output_tokens_per_minute:rlg_01S'],
    ]);
  });
});

describe('what a headroom check reads', () => {
  it('every workspace with usage and every one whose alert fires, once each', () => {
    expect(headroomScopes(['wrkspc_1', 'default'], ['wrkspc_2', 'wrkspc_1'])).toEqual([
      'wrkspc_1',
      'default',
      'wrkspc_2',
    ]);
  });

  it.each<[string, RateLimitGroup[][], { fast: boolean; lastDay: boolean; requests: boolean }]>([
    ['per-minute limits only: nothing more', [otpm], { fast: false, lastDay: false, requests: false }],
    [
      'a fast-mode limit: fast-mode usage from the API',
      [otpm, sonnet([{ type: 'fast_itpmca', value: 1 }])],
      { fast: true, lastDay: false, requests: false },
    ],
    [
      'a per-day limit: the last 24 hours',
      [sonnet([{ type: 'tokens_per_day', value: 1 }])],
      { fast: false, lastDay: true, requests: false },
    ],
    [
      'a requests limit: request counts from the analytics usage API',
      [otpm, sonnet([{ type: 'requests_per_minute', value: 50 }])],
      { fast: false, lastDay: false, requests: true },
    ],
  ])('%s', (_name, limits, expected) => {
    expect(headroomReadsNeeded(limits)).toEqual(expected);
  });
});
