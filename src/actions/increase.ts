import {
  type ApprovedIncrease,
  IncreaseAnswerRefusedError,
  type IncreaseRequest,
  NotEnterpriseError,
} from '../anthropic/enterprise-spend.ts';
import { AdminApiError, AdminApiResponseError, AdminKeyRejectedError } from '../anthropic/errors.ts';
import type { IncreaseClaim, IncreaseRecord } from '../db/repos/increase-requests.ts';
import { formatUsd } from '../money.ts';
import { escapeSlack } from '../notify/escape.ts';
import { afterLostAnswer, beforeClaim, claimTaken, planPress } from '../spend/core/increase-requests.ts';
import { MINUTE_MS } from '../time.ts';
import type { PressDecision } from './core/decide.ts';
import type { ActionContext } from './handle.ts';

/**
 * Approve and Deny on a Claude Enterprise member's spend limit increase request. The press claims the request in
 * Postgres first (one conditional UPDATE: of a double click, a replay or two replicas, one press calls the Admin
 * API), reads it again from the API (answered in the Console meanwhile: nothing is changed, and both the presser and
 * the message say so), then approves it with the amount the message proposed for the request's period, or denies
 * it. An answer whose outcome was lost (a timeout, a 5xx, a cut body) is read back before anything is said: applied,
 * it is settled as this press; still pending, the claim is given back; unreadable, the claim stays until it is stale
 * and the presser is told the outcome is unknown. The decisions are pure (spend/core/increase-requests.ts); this
 * file reads, calls and writes. handle.ts brackets the press in its audit rows and rewrites the message.
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

type Press = { userId: string; notificationId: string };

/** `at` is a time as the organization reads it (HH:MM and the zone). */
export async function answerIncrease(
  ctx: ActionContext,
  d: Extract<PressDecision, { do: 'answer_increase' }>,
  press: Press,
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
  const first = beforeClaim(row, d.answer);
  if (first.do === 'nothing') {
    return {
      step: 'done',
      outcome: `unchanged:${first.answered}`,
      tell: `${answeredText(row, at)}: nothing was changed.`,
      details,
    };
  }
  if (first.do === 'refuse') {
    return {
      step: 'failed',
      outcome: 'refused:not_offered',
      tell: 'This request has no amount keywarden can propose: set the limit in the Console. Nothing was changed.',
      details,
    };
  }
  const now = ctx.clock.now();
  const staleMs = Math.max(STALE_CLAIM_MS, 2 * ctx.admin.retryBudgetMs);
  const claim = await repo.claim(
    row.requestId,
    d.answer === 'approve' ? 'approving' : 'denying',
    `slack:${press.userId}`,
    now,
    new Date(now.getTime() - staleMs),
  );
  if (claim === null) {
    // another press holds it, or has just answered it: say which, as the audit does
    const current = await repo.byRequestId(row.requestId);
    const taken = claimTaken(current?.state ?? null);
    const tell =
      'answered' in taken && current !== null
        ? `${answeredText(current, at)}: nothing was changed.`
        : current?.state === 'pending'
          ? // the holder gave it back between this press's claim and its read
            'Another press was answering this request a moment ago and changed nothing: press again to answer it.'
          : `${mention(current?.answeredBy ?? null)} is answering this request right now: nothing was changed.`;
    return { step: 'done', outcome: taken.outcome, tell, details };
  }

  const what = d.answer;
  let live: IncreaseRequest;
  try {
    live = await ctx.admin.increaseRequests.get(row.requestId);
  } catch (err) {
    // nothing was sent: the request is pending again for the next press
    await repo.release(claim);
    if (!(err instanceof AdminApiError)) throw err;
    ctx.log.warn({ err, endpoint: err.endpoint, requestId: row.requestId }, 'could not read an increase request');
    return {
      step: 'failed',
      outcome: 'read_failed',
      tell: `keywarden could not read the request from the Admin API before answering it: the Admin API ${failureText(err)}. Nothing was changed; try again in a minute.`,
      details: { ...details, status: err.status },
    };
  }
  const plan = planPress(row, d.answer, {
    status: live.status,
    limitUsd: live.summary?.currency === 'USD' ? live.summary.limit : null,
  });
  if (plan.do === 'answered_elsewhere') {
    return answeredElsewhere(ctx, claim, plan.status, live.resolvedAt ?? now, press, at, details);
  }
  if (plan.do === 'earlier_press_applied') {
    // the press whose claim this one took over: its answer was applied, its reply lost
    const when = live.resolvedAt ?? now;
    const earlier = row.answeredBy ?? 'console';
    await repo.settle(claim, {
      state: plan.status,
      answeredBy: earlier,
      answeredAt: when,
      notificationId: press.notificationId,
    });
    const line = `${plan.status === 'approved' ? 'Approved' : 'Denied'} by ${mention(earlier)} at ${at(when)} (that press's reply from the Admin API was lost), before this press by <@${press.userId}>: nothing was changed`;
    return {
      step: 'done',
      outcome: `unchanged:answered_by_earlier_press:${plan.status}`,
      tell: `${line}.`,
      update: line,
      settle: true,
      details,
    };
  }
  if (plan.do === 'refuse') {
    await repo.release(claim);
    return {
      step: 'failed',
      outcome: 'refused:limit_already_higher',
      tell: `The member's ${row.period} limit is already ${formatUsd(plan.limit)}, not below the ${usd(row.amountMinor!)} this message proposes: nothing was changed. Deny, or answer in the Console.`,
      details,
    };
  }

  // only the Admin API call is guarded: a failure to record its answer must not give the claim back
  let approved: ApprovedIncrease | null = null;
  try {
    if (plan.do === 'approve') {
      approved = await ctx.admin.increaseRequests.approve(row.requestId, {
        amountMinor: plan.amountMinor.toString(),
        period: row.period,
      });
    } else {
      await ctx.admin.increaseRequests.deny(row.requestId);
    }
  } catch (err) {
    if (!(err instanceof AdminApiError)) {
      await repo.release(claim);
      throw err;
    }
    ctx.log.warn({ err, endpoint: err.endpoint, requestId: row.requestId }, 'an increase request answer failed');
    if (definitelyRefused(err)) {
      await repo.release(claim);
      return {
        step: 'failed',
        outcome: 'refused_by_api',
        tell: `The Admin API refused to ${what} the request: ${escapeSlack(err.message)}. Nothing was changed.`,
        details: { ...details, status: err.status },
      };
    }
    return lostAnswer(ctx, { claim, row, plan, press, now, staleMs, at, details }, err);
  }
  // the limit the API says it wrote; the amount sent where its answer names none
  const written = approved?.limit?.amount ?? null;
  const limitAfterMinor =
    plan.do === 'approve' ? (written === null ? plan.amountMinor : written / 10n ** 10n) : undefined;
  return settled(
    ctx,
    { claim, row, plan, press, now, staleMs, at, details },
    {
      period: approved?.limit?.period ?? row.period,
      limitAfterMinor,
      note: '',
    },
  );
}

