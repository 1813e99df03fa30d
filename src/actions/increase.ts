import { IncreaseAnswerRefusedError, NotEnterpriseError } from '../anthropic/enterprise-spend.ts';
import { AdminApiError } from '../anthropic/errors.ts';
import { formatUsd } from '../money.ts';
import { escapeSlack } from '../notify/escape.ts';
import { MINUTE_MS } from '../time.ts';
import type { PressDecision } from './core/decide.ts';
import type { ActionContext } from './handle.ts';

/**
 * Approve and Deny on a Claude Enterprise member's spend limit increase request. The press claims the request in
 * Postgres first (one conditional UPDATE: of a double click, a replay or two replicas, one press calls the Admin
 * API), reads it again from the API (answered in the Console meanwhile: nothing is changed, and both the presser and
 * the message say so), then approves it with the amount the message proposed for the request's period, or denies
 * it. handle.ts brackets the press in its audit rows and rewrites the message.
 */

interface IncreaseAnswer {
  step: 'done' | 'failed';
  outcome: string;
  /** The ephemeral answer to the presser. */
  tell?: string;
  /** The line the message is rewritten with (the buttons go): ids as mentions, times, amounts. */
  update?: string;
  /** The question is answered: its notice is acknowledged. */
  settle?: boolean;
  /** For the press's audit outcome. */
  details?: Record<string, unknown>;
}

/**
 * A claim older than this was left by a process that died mid-call: another press may take it over. At least twice
 * what one Admin API call may take (its retries included), so a slow call still in flight is never doubled.
 */
const STALE_CLAIM_MS = 5 * MINUTE_MS;

const usd = (minor: bigint) => formatUsd(minor * 10n ** 10n);

