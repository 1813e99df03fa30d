import { describe, expect, it } from 'vitest';
import { SimulatedOrg } from '../../src/emulator/org.ts';
import { type CostCell, usageReportBuckets, workspaceDayCost } from '../../src/emulator/reports.ts';
import { loadScenario, parseScenario, ScenarioError } from '../../src/emulator/scenario.ts';
import { baseFlow, keyMinuteUsage, type UsageCell } from '../../src/emulator/traffic.ts';
import { PRICE_TABLE } from '../../src/usage/core/prices.ts';
import { priceUsage } from '../../src/usage/core/pricing.ts';

// A Monday, 00:00 UTC.
const START = new Date('2026-03-02T00:00:00Z');
const START_MINUTE = START.getTime() / 60_000;

function org(extra: Record<string, unknown> = {}, traffic: Record<string, unknown> = {}): SimulatedOrg {
  const scenario = parseScenario({
    name: 'unit',
    seed: 11,
    workspaces: [{ name: 'Main' }],
    users: [{ name: 'Ana', email: 'ana@example.com' }],
    keys: [
      {
        name: 'steady',
        workspace: 'Main',
        created_by: 'ana@example.com',
        age_days: 100,
        traffic: {
          tokens_per_minute: 10_000,
          models: { 'claude-sonnet-4-5': 0.75, 'claude-haiku-4-5': 0.25 },
          ...traffic,
        },
      },
      {
        name: 'successor',
        workspace: 'Main',
        age_days: 10,
        traffic: { tokens_per_minute: 0 },
      },
    ],
    ...extra,
  });
  return new SimulatedOrg(scenario, START);
}

/** Input-side tokens of a key in a minute (what the flow is made of), all slots together. */
function inputTokens(o: SimulatedOrg, keyName: string, minute: number): number {
  const key = o.keys.find((k) => k.name === keyName)!;
  return keyMinuteUsage(o.keys, key.index, minute).reduce(
    (s, c) =>
      s +
      c.uncached_input_tokens +
      c.cache_read_input_tokens +
      c.cache_creation_5m_input_tokens +
      c.cache_creation_1h_input_tokens,
    0,
  );
}