interface Pressing {
  claim: IncreaseClaim;
  row: IncreaseRecord;
  plan: { do: 'approve'; amountMinor: bigint } | { do: 'deny' };
  press: Press;
  now: Date;
  staleMs: number;
  at: (when: Date) => string;
  details: Record<string, unknown>;
}

/** Records this press's answer and says it in the message. */
async function settled(
  ctx: ActionContext,
  p: Pressing,
  done: { period: string; limitAfterMinor: bigint | undefined; note: string },
): Promise<IncreaseAnswer> {
  const state = p.plan.do === 'approve' ? 'approved' : 'denied';
  const recorded = await ctx.repos.increaseRequests.settle(p.claim, {
    state,
    answeredBy: p.claim.by,
    answeredAt: p.now,
    limitAfterMinor: done.limitAfterMinor,
    notificationId: p.press.notificationId,
  });
  if (!recorded) {
    ctx.log.warn({ requestId: p.row.requestId }, 'an increase request was answered after its claim was taken over');
  }
  const by = `<@${p.press.userId}> at ${p.at(p.now)}`;
  if (p.plan.do === 'deny') {
    const stays =
      p.row.limitMinor === null || p.row.currency !== 'USD' ? 'stays as it is' : `stays ${usd(p.row.limitMinor)}`;
    return {
      step: 'done',
      outcome: 'denied',
      update: `Denied by ${by}: the ${p.row.period} limit ${stays}${done.note}`,
      settle: true,
      details: p.details,
    };
  }
  const after = done.limitAfterMinor!;
  return {
    step: 'done',
    outcome: 'approved',
    update: `Approved by ${by}: the ${done.period} limit is now ${usd(after)}${done.note}`,
    settle: true,
    details: { ...p.details, amountMinor: p.plan.amountMinor.toString(), limitAfterMinor: after.toString() },
  };
}

