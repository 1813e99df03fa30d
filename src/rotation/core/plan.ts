import type { RotationPolicy } from '../../config/policy.ts';
import { addDays } from './days.ts';
import { hadTrafficInWindow, recentTraffic, usageStaleness } from './drain.ts';
import { resolveDeadline } from './policy.ts';
import { firstReminderAt, OVERDUE_STAGE, reminderStages, reminderStep, stageRecord } from './stages.ts';
import { findSuccessor, isUsable } from './successor.ts';
import type { KeyState, RotationDecision, RotationInputs } from './types.ts';

const NO_STAGES_SENT: ReadonlyMap<string, Date> = new Map();

/**
 * What the rotation policy asks for each key at `now`, one decision per key in the order given. Pure: the caller
 * brings the keys, their traffic, the usage watermark, the reminder stages already sent, and the clock.
 *
 * A key's life: `ok` → `remind` / `due_soon` (reminder stages) → `overdue` (notice, once) → `grace` → after
 * grace, one of `deactivate` (no traffic in the drain window, or forced), `blocked` (still in use), `hold` (usage
 * data too old to tell), `deferred` (over the per-run cap); with `enforce: false`, `would_deactivate` instead of
 * `deactivate`; with `enforce: approve`, `ask_approval` (a person approves in Slack), or `denied` until a denial's
 * ask-again time. Only active keys move through this; others are `not_active`, exempt keys `exempt`.
 *
 * Grace counts from the later of the deadline and the overdue notice. A policy edit that shortens a deadline, or
 * an exemption that lapses long after the key's normal deadline, therefore never leads straight to deactivation:
 * the owner always gets the overdue notice and grace_days before anything is enforced.
 */
export function planRotation(inputs: RotationInputs, policy: RotationPolicy, now: Date): RotationDecision[] {
  const stages = reminderStages(policy);
  const staleness = usageStaleness(inputs.usage, now);
  const usableByWorkspace = new Map<string | null, KeyState[]>();
  for (const k of inputs.keys) {
    if (!isUsable(k, now)) continue;
    const group = usableByWorkspace.get(k.workspaceId);
    if (group) group.push(k);
    else usableByWorkspace.set(k.workspaceId, [k]);
  }

  const decisions = inputs.keys.map((key): RotationDecision => {
    const resolution = resolveDeadline(key, policy, now);
    if (!isUsable(key, now)) {
      // Active but past expires_at: Anthropic's status flip lags, the key is dead either way.
      const status = key.status === 'active' ? 'expired' : key.status;
      return { kind: 'not_active', key, ...resolution, status };
    }
    if (resolution.deadline === null) {
      const { source } = resolution;
      return { kind: 'exempt', key, deadline: null, source, until: source.until, reason: source.reason };
    }
    const { deadline, source } = resolution;
    const sent = inputs.sent.get(key.id) ?? NO_STAGES_SENT;

    if (now.getTime() < deadline.getTime()) {
      const step = reminderStep(deadline, stages, sent, now);
      switch (step.kind) {
        case 'not_yet':
          return { kind: 'ok', key, deadline, source, firstReminderAt: step.firstReminderAt };
        case 'reminded':
          return {
            kind: 'due_soon',
            key,
            deadline,
            source,
            stage: step.stage,
            daysLeft: step.daysLeft,
            sentAt: step.sentAt,
          };
        case 'remind':
          return {
            kind: 'remind',
            key,
            deadline,
            source,
            stage: step.stage,
            recordStage: stageRecord(step.stage),
            daysLeft: step.daysLeft,
            missedStages: step.missedStages,
          };
      }
    }

    const overdueSentAt = sent.get(OVERDUE_STAGE);
    if (overdueSentAt === undefined) {
      return {
        kind: 'overdue',
        key,
        deadline,
        source,
        recordStage: OVERDUE_STAGE,
        enforceFrom: addDays(now, policy.grace_days),
      };
    }
    const enforceFrom = addDays(new Date(Math.max(deadline.getTime(), overdueSentAt.getTime())), policy.grace_days);
    if (now.getTime() < enforceFrom.getTime()) return { kind: 'grace', key, deadline, source, enforceFrom };

    const forceFrom = policy.force_after_days === null ? null : addDays(enforceFrom, policy.force_after_days);
    const traffic = recentTraffic(inputs.traffic.get(key.id), policy.drain_window_hours);
    const facts = {
      key,
      deadline,
      source,
      enforceFrom,
      forceFrom,
      enforce: policy.enforce,
      recentTraffic: traffic,
      successor: findSuccessor(
        key,
        usableByWorkspace.get(key.workspaceId) ?? [],
        firstReminderAt(deadline, stages),
        inputs.traffic,
        now,
      ),
    };
    const retire = (reason: 'drained' | 'forced'): RotationDecision => {
      if (policy.enforce !== 'approve') {
        return { ...facts, kind: policy.enforce ? 'deactivate' : 'would_deactivate', reason };
      }
      // a person said no: keywarden asks again once the denial's time is up, not every run
      const denial = inputs.denials?.get(key.id);
      if (denial !== undefined && now.getTime() < denial.askAgainAt.getTime()) {
        return { ...facts, kind: 'denied', reason, denial };
      }
      return { ...facts, kind: 'ask_approval', reason };
    };
    // Forcing ignores traffic by definition, so it does not need fresh usage data either.
    if (forceFrom !== null && now.getTime() >= forceFrom.getTime()) return retire('forced');
    // Traffic already seen is proof enough even in old data; only "no traffic" needs data up to now.
    if (hadTrafficInWindow(traffic, now)) return { ...facts, kind: 'blocked' };
    if (staleness !== null) return { ...facts, kind: 'hold', reason: staleness, dataUntil: inputs.usage.dataUntil };
    return retire('drained');
  });

  return capDeactivations(decisions, policy.max_deactivations_per_run);
}

/**
 * max_deactivations_per_run: the most overdue keys (earliest deadline) go first, the rest are `deferred` to the
 * next run. The cap applies with enforce: false too, so the dry run shows exactly what enforcing would do.
 */
function capDeactivations(decisions: RotationDecision[], cap: number): RotationDecision[] {
  const retiring = decisions
    .map((d, i) => ({ d, i }))
    .filter(({ d }) => d.kind === 'deactivate' || d.kind === 'would_deactivate')
    .sort((a, b) => {
      const byDeadline = (a.d.deadline?.getTime() ?? 0) - (b.d.deadline?.getTime() ?? 0);
      return byDeadline !== 0 ? byDeadline : a.d.key.id < b.d.key.id ? -1 : a.d.key.id > b.d.key.id ? 1 : 0;
    });
  const out = [...decisions];
  for (const { d, i } of retiring.slice(cap)) {
    if (d.kind === 'deactivate' || d.kind === 'would_deactivate') out[i] = { ...d, kind: 'deferred', cap };
  }
  return out;
}
