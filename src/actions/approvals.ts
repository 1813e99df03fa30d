import { deactivateOnApproval } from '../anomaly/apply-kill-switch.ts';
import { escapeSlack } from '../notify/escape.ts';
import { approveDeactivation, denyDeactivation } from '../rotation/approve.ts';
import type { PressDecision } from './core/decide.ts';
import type { ActionContext } from './handle.ts';

/**
 * What Approve, Deny and Deactivate key do, and what the presser and the message are told. The key-status changes
 * themselves live with their domains (src/rotation/approve.ts, src/anomaly/apply-kill-switch.ts), under the
 * key-status lock and audited there; handle.ts brackets the press in its own audit rows and answers.
 */

interface ApprovalAnswer {
  step: 'done' | 'failed';
  outcome: string;
  /** The ephemeral answer to the presser. */
  tell?: string;
  /** The line the message is rewritten with (the buttons go): ids as mentions, times, escaped outside text. */
  update?: string;
  /** Acknowledge the alert's episode: the question is answered, its repeats stop. */
  settle?: boolean;
}

type Answerable = Extract<PressDecision, { do: 'approve' | 'deny' | 'deactivate' }>;

const BUSY = 'Another run is changing key statuses right now: nothing was changed, try again in a minute.';

/** `at` is a time as the organization reads it (HH:MM and the zone). */
export async function answerApproval(
  ctx: ActionContext,
  d: Answerable,
  press: { userId: string; userName: string | null; alertId: string; episodeStartedAt: Date },
  at: (when: Date) => string,
): Promise<ApprovalAnswer> {
  const actor = `slack:${press.userId}`;
  const who = press.userName === null ? actor : `${actor} (${press.userName})`;
  const by = `<@${press.userId}> at ${at(ctx.clock.now())}`;
  if (d.do === 'deny') {
    const r = await denyDeactivation(ctx, {
      keyId: d.keyId,
      alertId: press.alertId,
      episodeStartedAt: press.episodeStartedAt,
      actor,
      name: press.userName,
      reason: d.reason,
    });
    if (r.result === 'busy') return { step: 'failed', outcome: 'busy', tell: BUSY };
    if (r.result === 'not_active') return notActive(r.status);
    const again = r.askAgainAt.toISOString().slice(0, 10);
    const why = r.reason === null ? '' : ` (${r.reason})`;
    if (r.result === 'already_denied') {
      return {
        step: 'done',
        outcome: 'unchanged:denied',
        tell: `Already denied by ${mention(r.deniedBy)}${why}: keywarden asks again from ${again}.`,
      };
    }
    return {
      step: 'done',
      outcome: 'denied',
      update: `Denied by ${by}${why}: keywarden asks again from ${again}`,
      settle: true,
    };
  }
  const r =
    d.do === 'approve'
      ? await approveDeactivation(ctx, { keyId: d.keyId, actor, who })
      : await deactivateOnApproval(ctx, { keyId: d.keyId, who });
  switch (r.result) {
    case 'deactivated':
      return {
        step: 'done',
        outcome: 'deactivated',
        update: `${d.do === 'approve' ? 'Approved' : 'Deactivation approved'} by ${by}: the key was set inactive`,
        settle: true,
      };
    case 'busy':
      return { step: 'failed', outcome: 'busy', tell: BUSY };
    case 'not_active':
      return notActive(r.status);
    case 'refused': {
      // said in both places: the presser at once, and everyone who reads the message later
      const why = escapeSlack(r.why);
      return {
        step: 'failed',
        outcome: 'refused:recheck',
        tell: `Not set inactive: ${why}. Nothing was changed.`,
        update: `${d.do === 'approve' ? 'Approve' : 'Deactivate key'} pressed by ${by}: not set inactive, ${why}`,
      };
    }
    case 'failed':
      return {
        step: 'failed',
        outcome: 'refused_by_api',
        tell: `The Admin API refused to deactivate the key: ${escapeSlack(r.why ?? 'see the worker log')}`,
      };
  }
}

function notActive(status: string): ApprovalAnswer {
  return {
    step: 'done',
    outcome: 'unchanged:not_active',
    tell: `The key is already ${escapeSlack(status)}: nothing was changed.`,
  };
}

/** `slack:U…` as a mention; anything else as escaped text. */
function mention(actor: string): string {
  const id = actor.startsWith('slack:') ? actor.slice('slack:'.length) : null;
  return id !== null && /^[UW][A-Z0-9]+$/.test(id) ? `<@${id}>` : escapeSlack(actor);
}