/** Ended outside keywarden (the Console, another admin key) before this press's answer. */
async function answeredElsewhere(
  ctx: ActionContext,
  claim: IncreaseClaim,
  status: 'approved' | 'denied',
  when: Date,
  press: Press,
  at: (when: Date) => string,
  details: Record<string, unknown>,
): Promise<IncreaseAnswer> {
  await ctx.repos.increaseRequests.settle(claim, {
    state: status,
    answeredBy: 'console',
    answeredAt: when,
    notificationId: press.notificationId,
  });
  const line = `${status === 'approved' ? 'Approved' : 'Denied'} outside keywarden (the Console or another admin key) at ${at(when)}, before this press by <@${press.userId}>: nothing was changed`;
  return {
    step: 'done',
    outcome: `unchanged:answered_elsewhere:${status}`,
    tell: `${line}.`,
    update: line,
    settle: true,
    details,
  };
}

/**
 * The answer failed without a definite refusal: it may have been applied. Read the request back and settle, release
 * or hold the claim by what it says.
 */
async function lostAnswer(ctx: ActionContext, p: Pressing, err: AdminApiError): Promise<IncreaseAnswer> {
  const what = p.plan.do;
  const failed = failureText(err);
  let readBack: IncreaseRequest;
  try {
    readBack = await ctx.admin.increaseRequests.get(p.row.requestId);
  } catch (readErr) {
    if (!(readErr instanceof AdminApiError)) throw readErr;
    ctx.log.warn(
      { err: readErr, endpoint: readErr.endpoint, requestId: p.row.requestId },
      'could not read back an increase request after its answer failed; its claim is kept until stale',
    );
    // the claim stays: a press now could send the answer a second time, or the opposite one
    const minutes = Math.ceil(p.staleMs / MINUTE_MS);
    return {
      step: 'failed',
      outcome: 'unknown',
      tell: `The Admin API ${failed}, and the request could not be read back (the Admin API ${failureText(readErr)}): whether it was ${what === 'approve' ? 'approved' : 'denied'} is not known. Check it in the Console; keywarden takes presses on it again in ${minutes} minutes.`,
      details: { ...p.details, status: err.status, readBackStatus: readErr.status },
    };
  }
  const next = afterLostAnswer(what, readBack.status);
  if (next.do === 'release') {
    await ctx.repos.increaseRequests.release(p.claim);
    return {
      step: 'failed',
      outcome: 'api_unavailable',
      tell: `The Admin API ${failed} when asked to ${what} the request; read back, it is still pending: nothing was changed, try again in a minute.`,
      details: { ...p.details, status: err.status },
    };
  }
  if (!next.byThisPress) {
    return answeredElsewhere(ctx, p.claim, next.state, readBack.resolvedAt ?? p.now, p.press, p.at, p.details);
  }
  // applied, its answer lost: the amount sent is what the approval wrote (the request read back names no limit)
  const answer = await settled(ctx, p, {
    period: p.row.period,
    limitAfterMinor: p.plan.do === 'approve' ? p.plan.amountMinor : undefined,
    note: ' (the Admin API’s answer was lost; the request, read back, shows it done)',
  });
  return { ...answer, details: { ...answer.details, answerLost: err.status } };
}

/** A refusal that says the answer was not applied: a 4xx other than a timeout or a rate limit, with a usable body. */
function definitelyRefused(err: AdminApiError): boolean {
  if (err instanceof AdminApiResponseError) return false;
  if (err instanceof IncreaseAnswerRefusedError || err instanceof NotEnterpriseError) return true;
  if (err instanceof AdminKeyRejectedError) return true;
  return err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
}

/** What went wrong with a call, after "the Admin API": never "could not be reached" for an answer it gave. */
function failureText(err: AdminApiError): string {
  if (err instanceof AdminApiResponseError) {
    return `answered ${err.status} with a body keywarden could not use (${escapeSlack(err.message)})`;
  }
  if (err.status === 0) return `could not be reached (${escapeSlack(err.errorType)})`;
  return `answered ${err.status} ${escapeSlack(err.errorType)}`;
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
