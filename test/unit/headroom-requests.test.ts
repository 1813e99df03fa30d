import { describe, expect, it } from 'vitest';
import { assessHeadroom, type RateLimitGroup, type TokenUsageMinute } from '../../src/anomaly/core/headroom.ts';
import { type HeadroomInput, planHeadroom } from '../../src/anomaly/core/headroom-plan.ts';

const MINUTE = 60_000;
const FROM = new Date('2026-06-08T10:00:00Z');
const window = { from: FROM, until: new Date(FROM.getTime() + 9 * MINUTE) };

/** `perMinute[i]` requests in minute i of the window, on `model`. */
const requests = (perMinute: number[], model = 'claude-sonnet-4-5'): TokenUsageMinute[] =>
  perMinute.map((n, i) => ({
    minute: new Date(FROM.getTime() + i * MINUTE),
    model,
    uncachedInputTokens: 0,
    cacheReadInputTokens: 0,
    cacheCreationInputTokens: 0,
    outputTokens: 0,
    requests: n,
  }));
const ten = (n: number) => Array.from({ length: 10 }, () => n);
const rpm = (value: number): RateLimitGroup[] => [
  {
    id: 'rlg_01S',
    name: 'Claude Sonnet',
    models: ['claude-sonnet-4-5'],
    limits: [{ type: 'requests_per_minute', value }],
  },
];

describe('requests_per_minute headroom (assessHeadroom)', () => {
  it.each<[string, TokenUsageMinute[] | null | undefined, number, { used: number; atRisk: boolean } | null]>([
    ['45 requests a minute against 50: 90%, at risk', requests(ten(45)), 50, { used: 45, atRisk: true }],
    ['30 a minute against 50: 60%, not at risk', requests(ten(30)), 50, { used: 30, atRisk: false }],
    ['exactly 80%: at risk', requests(ten(40)), 50, { used: 40, atRisk: true }],
    // the mean over the window, empty minutes included: a single busy minute is not a trend
    ['one minute of 200, nine quiet: mean 20', requests([200]), 50, { used: 20, atRisk: false }],
    ['another group’s model does not count', requests(ten(45), 'claude-haiku-4-5'), 50, { used: 0, atRisk: false }],
    ['no request counts read: no reading', null, 50, null],
    ['request counts not passed at all: no reading', undefined, 50, null],
  ])('%s', (_name, counts, limit, expected) => {
    const readings = assessHeadroom([], rpm(limit), window, 0.8, { requests: counts });
    if (expected === null) expect(readings).toEqual([]);
    else expect(readings.map((r) => ({ used: r.used, atRisk: r.atRisk }))).toEqual([expected]);
  });

  it('tokens never count as requests, nor requests as tokens', () => {
    const groups: RateLimitGroup[] = [
      {
        id: 'rlg_01S',
        models: ['claude-sonnet-4-5'],
        limits: [
          { type: 'requests_per_minute', value: 50 },
          { type: 'output_tokens_per_minute', value: 1000 },
        ],
      },
    ];
    const tokens = requests(ten(0)).map((u) => ({ ...u, outputTokens: 900 }));
    const readings = assessHeadroom(tokens, groups, window, 0.8, { requests: requests(ten(10)) });
    expect(readings.map((r) => [r.limitType, r.used])).toEqual([
      ['requests_per_minute', 10],
      ['output_tokens_per_minute', 900],
    ]);
  });
});

describe('requests_per_minute headroom (planHeadroom)', () => {
  const base = (over: Partial<HeadroomInput>): HeadroomInput => ({
    window,
    usage: new Map(),
    limits: new Map([['wrkspc_1', rpm(50)]]),
    fast: null,
    lastDay: null,
    names: new Map([['wrkspc_1', { name: 'Research' }]]),
    ...over,
  });

  it.each<[string, HeadroomInput['requests'], string[], string[]]>([
    [
      'read, at 90%: an alert',
      new Map([['wrkspc_1', requests(ten(45))]]),
      ['workspace:wrkspc_1'],
      ['Workspace "Research" uses 90% of its requests per minute limit'],
    ],
    ['read, no requests from the workspace: judged, no alert', new Map(), ['workspace:wrkspc_1'], []],
    // no access to the analytics API: no request headroom (said once by the caller), token limits still judged
    ['refused: judged on what can be read, no alert', 'refused', ['workspace:wrkspc_1'], []],
    // a failed read: not judged, so a firing requests alert neither resolves now nor fires again next run
    ['failed this run: not judged', 'failed', [], []],
  ])('%s', (_name, counts, evaluated, titles) => {
    const plan = planHeadroom(base({ requests: counts }));
    expect(plan.evaluated).toEqual(evaluated);
    expect(plan.observations.map((o) => o.title)).toEqual(titles);
  });

  it('a failed read leaves workspaces without a requests limit judged', () => {
    const otpm: RateLimitGroup[] = [
      { id: 'rlg_01S', models: ['claude-sonnet-4-5'], limits: [{ type: 'output_tokens_per_minute', value: 1000 }] },
    ];
    const plan = planHeadroom(
      base({
        limits: new Map([
          ['wrkspc_1', rpm(50)],
          ['wrkspc_2', otpm],
        ]),
        requests: 'failed',
      }),
    );
    expect(plan.evaluated).toEqual(['workspace:wrkspc_2']);
  });

  it('says the mean and the peak minute in requests', () => {
    const counts = requests([...ten(44).slice(1), 53]);
    const [alert] = planHeadroom(base({ requests: new Map([['wrkspc_1', counts]]) })).observations;
    expect(alert!.fields).toContainEqual({ label: 'Used', value: '90% (mean 45/min over 10 min)' });
    expect(alert!.fields).toContainEqual({ label: 'Peak minute', value: '53 at 10:09 UTC' });
    expect(alert!.details).toMatchObject({ limitType: 'requests_per_minute', limit: 50 });
  });
});
