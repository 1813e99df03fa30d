import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { policySchema, type RotationPolicy } from '../../src/config/policy.ts';
import { planRotation } from '../../src/rotation/core/plan.ts';
import type { KeyState, KeyTraffic, RotationDecision, RotationInputs } from '../../src/rotation/core/types.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const NOW = new Date('2026-06-15T09:00:00Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);

const policyArb: fc.Arbitrary<RotationPolicy> = fc
  .record({
    max_age_days: fc.integer({ min: 1, max: 120 }),
    remind_before_days: fc.array(fc.integer({ min: 1, max: 30 }), { maxLength: 4 }),
    grace_days: fc.integer({ min: 0, max: 14 }),
    enforce: fc.boolean(),
    drain_window_hours: fc.integer({ min: 1, max: 96 }),
    force_after_days: fc.option(fc.integer({ min: 0, max: 30 }), { nil: null }),
    max_deactivations_per_run: fc.integer({ min: 0, max: 6 }),
    overrides: fc.constant([
      { workspace: 'Research', max_age_days: 30 },
      { key: 'ci-*', max_age_days: 14 },
    ]),
    exemptions: fc.constant([{ key: 'vendor-*', until: '2026-07-01', reason: 'vendor rotates in July' }]),
  })
  .map((rotation) => policySchema.parse({ rotation }).rotation);

const keyArb = (i: number): fc.Arbitrary<KeyState> =>
  fc
    .record({
      name: fc.constantFrom('prod', 'ci-deploy', 'vendor-sync', 'batch'),
      status: fc.constantFrom('active', 'active', 'active', 'active', 'active', 'inactive', 'archived', 'expired'),
      workspace: fc.constantFrom<[string | null, string | null]>(
        ['wrkspc_01Prod', 'Production'],
        ['wrkspc_01Res', 'Research'],
        [null, null],
      ),
      ageMinutes: fc.integer({ min: 0, max: 300 * 24 * 60 }),
      expiresInMinutes: fc.oneof(
        { arbitrary: fc.constant(null), weight: 4 },
        { arbitrary: fc.integer({ min: -30 * 24 * 60, max: 200 * 24 * 60 }), weight: 1 },
      ),
    })
    .map(
      (k): KeyState => ({
        id: `apikey_01P${i}`,
        name: `${k.name}-${i}`,
        status: k.status,
        workspaceId: k.workspace[0],
        scope: 'workspace',
        workspaceName: k.workspace[1],
        createdAt: at(-k.ageMinutes * 60_000),
        expiresAt: k.expiresInMinutes === null ? null : at(k.expiresInMinutes * 60_000),
        createdByUserId: null,
        ownerEmail: null,
        partialKeyHint: null,
      }),
    );

const trafficArb: fc.Arbitrary<KeyTraffic> = fc.record({
  lastUsageAt: fc.option(
    fc.integer({ min: 0, max: 200 * 60 }).map((m) => at(-m * 60_000)),
    { nil: null },
  ),
  windowTokens: fc.constantFrom(0n, 0n, 1n, 250_000n),
  windowUsd: fc.constantFrom(0n, 0n, 1n, 4_100_000_000_000n),
});

const sentArb = fc.dictionary(
  fc.constantFrom('30', '14', '7', '1', 'overdue'),
  fc.integer({ min: 0, max: 40 * 24 }).map((h) => at(-h * HOUR)),
);

const scenarioArb = fc
  .integer({ min: 1, max: 12 })
  .chain((n) =>
    fc.record({
      policy: policyArb,
      keys: fc.tuple(...Array.from({ length: n }, (_, i) => keyArb(i))),
      traffic: fc.array(fc.option(trafficArb, { nil: undefined, freq: 2 }), { minLength: n, maxLength: n }),
      sent: fc.array(sentArb, { minLength: n, maxLength: n }),
      dataLagMinutes: fc.oneof(
        { arbitrary: fc.integer({ min: 0, max: 30 }), weight: 3 },
        { arbitrary: fc.integer({ min: 31, max: 180 }), weight: 1 },
        { arbitrary: fc.constant(null), weight: 1 },
      ),
    }),
  )
  .map(({ policy, keys, traffic, sent, dataLagMinutes }) => {
    const inputs: RotationInputs = {
      keys,
      traffic: new Map(keys.flatMap((k, i) => (traffic[i] ? [[k.id, traffic[i]] as const] : []))),
      usage: { dataUntil: dataLagMinutes === null ? null : at(-dataLagMinutes * 60_000) },
      sent: new Map(keys.map((k, i) => [k.id, new Map(Object.entries(sent[i] ?? {}))])),
    };
    return { policy, inputs, dataLagMinutes };
  });

/** The test's own reading of "had usage in the drain window", independent of the code under test. */
function usedInWindow(t: KeyTraffic | undefined, policy: RotationPolicy): boolean {
  if (!t) return false;
  const since = NOW.getTime() - policy.drain_window_hours * HOUR;
  return t.windowTokens > 0n || t.windowUsd > 0n || (t.lastUsageAt !== null && t.lastUsageAt.getTime() >= since);
}

const retiring = (d: RotationDecision) =>
  d.kind === 'deactivate' || d.kind === 'would_deactivate' || d.kind === 'deferred';