/** `at` is a time as the organization reads it (HH:MM and the zone). */
export async function answerIncrease(
  ctx: ActionContext,
  d: Extract<PressDecision, { do: 'answer_increase' }>,
  press: { userId: string; userName: string | null; notificationId: string },
  at: (when: Date) => string,
): Promise<IncreaseAnswer> {
  const repo = ctx.repos.increaseRequests;
  const row = await repo.byRequestId(d.requestId);
  if (row === null) {
    return {
      step: 'failed',
      outcome: 'names_nothing',
      tell: 'keywarden has no record of this request: nothing was changed.',
    };
  }
  const details = { requestId: row.requestId, memberId: row.userId, period: row.period };
  if (row.state === 'approved' || row.state === 'denied') {
    return {
      step: 'done',
      outcome: `unchanged:${row.state}`,
      tell: `${answeredText(row, at)}: nothing was changed.`,
      details,
    };
  }
  if (d.answer === 'approve' && (row.amountMinor === null || row.currency !== 'USD')) {
    return {
      step: 'failed',
      outcome: 'refused:not_offered',
      tell: 'This request has no amount keywarden can propose: set the limit in the Console. Nothing was changed.',
      details,
    };
  }
  const now = ctx.clock.now();
  const actor = `slack:${press.userId}`;
  const claimed = await repo.claim(
    row.requestId,
    d.answer === 'approve' ? 'approving' : 'denying',
    { answeredBy: actor, answeredByName: press.userName },
    now,
    new Date(now.getTime() - Math.max(STALE_CLAIM_MS, 2 * ctx.admin.retryBudgetMs)),
  );
  if (claimed === null) {
    const current = await repo.byRequestId(row.requestId);
    const text =
      current !== null && (current.state === 'approved' || current.state === 'denied')
        ? `${answeredText(current, at)}: nothing was changed.`
        : `${mention(current?.answeredBy ?? null)} is answering this request right now: nothing was changed.`;
    return { step: 'done', outcome: 'unchanged:in_progress', tell: text, details };
  }

  try {
    const live = await ctx.admin.increaseRequests.get(row.requestId);
    if (live.status !== 'pending') {
      const when = live.resolvedAt ?? now;
      await repo.settle(row.requestId, {
        state: live.status,
        answeredBy: 'console',
        answeredByName: null,
        answeredAt: when,
        notificationId: press.notificationId,
      });
      const line = `${live.status === 'approved' ? 'Approved' : 'Denied'} outside keywarden (the Console or another admin key) at ${at(when)}, before this press by <@${press.userId}>: nothing was changed`;
      return {
        step: 'done',
        outcome: `unchanged:answered_elsewhere:${live.status}`,
        tell: `${line}.`,
        update: line,
        settle: true,
        details,
      };
    }
    // a limit raised meanwhile (in the Console, or by approving another request of the member) to the proposed
    // amount or above: approving now would lower it
    const liveLimit = live.summary?.currency === 'USD' ? live.summary.limit : null;
    if (d.answer === 'approve' && liveLimit !== null && liveLimit >= row.amountMinor! * 10n ** 10n) {
      await repo.release(row.requestId);
      return {
        step: 'failed',
        outcome: 'refused:limit_already_higher',
        tell: `The member's ${row.period} limit is already ${formatUsd(liveLimit)}, not below the ${usd(row.amountMinor!)} this message proposes: nothing was changed. Deny, or answer in the Console.`,
        details,
      };
    }
    const by = `<@${press.userId}> at ${at(now)}`;
    if (d.answer === 'deny') {
      await ctx.admin.increaseRequests.deny(row.requestId);
      await repo.settle(row.requestId, {
        state: 'denied',
        answeredBy: actor,
        answeredByName: press.userName,
        answeredAt: now,
        notificationId: press.notificationId,
      });
      const stays =
        row.limitMinor === null || row.currency !== 'USD' ? 'stays as it is' : `stays ${usd(row.limitMinor)}`;
      return {
        step: 'done',
        outcome: 'denied',
        update: `Denied by ${by}: the ${row.period} limit ${stays}`,
        settle: true,
        details,
      };
    }
    const amountMinor = row.amountMinor!;
    const done = await ctx.admin.increaseRequests.approve(row.requestId, {
      amountMinor: amountMinor.toString(),
      period: row.period,
    });
    // the limit the API says it wrote; the amount sent where its answer names none
    const written = done.limit?.amount ?? null;
    const writtenMinor = written === null ? amountMinor : written / 10n ** 10n;
    await repo.settle(row.requestId, {
      state: 'approved',
      answeredBy: actor,
      answeredByName: press.userName,
      answeredAt: now,
      limitAfterMinor: writtenMinor,
      notificationId: press.notificationId,
    });
    return {
      step: 'done',
      outcome: 'approved',
      update: `Approved by ${by}: the ${done.limit?.period ?? row.period} limit is now ${usd(writtenMinor)}`,
      settle: true,
      details: { ...details, amountMinor: amountMinor.toString(), limitAfterMinor: writtenMinor.toString() },
    };
  } catch (err) {
    // nothing changed that keywarden knows of: the request is pending again for the next press
    await repo.release(row.requestId);
    if (!(err instanceof AdminApiError)) throw err;
    ctx.log.warn({ err, endpoint: err.endpoint, requestId: row.requestId }, 'an increase request press failed');
    const what = d.answer === 'approve' ? 'approve' : 'deny';
    if (err instanceof IncreaseAnswerRefusedError || err instanceof NotEnterpriseError) {
      return {
        step: 'failed',
        outcome: 'refused_by_api',
        tell: `The Admin API refused to ${what} the request: ${escapeSlack(err.message)}. Nothing was changed.`,
        details: { ...details, status: err.status },
      };
    }
    return {
      step: 'failed',
      outcome: 'api_unavailable',
      tell: `The Admin API could not be reached to ${what} the request (${err.status === 0 ? err.errorType : err.status}): nothing was changed, try again in a minute.`,
      details: { ...details, status: err.status },
    };
  }
}

/** Who answered a request keywarden has as ended, and when. */
function answeredText(
  row: { state: string; answeredBy: string | null; answeredAt: Date | null },
  at: (when: Date) => string,
): string {
  const verb = row.state === 'approved' ? 'approved' : 'denied';
  const when = row.answeredAt === null ? '' : ` at ${at(row.answeredAt)}`;
  if (row.answeredBy === 'console') return `Already ${verb} outside keywarden${when}`;
  return `Already ${verb} by ${mention(row.answeredBy)}${when}`;
}

/** `slack:U…` as a mention; anything else as escaped text. */
function mention(actor: string | null): string {
  const id = actor?.startsWith('slack:') ? actor.slice('slack:'.length) : null;
  return id !== null && id !== undefined && /^[UW][A-Z0-9]+$/.test(id) ? `<@${id}>` : escapeSlack(actor ?? 'someone');
}