function mean(values: number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

describe('determinism', () => {
  it('the same scenario and seed give the same usage, in any order of asking', () => {
    const a = org();
    const b = org();
    const minutes = [START_MINUTE + 5000, START_MINUTE - 86_000, START_MINUTE + 7];
    const forward = minutes.map((m) => keyMinuteUsage(a.keys, 0, m));
    const backward = [...minutes].reverse().map((m) => keyMinuteUsage(b.keys, 0, m));
    expect(forward).toEqual(backward.reverse());
    expect(forward[0]!.length).toBeGreaterThan(0);
  });

  it('a different seed gives different numbers for the same key', () => {
    const withSeed = (seed: number) =>
      org({
        seed,
        keys: [
          { name: 'steady', id: 'apikey_01Same', traffic: { tokens_per_minute: 10_000, models: 'claude-sonnet-4-5' } },
        ],
      });
    expect(withSeed(11).keys[0]!.id).toBe(withSeed(12).keys[0]!.id);
    expect(keyMinuteUsage(withSeed(11).keys, 0, START_MINUTE)).not.toEqual(
      keyMinuteUsage(withSeed(12).keys, 0, START_MINUTE),
    );
  });

  it('ids, key hints and the organization id are stable and look like the API’s', () => {
    const a = org();
    expect(a.keys[0]!.id).toBe(org().keys[0]!.id);
    expect(a.keys[0]!.id).toMatch(/^apikey_01[A-Za-z0-9]{22}$/);
    expect(a.workspaces[0]!.id).toMatch(/^wrkspc_01[A-Za-z0-9]{22}$/);
    expect(a.users[0]!.id).toMatch(/^user_01[A-Za-z0-9]{22}$/);
    expect(a.keys[0]!.partialKeyHint).toMatch(/^sk-ant-api03-[A-Za-z0-9]{3}\.\.\.[A-Za-z0-9]{4}$/);
    expect(a.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('the shape of traffic', () => {
  const days = 28;

  it('averages tokens_per_minute on weekdays, with the noise averaging out', () => {
    const o = org();
    const weekdayMinutes = range(START_MINUTE, days * 1440).filter((m) => {
      const dow = (Math.floor(m / 1440) + 4) % 7;
      return dow !== 0 && dow !== 6 && m % 7 === 0;
    });
    const flow = mean(weekdayMinutes.map((m) => baseFlow(o.keys[0]!.traffic, m)));
    expect(flow / 10_000).toBeGreaterThan(0.97);
    expect(flow / 10_000).toBeLessThan(1.03);
  });

  it('peaks at peak_hour_utc and dips twelve hours later, by the daily amplitude', () => {
    const o = org({}, { daily_amplitude: 0.5, peak_hour_utc: 16, weekend_factor: 1 });
    const atHour = (h: number) =>
      mean(
        range(0, days).flatMap((d) =>
          range(START_MINUTE + d * 1440 + h * 60, 30).map((m) => baseFlow(o.keys[0]!.traffic, m)),
        ),
      );
    const ratio = atHour(16) / atHour(4);
    expect(ratio).toBeGreaterThan(2.7); // (1 + 0.5) / (1 − 0.5) = 3, less the half hour averaged
    expect(ratio).toBeLessThan(3.3);
  });

  it('drops on weekends by the weekend factor', () => {
    const o = org({}, { weekend_factor: 0.25 });
    const byDay = range(0, days).map((d) =>
      mean(range(START_MINUTE + d * 1440, 1440).map((m) => baseFlow(o.keys[0]!.traffic, m))),
    );
    const weekend = mean(byDay.filter((_, d) => d % 7 === 5 || d % 7 === 6)); // START is a Monday
    const weekday = mean(byDay.filter((_, d) => d % 7 < 5));
    expect(weekend / weekday).toBeGreaterThan(0.23);
    expect(weekend / weekday).toBeLessThan(0.27);
  });

  it('a bursty key is active in active_share of minutes and keeps its mean', () => {
    const o = org({}, { active_share: 0.1, daily_amplitude: 0, weekend_factor: 1 });
    const flows = range(START_MINUTE, 20_000).map((m) => baseFlow(o.keys[0]!.traffic, m));
    const active = flows.filter((f) => f > 0).length / flows.length;
    expect(active).toBeGreaterThan(0.09);
    expect(active).toBeLessThan(0.11);
    expect(mean(flows) / 10_000).toBeGreaterThan(0.93);
    expect(mean(flows) / 10_000).toBeLessThan(1.07);
  });

  it('splits traffic by the model mix and into token kinds by the ratios', () => {
    const o = org({}, { cache_read_ratio: 0.4, cache_write_5m_ratio: 0.1, output_ratio: 0.5 });
    const cells = range(START_MINUTE, 600).flatMap((m) => keyMinuteUsage(o.keys, 0, m));
    const total = (pick: (c: UsageCell) => number, model?: string) =>
      cells.filter((c) => !model || c.model === model).reduce((s, c) => s + pick(c), 0);
    const input = (c: UsageCell) =>
      c.uncached_input_tokens + c.cache_read_input_tokens + c.cache_creation_5m_input_tokens;
    expect(total(input, 'claude-haiku-4-5') / total(input)).toBeCloseTo(0.25, 2);
    expect(total((c) => c.cache_read_input_tokens) / total(input)).toBeCloseTo(0.4, 2);
    expect(total((c) => c.uncached_input_tokens) / total(input)).toBeCloseTo(0.5, 2);
    expect(total((c) => c.output_tokens) / total(input)).toBeCloseTo(0.5, 2);
    expect(new Set(cells.map((c) => c.service_tier))).toEqual(new Set(['standard']));
  });

  it('puts batch_share of traffic in the batch tier and long_context_share in the long window', () => {
    const o = org({}, { batch_share: 0.3, long_context_share: 0.2 });
    const cells = range(START_MINUTE, 300).flatMap((m) => keyMinuteUsage(o.keys, 0, m));
    const share = (pick: (c: UsageCell) => boolean) =>
      cells.filter(pick).reduce((s, c) => s + c.uncached_input_tokens, 0) /
      cells.reduce((s, c) => s + c.uncached_input_tokens, 0);
    expect(share((c) => c.service_tier === 'batch')).toBeCloseTo(0.3, 2);
    expect(share((c) => c.context_window === '200k-1M')).toBeCloseTo(0.2, 2);
  });
});

describe('events', () => {
  it('a runaway multiplies the key’s traffic by its factor for its duration, and only then', () => {
    const plain = org();
    const runaway = org({
      events: [{ type: 'runaway', key: 'steady', at_minutes: 60, factor: 20, duration_minutes: 30 }],
    });
    for (const offset of [59, 60, 75, 89, 90]) {
      const m = START_MINUTE + offset;
      const ratio = inputTokens(runaway, 'steady', m) / inputTokens(plain, 'steady', m);
      expect(ratio).toBeCloseTo(offset >= 60 && offset < 90 ? 20 : 1, 2);
    }
  });

  it('a runaway on a bursty key is a loop: spend in every minute, at the factor times the key’s mean rate', () => {
    const bursty = { active_share: 0.1, noise: 0, daily_amplitude: 0 };
    const plain = org({}, bursty);
    const runaway = org(
      { events: [{ type: 'runaway', key: 'steady', at_minutes: 0, factor: 10, duration_minutes: 600 }] },
      bursty,
    );
    const minutes = range(START_MINUTE, 600);
    const before = minutes.map((m) => inputTokens(plain, 'steady', m));
    const during = minutes.map((m) => inputTokens(runaway, 'steady', m));
    expect(before.filter((t) => t > 0).length).toBeLessThan(120); // about one minute in ten
    expect(during.every((t) => t > 0)).toBe(true);
    expect(mean(during) / mean(before)).toBeGreaterThan(8);
    expect(mean(during) / mean(before)).toBeLessThan(12);
    // A quiet minute carries the loop alone: 9 × the key's mean flow of 10,000 tokens a minute.
    const quiet = minutes.findIndex((_, i) => before[i] === 0);
    expect(Math.abs(during[quiet]! - 90_000)).toBeLessThanOrEqual(8); // rounding per slot and kind
  });

  it('a migration moves traffic from the old key to the new one over the ramp, keeping the total', () => {
    const plain = org();
    const moving = org({
      events: [{ type: 'migration', from: 'steady', to: 'successor', at_minutes: 0, ramp_minutes: 100 }],
    });
    const share = (offset: number) => {
      const m = START_MINUTE + offset;
      return inputTokens(moving, 'successor', m) / inputTokens(plain, 'steady', m);
    };
    expect(inputTokens(moving, 'successor', START_MINUTE - 1)).toBe(0);
    expect(share(49)).toBeCloseTo(0.5, 2);
    expect(share(99)).toBeCloseTo(1, 2);
    expect(inputTokens(moving, 'steady', START_MINUTE + 150)).toBe(0);
    for (const offset of [10, 50, 90]) {
      const m = START_MINUTE + offset;
      const total = inputTokens(moving, 'steady', m) + inputTokens(moving, 'successor', m);
      expect(Math.abs(total - inputTokens(plain, 'steady', m))).toBeLessThanOrEqual(8); // rounding per slot and kind
    }
  });

  it('a runaway on a successor multiplies the traffic it inherited', () => {
    const migration = { type: 'migration', from: 'steady', to: 'successor', at_minutes: -200, ramp_minutes: 100 };
    const calm = org({ events: [migration] });
    const wild = org({
      events: [migration, { type: 'runaway', key: 'successor', at_minutes: 0, factor: 10, duration_minutes: 5 }],
    });
    expect(
      inputTokens(wild, 'successor', START_MINUTE + 2) / inputTokens(calm, 'successor', START_MINUTE + 2),
    ).toBeCloseTo(10, 2);
    expect(inputTokens(wild, 'successor', START_MINUTE + 5)).toBe(inputTokens(calm, 'successor', START_MINUTE + 5));
  });

  it('a key created at an offset has no traffic before it exists', () => {
    const o = org({ events: [{ type: 'key_created', key: 'steady', at_minutes: 30 }] });
    const key = o.keys.find((k) => k.name === 'steady')!;
    expect(key.life.createdAt).toBe(START.getTime() + 30 * 60_000);
    expect(inputTokens(o, 'steady', START_MINUTE + 29)).toBe(0);
    expect(inputTokens(o, 'steady', START_MINUTE + 30)).toBeGreaterThan(0);
  });

  it('a removed user disappears, and the keys they made keep working', () => {
    const o = org({ events: [{ type: 'user_removed', user: 'ana@example.com', at_minutes: -60 }] });
    const ana = o.users[0]!;
    expect(o.userExists(ana, START.getTime() - 61 * 60_000)).toBe(true);
    expect(o.userExists(ana, START.getTime())).toBe(false);
    expect(o.keys.find((k) => k.name === 'steady')!.createdBy).toBe(ana);
    expect(inputTokens(o, 'steady', START_MINUTE + 1)).toBeGreaterThan(0);
  });

  it('a key set inactive stops from the first minute that starts after the change, and resumes when reactivated', () => {
    const o = org();
    const key = o.keys.find((k) => k.name === 'steady')!;
    o.setKeyStatus(key, 'inactive', START.getTime() + 10 * 60_000 + 30_000);
    o.setKeyStatus(key, 'active', START.getTime() + 20 * 60_000);
    expect(inputTokens(o, 'steady', START_MINUTE + 10)).toBeGreaterThan(0); // the change came mid-minute
    expect(inputTokens(o, 'steady', START_MINUTE + 11)).toBe(0);
    expect(inputTokens(o, 'steady', START_MINUTE + 19)).toBe(0);
    expect(inputTokens(o, 'steady', START_MINUTE + 20)).toBeGreaterThan(0);
  });

  it('an expired key, an inactive one and one in an archived workspace produce nothing', () => {
    const o = org({
      workspaces: [{ name: 'Main' }, { name: 'Gone', archived_days_ago: 1 }],
      keys: [
        {
          name: 'steady',
          workspace: 'Main',
          expires_in_days: -0.5,
          traffic: { tokens_per_minute: 1000, models: 'claude-haiku-4-5' },
        },
        { name: 'paused', status: 'inactive', traffic: { tokens_per_minute: 1000, models: 'claude-haiku-4-5' } },
        {
          name: 'archived',
          workspace: 'Gone',
          age_days: 5,
          traffic: { tokens_per_minute: 1000, models: 'claude-haiku-4-5' },
        },
      ],
    });
    const at = START_MINUTE;
    expect(o.keys.map((k) => o.keyStatus(k, START.getTime()))).toEqual(['expired', 'inactive', 'archived']);
    expect(o.keys.map((k) => inputTokens(o, k.name, at))).toEqual([0, 0, 0]);
    expect(inputTokens(o, 'steady', START_MINUTE - 13 * 60)).toBeGreaterThan(0); // before it expired
  });
});

describe('reports over the traffic', () => {
  it('an hour bucket is exactly the sum of its minute buckets', () => {
    const o = org({}, { batch_share: 0.2, web_search_per_minute: 3 });
    const groupBy = new Set(['api_key_id', 'model', 'service_tier'] as const);
    const query = (width: number, starts: number[]) => ({
      bucketStarts: starts,
      widthMinutes: width,
      groupBy,
      filters: {},
    });
    const visible = START_MINUTE + 10_000;
    const hour = usageReportBuckets(o, query(60, [START_MINUTE]), visible) as Array<{
      results: Array<Record<string, unknown>>;
    }>;
    const minutes = usageReportBuckets(o, query(1, range(START_MINUTE, 60)), visible) as Array<{
      results: Array<Record<string, unknown>>;
    }>;
    const sum = new Map<string, number>();
    for (const b of minutes) {
      for (const r of b.results) {
        const id = `${r.model}|${r.service_tier}`;
        sum.set(
          id,
          (sum.get(id) ?? 0) +
            (r.output_tokens as number) +
            (r.server_tool_use as { web_search_requests: number }).web_search_requests,
        );
      }
    }
    expect(hour[0]!.results).toHaveLength(4);
    for (const r of hour[0]!.results) {
      const id = `${r.model}|${r.service_tier}`;
      expect(
        (r.output_tokens as number) + (r.server_tool_use as { web_search_requests: number }).web_search_requests,
      ).toBe(sum.get(id));
    }
  });

  it('shows nothing for minutes not visible yet', () => {
    const o = org();
    const buckets = usageReportBuckets(
      o,
      { bucketStarts: [START_MINUTE, START_MINUTE + 1], widthMinutes: 1, groupBy: new Set(), filters: {} },
      START_MINUTE + 1,
    ) as Array<{ results: unknown[] }>;
    expect(buckets.map((b) => b.results.length)).toEqual([1, 0]);
  });

  it('a workspace’s day of cost is its usage priced minute by minute, to the picodollar', () => {
    const o = org(
      {},
      { batch_share: 0.3, long_context_share: 0.1, cache_write_1h_ratio: 0.05, web_search_per_minute: 1 },
    );
    const day = START_MINUTE / 1440;
    const cells = workspaceDayCost(o, o.workspaces[0]!, day, START_MINUTE + 2 * 1440, new Map<string, CostCell[]>());
    let priced = 0n;
    for (const m of range(START_MINUTE, 1440)) {
      for (const key of o.keys) {
        for (const c of keyMinuteUsage(o.keys, key.index, m)) priced += priceUsage(c, PRICE_TABLE, START).cost;
      }
    }
    expect(cells.reduce((s, c) => s + c.total, 0n)).toBe(priced);
    expect(priced).toBeGreaterThan(0n);
  });
});

describe('scenarios', () => {
  it('the built-in scenarios load', () => {
    const demo = loadScenario('demo');
    expect(demo.admin_keys[0]).toMatch(/^sk-ant-admin01-keywarden-demo-/);
    expect(loadScenario('quiet').events).toEqual([]);
    const large = new SimulatedOrg(loadScenario('large'), START);
    expect(large.keys).toHaveLength(5000);
    expect(large.workspaces).toHaveLength(100);
  });

  it('the demo has what the demo needs: a runaway a minute in, stale keys, an orphan and a migration', () => {
    const o = new SimulatedOrg(loadScenario('demo'), START);
    const now = START.getTime();
    const runaway = o.keys.find((k) => k.traffic.runaways.length > 0)!;
    expect(runaway.traffic.runaways[0]!.fromMinute - START_MINUTE).toBe(1);
    expect(
      o.keys.filter((k) => now - k.life.createdAt > 90 * 86_400_000 && o.keyStatus(k, now) === 'active').length,
    ).toBeGreaterThan(0);
    expect(
      o.keys.some((k) => k.createdBy !== null && !o.userExists(k.createdBy, now) && o.keyStatus(k, now) === 'active'),
    ).toBe(true);
    expect(o.keys.some((k) => k.traffic.incoming.length > 0)).toBe(true);
  });

  it.each([
    [{ keys: [{ name: 'a', workspace: 'Reserch' }] }, /keys\[0\]\.workspace: "Reserch" is not a workspace/],
    [
      { keys: [{ name: 'a', traffic: { tokens_per_minte: 5 } }] },
      /keys\[0\]\.traffic: Unrecognized key: "tokens_per_minte"/,
    ],
    [{ keys: [{ name: 'a', traffic: { tokens_per_minute: 5 } }] }, /keys\[0\]\.traffic\.models: required/],
    [
      { events: [{ type: 'runaway', key: 'nope', at_minutes: 1, factor: 2, duration_minutes: 5 }] },
      /events\[0\]\.key: "nope" is not a key/,
    ],
    [{ events: [{ type: 'explode', key: 'a' }] }, /events\[0\]\.type/],
    [{ admin_keys: ['sk-ant-api03-oops'] }, /admin_keys\[0\]: an admin key starts with sk-ant-admin/],
  ])('a bad scenario is refused with the field named (%#)', (input, message) => {
    expect(() => parseScenario({ name: 'bad', ...input }, 'bad.yaml')).toThrow(ScenarioError);
    expect(() => parseScenario({ name: 'bad', ...input }, 'bad.yaml')).toThrow(message);
  });

  it('a federated workload names a workspace of the scenario and a subject once', () => {
    const federated = [
      { subject: 'ci', workspace: 'Nowhere' },
      { subject: 'ci', traffic: { tokens_per_minute: 10 } },
    ];
    expect(() => parseScenario({ name: 'bad', federated }, 'bad.yaml')).toThrow(
      /federated\[0\]\.workspace: "Nowhere" is not a workspace of this scenario[\s\S]*federated\[1\]: "ci" appears twice/,
    );
  });

  it('an unknown scenario name says which ones exist', () => {
    expect(() => loadScenario('/nonexistent/scenario.yaml')).toThrow(/built in: demo, quiet, large/);
  });
});