describe('rotation safety properties', () => {
  it('a key with usage in the drain window is never deactivated unless forced', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, inputs }) => {
        for (const d of planRotation(inputs, policy, NOW)) {
          if (!retiring(d) || !usedInWindow(inputs.traffic.get(d.key.id), policy)) continue;
          expect(d).toMatchObject({ reason: 'forced' });
          if (d.kind === 'deactivate') expect(d.forceFrom!.getTime()).toBeLessThanOrEqual(NOW.getTime());
        }
      }),
    );
  });

  it('"drained" is only concluded from usage data at most 30 minutes old', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, inputs, dataLagMinutes }) => {
        const drained = planRotation(inputs, policy, NOW).filter((d) => retiring(d) && d.reason === 'drained');
        if (drained.length > 0) expect(dataLagMinutes).not.toBeNull();
        if (drained.length > 0) expect(dataLagMinutes!).toBeLessThanOrEqual(30);
      }),
    );
  });

  it('a run deactivates at most max_deactivations_per_run keys, and none with enforce: false', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, inputs }) => {
        const n = planRotation(inputs, policy, NOW).filter((d) => d.kind === 'deactivate').length;
        expect(n).toBeLessThanOrEqual(policy.enforce ? policy.max_deactivations_per_run : 0);
      }),
    );
  });

  it('no key is deactivated before its owner had the overdue notice and grace_days since', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, inputs }) => {
        for (const d of planRotation(inputs, policy, NOW)) {
          if (!retiring(d)) continue;
          const notice = inputs.sent.get(d.key.id)?.get('overdue');
          expect(notice).toBeDefined();
          const from = Math.max(notice!.getTime(), d.deadline.getTime()) + policy.grace_days * DAY;
          expect(from).toBeLessThanOrEqual(NOW.getTime());
        }
      }),
    );
  });

  it('only active, unexpired keys are reminded or enforced', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, inputs }) => {
        for (const d of planRotation(inputs, policy, NOW)) {
          const usable = d.key.status === 'active' && (d.key.expiresAt === null || d.key.expiresAt > NOW);
          expect(d.kind === 'not_active').toBe(!usable);
        }
      }),
    );
  });

  it('a stage already sent is never decided again, and a re-run right after sends nothing', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, inputs }) => {
        const first = planRotation(inputs, policy, NOW);
        const sent = new Map([...inputs.sent].map(([id, stages]) => [id, new Map(stages)]));
        for (const d of first) {
          if (d.kind !== 'remind' && d.kind !== 'overdue') continue;
          expect(inputs.sent.get(d.key.id)?.has(d.recordStage)).toBe(false);
          sent.get(d.key.id)!.set(d.recordStage, NOW);
        }
        const again = planRotation({ ...inputs, sent }, policy, NOW);
        expect(again.filter((d) => d.kind === 'remind' || d.kind === 'overdue')).toEqual([]);
      }),
    );
  });
});

describe('reminders over the life of a key (one run a day, some missed)', () => {
  const lifeArb = fc.record({
    createdAt: fc.integer({ min: 0, max: 2 * DAY }).map((ms) => new Date(Date.UTC(2026, 0, 1) + ms)),
    runHour: fc.integer({ min: 0, max: 23 }),
    missed: fc.array(fc.boolean(), { minLength: 110, maxLength: 110 }),
  });
  const policy = policySchema.parse({ rotation: { max_age_days: 90, remind_before_days: [14, 7, 1] } }).rotation;

  function live(createdAt: Date, runHour: number, missed: boolean[]) {
    const key: KeyState = {
      id: 'apikey_01Life',
      name: 'prod',
      status: 'active',
      workspaceId: null,
      scope: 'workspace',
      workspaceName: null,
      createdAt,
      expiresAt: null,
      createdByUserId: 'user_01Alice',
      ownerEmail: 'alice@acme.com',
      partialKeyHint: null,
    };
    const stages = new Map<string, Date>();
    const firstDay = Date.UTC(2026, 0, 1) + runHour * HOUR;
    for (let day = 0; day < missed.length; day++) {
      if (missed[day]) continue;
      const now = new Date(firstDay + day * DAY);
      const inputs = { keys: [key], traffic: new Map(), usage: { dataUntil: now }, sent: new Map([[key.id, stages]]) };
      for (const d of planRotation(inputs, policy, now)) {
        if (d.kind === 'remind' || d.kind === 'overdue') stages.set(d.recordStage, now);
      }
    }
    return stages;
  }

  it('with no run missed, each stage goes out once, on its calendar day, then overdue on the first run after the deadline', () => {
    fc.assert(
      fc.property(lifeArb, ({ createdAt, runHour }) => {
        const stages = live(createdAt, runHour, Array(110).fill(false));
        const deadline = createdAt.getTime() + 90 * DAY;
        const deadlineDay = Math.floor(deadline / DAY) * DAY;
        expect([...stages.keys()]).toEqual(['14', '7', '1', 'overdue']);
        for (const s of [14, 7, 1])
          expect(stages.get(String(s))!.getTime()).toBe(deadlineDay - s * DAY + runHour * HOUR);
        const overdueAt = stages.get('overdue')!.getTime();
        expect(overdueAt).toBeGreaterThanOrEqual(deadline);
        expect(overdueAt - deadline).toBeLessThan(DAY);
      }),
    );
  });

  it('with missed runs, stages still go out in order and the overdue notice is never skipped', () => {
    fc.assert(
      fc.property(lifeArb, ({ createdAt, runHour, missed }) => {
        // The last ten runs happen, so the deadline is always reached by a run.
        const stages = live(createdAt, runHour, [...missed.slice(0, 100), ...Array(10).fill(false)]);
        const order = [...stages.keys()];
        expect(order.at(-1)).toBe('overdue');
        const days = order.slice(0, -1).map(Number);
        expect(days).toEqual([...days].sort((a, b) => b - a));
        const times = [...stages.values()].map((d) => d.getTime());
        expect(new Set(times).size).toBe(times.length);
      }),
    );
  });
});
