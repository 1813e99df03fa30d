import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import type { Context } from '../context.ts';
import { KEY_STATUS_LOCK } from '../db/advisory-lock.ts';
import type { RotationStateRow, SentStage } from '../db/repos/keys.ts';
import { scrubSecrets } from '../log.ts';
import { HOUR_MS } from '../time.ts';
import type { PriceTable } from '../usage/core/prices.ts';
import { floorToMinute } from '../usage/core/window.ts';
import { ROTATION_KINDS, rotationObservations } from './core/alerts.ts';
import { rotationStateOf } from './core/describe.ts';
import { planRotation } from './core/plan.ts';
import type { RotationDecision } from './core/types.ts';
import { loadRotationInputs } from './load.ts';
import { type KeyUsageBucket, readKeyUsageFromApi } from './recent-usage.ts';
import { setKeyStatus, settleInterruptedStatusChanges } from './set-status.ts';

type Ctx = Pick<Context, 'repos' | 'admin' | 'log' | 'clock' | 'config'>;

interface EnforcementSummary {
  keys: number;
  reminders: number;
  deactivated: string[];
  failed: string[];
  blocked: number;
  alerts: RaiseAlertsResult | null;
  /** Set when the run did nothing because another one held the lock. */
  skipped?: string;
}

/**
 * One enforce-rotation run, one at a time (the key-status lock, shared with the kill switch and `keys
 * reactivate`): settle what a crash interrupted, load, plan (pure), apply.
 */
export async function enforceRotation(ctx: Ctx): Promise<EnforcementSummary> {
  const locked = await ctx.repos.keys.withStatusLock(async () => {
    await settleInterruptedStatusChanges(ctx);
    const now = ctx.clock.now();
    const policy = ctx.config.policy.rotation;
    const inputs = await loadRotationInputs(ctx.repos, policy.drain_window_hours, now);
    return applyRotation(ctx, planRotation(inputs, policy, now), now);
  });
  if (locked) return locked.value;
  const skipped = `another enforce-rotation run is changing key statuses (advisory lock ${KEY_STATUS_LOCK}); nothing done`;
  ctx.log.warn({ lock: KEY_STATUS_LOCK }, skipped);
  return { keys: 0, reminders: 0, deactivated: [], failed: [], blocked: 0, alerts: null, skipped };
}

/**
 * Carries out a plan: deactivates what it says (a key judged drained only once the Admin API confirms it is quiet;
 * audited), raises the rotation alerts, then records the reminder stages and every key's stage. Stages are recorded
 * after the alerts commit: a crash in between re-decides the same reminder, whose alert is already firing and
 * notified, so nothing is sent twice.
 */
async function applyRotation(ctx: Ctx, planned: readonly RotationDecision[], now: Date): Promise<EnforcementSummary> {
  const policy = ctx.config.policy.rotation;
  const decisions = [...planned];
  const deactivated = new Set<string>();
  const failed: string[] = [];
  for (const [i, d] of decisions.entries()) {
    if (d.kind !== 'deactivate') continue;
    if (d.reason === 'drained') {
      const confirmed = await confirmDrained(ctx, d, ctx.config.prices, now);
      if (confirmed !== d) {
        decisions[i] = confirmed;
        continue;
      }
    }
    const outcome = await setKeyStatus(ctx, {
      keyId: d.key.id,
      to: 'inactive',
      action: 'api_key.deactivate',
      actor: 'keywarden:rotation',
      reason:
        d.reason === 'forced'
          ? 'past deadline, grace and force_after_days'
          : 'past deadline and grace, traffic drained',
    });
    if (outcome === 'done') deactivated.add(d.key.id);
    else failed.push(d.key.id);
  }

  const alerts = await raiseAlerts(
    ctx,
    { kinds: ROTATION_KINDS, observations: rotationObservations(decisions, deactivated, policy.enforce) },
    ctx.config.policy.routes,
    now,
  );

  const sent: SentStage[] = decisions.flatMap((d) =>
    d.kind === 'remind' || d.kind === 'overdue' ? [{ keyId: d.key.id, stage: d.recordStage, sentAt: now }] : [],
  );
  const states: RotationStateRow[] = decisions.map((d) => ({ keyId: d.key.id, ...rotationStateOf(d) }));
  await ctx.repos.keys.saveRotationRun(sent, states, now);
  return {
    keys: decisions.length,
    reminders: sent.length,
    deactivated: [...deactivated],
    failed,
    blocked: decisions.filter((d) => d.kind === 'blocked').length,
    alerts,
  };
}

type Deactivation = Extract<RotationDecision, { kind: 'deactivate' | 'ask_approval' }>;

/**
 * The last look before retiring a key judged drained (by the enforcer, or on a person's Approve): its usage over the
 * drain window read straight from the Admin API, up to the API's "now". Traffic there (stored usage can lack it:
 * data that came late, a re-read that has not happened yet) makes it `blocked`; a read that fails makes it `hold`.
 * Only a quiet answer lets it through: `d` itself comes back.
 */
export async function confirmDrained(
  ctx: Ctx,
  d: Deactivation,
  table: PriceTable,
  now: Date,
): Promise<RotationDecision> {
  const apiNow = ctx.admin.serverNow();
  const end = floorToMinute(apiNow !== null && apiNow < now ? apiNow : now);
  const start = new Date(Math.floor((end.getTime() - d.recentTraffic.windowHours * HOUR_MS) / HOUR_MS) * HOUR_MS);
  let buckets: KeyUsageBucket[];
  try {
    buckets = await readKeyUsageFromApi(ctx.admin, d.key.id, { start, end }, '1h', table);
  } catch (err) {
    ctx.log.warn(
      { keyId: d.key.id, err },
      'could not read the key from the Admin API before deactivating it; not deactivated',
    );
    const message = scrubSecrets((err as Error).message);
    return {
      ...d,
      kind: 'hold',
      reason: `the Admin API could not confirm the key is quiet right before deactivating it (${message})`,
      dataUntil: null,
    };
  }
  const used = buckets.filter((b) => b.tokens > 0n);
  if (used.length === 0) return d;
  ctx.log.warn(
    { keyId: d.key.id, tokens: String(used.reduce((n, b) => n + b.tokens, 0n)) },
    'stored usage said drained, the Admin API shows traffic: not deactivated',
  );
  return {
    ...d,
    kind: 'blocked',
    recentTraffic: {
      windowHours: d.recentTraffic.windowHours,
      tokens: used.reduce((n, b) => n + b.tokens, 0n),
      costUsd: used.reduce((n, b) => n + b.cost, 0n),
      lastUsageAt: used.at(-1)!.startingAt,
    },
  };
}
