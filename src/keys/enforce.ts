import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import type { Context } from '../context.ts';
import { KEY_STATUS_LOCK, withAdvisoryLock } from '../db/advisory-lock.ts';
import { ROTATION_KINDS, rotationObservations } from '../rotation/alerts.ts';
import { rotationStateOf } from '../rotation/describe.ts';
import { planRotation } from '../rotation/plan.ts';
import { loadRotationInputs } from './load.ts';
import { setKeyStatus, settleInterruptedStatusChanges } from './set-status.ts';

type Ctx = Pick<Context, 'db' | 'admin' | 'log' | 'clock' | 'config'>;

export interface EnforcementSummary {
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
 * One enforce-rotation run, one at a time (KEY_STATUS_LOCK, shared with the kill switch): settle what a crash interrupted, plan (pure), deactivate what the plan says (audited),
 * raise the rotation alerts, then record the reminder stages. Stages are recorded after the alerts commit: a crash
 * in between re-decides the same reminder, whose alert is already firing and notified, so nothing is sent twice.
 */
export async function enforceRotation(ctx: Ctx): Promise<EnforcementSummary> {
  const locked = await withAdvisoryLock(ctx.db, KEY_STATUS_LOCK, () => enforceRotationLocked(ctx));
  if (locked) return locked.value;
  const skipped = `another enforce-rotation run is changing key statuses (advisory lock ${KEY_STATUS_LOCK}); nothing done`;
  ctx.log.warn({ lock: KEY_STATUS_LOCK }, skipped);
  return { keys: 0, reminders: 0, deactivated: [], failed: [], blocked: 0, alerts: null, skipped };
}

async function enforceRotationLocked(ctx: Ctx): Promise<EnforcementSummary> {
  const policy = ctx.config.policy.rotation;
  const deps = { db: ctx.db, admin: ctx.admin, log: ctx.log, now: () => ctx.clock.now() };
  await settleInterruptedStatusChanges(deps, 'api_key.deactivate');
  const now = ctx.clock.now();
  const inputs = await loadRotationInputs(ctx.db, policy.drain_window_hours, now);
  const decisions = planRotation(inputs, policy, now);

  const deactivated = new Set<string>();
  const failed: string[] = [];
  for (const d of decisions) {
    if (d.kind !== 'deactivate') continue;
    const outcome = await setKeyStatus(deps, {
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
    ctx.db,
    { kinds: ROTATION_KINDS, observations: rotationObservations(decisions, deactivated, policy.enforce) },
    ctx.config.policy.routes,
    now,
  );

  const stages = decisions.flatMap((d) =>
    d.kind === 'remind' || d.kind === 'overdue' ? [{ api_key_id: d.key.id, stage: d.recordStage, sent_at: now }] : [],
  );
  await ctx.db.transaction().execute(async (tx) => {
    if (stages.length > 0) {
      await tx
        .insertInto('rotation_reminders')
        .values(stages)
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
    for (const d of decisions) {
      const { deadline, policySource, stage } = rotationStateOf(d);
      const state = { deadline, policy_source: policySource, stage };
      await tx
        .insertInto('rotation_state')
        .values({ api_key_id: d.key.id, ...state, evaluated_at: now })
        .onConflict((oc) => oc.column('api_key_id').doUpdateSet({ ...state, evaluated_at: now }))
        .execute();
    }
  });
  return {
    keys: decisions.length,
    reminders: stages.length,
    deactivated: [...deactivated],
    failed,
    blocked: decisions.filter((d) => d.kind === 'blocked').length,
    alerts,
  };
}
