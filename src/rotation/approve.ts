import type { Context } from '../context.ts';
import { formatUsd } from '../money.ts';
import { addDays } from './core/days.ts';
import { planRotation } from './core/plan.ts';
import type { Denial, RotationDecision } from './core/types.ts';
import { confirmDrained } from './enforce.ts';
import { loadRotationInputs } from './load.ts';
import { lastStatusChangeFailure, setKeyStatus, settleInterruptedStatusChanges } from './set-status.ts';

/**
 * A person's answer to rotation.approval_requested (rotation.enforce: approve). Both run under the key-status lock
 * that enforce-rotation, the kill switch and `keys reactivate` hold, so an Approve and a Deny, two presses of one
 * button, or a press and an enforcement run are one after the other, never at once.
 *
 * Approve asks the rotation plan again at the press, with the data as it is now: only a key the plan still asks
 * approval for is retired, after the same direct read of its usage from the Admin API the enforcer does, through the
 * same audited status change. Deny records who, and the plan asks again grace_days later (one day at least).
 */

type Ctx = Pick<Context, 'repos' | 'admin' | 'log' | 'clock' | 'config'>;

type ApprovalResult =
  | { result: 'deactivated' }
  /** Another run holds the key-status lock: nothing changed, the person may press again. */
  | { result: 'busy' }
  /** The plan no longer asks (traffic came back, data too old, denied, policy changed): nothing changed. */
  | { result: 'refused'; why: string }
  | { result: 'not_active'; status: string }
  /** The Admin API refused the change: its reason, said plainly. */
  | { result: 'failed'; why: string | null };

type DenialResult =
  | ({ result: 'denied' | 'already_denied' } & Denial)
  | { result: 'busy' }
  | { result: 'not_active'; status: string };

/** `actor` is `slack:U…`; `who` adds the Slack user's name for the audit row's reason. */
export async function approveDeactivation(
  ctx: Ctx,
  req: { keyId: string; actor: string; who: string },
): Promise<ApprovalResult> {
  const locked = await ctx.repos.keys.withStatusLock(async (): Promise<ApprovalResult> => {
    await settleInterruptedStatusChanges(ctx);
    const now = ctx.clock.now();
    const policy = ctx.config.policy.rotation;
    const inputs = await loadRotationInputs(ctx.repos, policy.drain_window_hours, now);
    const planned = planRotation(inputs, policy, now).find((d) => d.key.id === req.keyId);
    if (planned === undefined) return { result: 'refused', why: 'keywarden no longer knows this key' };
    if (planned.kind === 'not_active') return { result: 'not_active', status: planned.status };
    if (planned.kind !== 'ask_approval') return { result: 'refused', why: notAskedWhy(planned) };
    if (planned.reason === 'drained') {
      const confirmed = await confirmDrained(ctx, planned, ctx.config.prices, now);
      if (confirmed !== planned) return { result: 'refused', why: notAskedWhy(confirmed) };
    }
    const outcome = await setKeyStatus(ctx, {
      keyId: req.keyId,
      to: 'inactive',
      action: 'api_key.deactivate',
      actor: req.actor,
      reason: `approved from Slack by ${req.who}: ${
        planned.reason === 'forced'
          ? 'past deadline, grace and force_after_days'
          : 'past deadline and grace, traffic drained'
      }`,
    });
    if (outcome === 'done') return { result: 'deactivated' };
    const why = await lastStatusChangeFailure(ctx, {
      keyId: req.keyId,
      action: 'api_key.deactivate',
      actor: req.actor,
    });
    return { result: 'failed', why };
  });
  return locked?.value ?? { result: 'busy' };
}

/** Records a Deny for the alert episode the buttons were offered for; the first of several presses stands. */
export async function denyDeactivation(
  ctx: Ctx,
  req: {
    keyId: string;
    alertId: string;
    episodeStartedAt: Date;
    actor: string;
    name: string | null;
    reason: string | null;
  },
): Promise<DenialResult> {
  const locked = await ctx.repos.keys.withStatusLock(async (): Promise<DenialResult> => {
    const key = await ctx.repos.keys.statusOf(req.keyId);
    if (key !== null && key.status !== 'active') return { result: 'not_active', status: key.status };
    const now = ctx.clock.now();
    const { denial, created } = await ctx.repos.approvals.deny({
      keyId: req.keyId,
      alertId: req.alertId,
      episodeStartedAt: req.episodeStartedAt,
      deniedBy: req.actor,
      deniedByName: req.name,
      reason: req.reason,
      deniedAt: now,
      // at least a day, even with grace_days 0: asked again at once, the answered question would never go away
      askAgainAt: addDays(now, Math.max(1, ctx.config.policy.rotation.grace_days)),
    });
    return { result: created ? 'denied' : 'already_denied', ...denial };
  });
  return locked?.value ?? { result: 'busy' };
}

/** Why the plan, asked again at the press, no longer asks for this key's deactivation: for the person who pressed. */
function notAskedWhy(d: RotationDecision): string {
  const day = (at: Date) => at.toISOString().slice(0, 10);
  switch (d.kind) {
    case 'blocked': {
      const t = d.recentTraffic;
      const last = t.lastUsageAt === null ? '' : `, the last at ${t.lastUsageAt.toISOString().slice(0, 16)}Z`;
      return `its traffic came back: ${t.tokens} tokens (${formatUsd(t.costUsd)}) in the last ${t.windowHours} h${last}`;
    }
    case 'hold':
      return `keywarden cannot tell now whether it drained: ${d.reason}`;
    case 'denied':
      return `setting it inactive was denied by ${d.denial.deniedBy} on ${day(d.denial.deniedAt)}${d.denial.reason === null ? '' : ` (${d.denial.reason})`}`;
    case 'exempt':
      return 'an exemption now covers it';
    case 'deactivate':
    case 'would_deactivate':
    case 'deferred':
      return 'rotation.enforce is no longer approve: the policy decides without a person';
    default:
      return 'it is no longer past its deadline and grace period under the current policy';
  }
}
