import { describe, expect, it } from 'vitest';
import { rateTrend, type SpendBreakdownRow } from '../../src/anomaly/core/contributors.ts';
import { type RunawayFinding, runawayObservations } from '../../src/anomaly/core/observations.ts';
import { policySchema } from '../../src/config/policy.ts';
import { usdToPico } from '../../src/money.ts';
import type { Notification } from '../../src/notify/message.ts';
import { renderEmail, renderSlack } from '../../src/notify/render.ts';

/** The runaway alert's attribution (issue 21 item 4): is the rate still rising, and who is behind it. */

const MINUTE = 60_000;
const START = Date.parse('2026-06-08T14:00:00Z');
const at = (m: number) => new Date(START + m * MINUTE);
const policy = policySchema.parse({}).anomaly;

/** One row per minute from minute 0, split over two token kinds so the sums are of several rows. */
function rows(usdPerMinute: number[]): SpendBreakdownRow[] {
  return usdPerMinute.flatMap((usd, m) => [
    { minute: at(m), model: 'claude-opus-4-5', tokenKind: 'output', cost: usdToPico((usd * 0.75).toFixed(6)) },
    { minute: at(m), model: 'claude-opus-4-5', tokenKind: 'uncached_input', cost: usdToPico((usd * 0.25).toFixed(6)) },
  ]);
}

describe('rateTrend: the run’s last complete minutes against as many before them', () => {
  it.each([
    // [spend per minute from the run's first minute, dataUntil (minute index), direction, minutes, recent $/h, earlier $/h]
    ['a loop that keeps growing', [1, 1, 1, 1, 1, 2, 2, 2, 2, 2], 9, 'rising', 5, 120, 60],
    ['a loop at a steady rate', [2, 2, 2, 2, 2, 2, 2, 2, 2, 2], 9, 'steady', 5, 120, 120],
    ['within 25% is steady', [2, 2, 2, 2, 2, 2.4, 2.4, 2.4, 2.4, 2.4], 9, 'steady', 5, 144, 120],
    ['a quarter more is rising', [2, 2, 2, 2, 2, 2.5, 2.5, 2.5, 2.5, 2.5], 9, 'rising', 5, 150, 120],
    ['a run calming down', [4, 4, 4, 4, 4, 1, 1, 1, 1, 1], 9, 'falling', 5, 60, 240],
    ['a short run compares what it has (2 and 2)', [1, 1, 3, 3], 3, 'rising', 2, 180, 60],
    ['spend after quiet minutes is rising', [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], 9, 'rising', 5, 60, 0],
    ['no spend at all is steady', [0, 0, 0, 0], 3, 'steady', 2, 0, 0],
  ] as const)('%s', (_label, spend, until, direction, minutes, recent, earlier) => {
    const t = rateTrend(rows([...spend]), at(0), at(until));
    expect(t).not.toBeNull();
    expect(t!.direction).toBe(direction);
    expect(t!.minutes).toBe(minutes);
    expect(t!.recentHourlyUsd).toBeCloseTo(recent, 6);
    expect(t!.earlierHourlyUsd).toBeCloseTo(earlier, 6);
  });

  it('partial minutes after dataUntil are left out: still arriving, they would read as a fall', () => {
    const spend = [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0.1, 0.1];
    expect(rateTrend(rows(spend), at(0), at(9))!.direction).toBe('steady');
  });

  it('minutes before the run are not compared: the jump itself is not a rise within the run', () => {
    const before = rows([0.1, 0.1, 0.1, 0.1, 0.1]).map((r) => ({
      ...r,
      minute: new Date(r.minute.getTime() - 5 * MINUTE),
    }));
    const t = rateTrend([...before, ...rows([3, 3, 3, 3])], at(0), at(3));
    expect(t).toMatchObject({ direction: 'steady', minutes: 2 });
  });

  it('a run of fewer than four complete minutes is too short to say', () => {
    expect(rateTrend(rows([5, 5, 5]), at(0), at(2))).toBeNull();
    expect(rateTrend(rows([5]), at(0), at(0))).toBeNull();
  });
});

describe('the runaway alert names the trend and, where known, the actor', () => {
  const finding = (extra: Partial<RunawayFinding> = {}): RunawayFinding => ({
    scope: {
      type: 'key',
      id: 'apikey_01',
      name: 'ci-bot',
      hint: 'sk-ant-api03-abc...xyz',
      workspaceId: 'wrkspc_01',
      workspaceName: 'Research',
    },
    assessment: {
      state: { firing: true, since: at(0), lastAbnormal: at(9), evaluatedUntil: at(9) },
      decision: 'fire',
      evidence: 'steady',
      currentHourlyUsd: 120,
      typicalHourlyUsd: 4,
      thresholdHourlyUsd: 20,
      startedAt: at(0),
      projected24hUsd: 2880,
      killSwitch: false,
    },
    baselineSource: 'hour_of_week',
    contributors: null,
    killSwitch: null,
    lastAbnormal: at(9),
    dataUntil: at(9),
    ...extra,
  });
  const observe = (f: RunawayFinding) => runawayObservations([f], policy)[0]!;
  const rising = { direction: 'rising', minutes: 5, recentHourlyUsd: 120, earlierHourlyUsd: 60 } as const;

  it('says whether the rate is still rising, in the summary and as a field, with the first minute as before', () => {
    const o = observe(finding({ trend: rising }));
    expect(o.summary).toContain('Still rising: $120.00/h over the last 5 minutes, against $60.00/h in the 5 before.');
    expect(o.summary).toContain('since 2026-06-08 14:00 UTC');
    expect(o.fields).toContainEqual({ label: 'Trend', value: 'rising: $120.00/h (last 5 min), from $60.00/h' });
    expect(o.fields).toContainEqual({ label: 'Since', value: '2026-06-08 14:00 UTC' });
    expect(o.details).toMatchObject({ trend: 'rising', actor: null });
    const easing = observe(finding({ trend: { ...rising, direction: 'falling', recentHourlyUsd: 30 } }));
    expect(easing.summary).toContain('Easing: $30.00/h over the last 5 minutes, against $60.00/h in the 5 before.');
  });

  it('without a trend (too early) or an actor (no analytics), says neither', () => {
    const o = observe(finding());
    expect(o.summary).not.toMatch(/Still rising|Holding|Easing|Behind it/);
    expect(o.fields!.map((f) => f.label)).not.toContain('Trend');
    expect(o.fields!.map((f) => f.label)).not.toContain('Actor');
  });

  it('names the actor behind the spend when the data has one, with its share when known', () => {
    const o = observe(finding({ actor: { name: 'ana@acme.example', share: 0.92 } }));
    expect(o.summary).toContain('Behind it: ana@acme.example (92% of the spend).');
    expect(o.fields).toContainEqual({ label: 'Actor', value: 'ana@acme.example (92% of the spend)' });
    expect(observe(finding({ actor: { name: 'svc-batch', share: null } })).fields).toContainEqual({
      label: 'Actor',
      value: 'svc-batch',
    });
  });

  it('an actor’s name is organization-controlled: escaped in Slack and email like a key’s', () => {
    const hostile = '<!channel> <https://evil.example|verify> <script>x</script>';
    const o = observe(finding({ actor: { name: hostile, share: 0.5 } }));
    const n: Notification = {
      kind: o.kind,
      event: 'firing',
      severity: o.severity,
      title: o.title,
      summary: o.summary!,
      fields: o.fields!,
      links: [],
    };
    const slack = JSON.stringify(renderSlack(n).blocks);
    expect(slack).not.toContain('<!channel>');
    expect(slack).not.toContain('<https://evil.example');
    const email = renderEmail(n);
    expect(email.html).not.toContain('<script>');
    expect(email.html).toContain('&lt;script&gt;');
  });
});
