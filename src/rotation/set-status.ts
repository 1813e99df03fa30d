import { AdminApiError } from '../anthropic/errors.ts';
import { type AuditedOutcome, withAuditedAction } from '../audit.ts';
import type { Context } from '../context.ts';
import { KEY_STATUS_ACTIONS, type KeyStatusAction } from '../db/repos/keys.ts';
import type { AuditRow } from '../db/types.ts';
import { scrubSecrets } from '../log.ts';

/** What a key status change needs from the Context: the repositories, the Admin API, the log and the clock. */
type StatusChangeContext = Pick<Context, 'repos' | 'admin' | 'log' | 'clock'>;

interface StatusChangeRequest {
  keyId: string;
  to: 'inactive' | 'active';
  action: KeyStatusAction;
  /** Who asked: `keywarden:rotation`, `keywarden:anomaly`, `cli:<user>`. */
  actor: string;
  reason: string;
}

/** What the API's refusal codes mean for a status change, said for the person who asked for it. */
const REFUSALS: Record<string, string> = {
  org_api_key_limit_exceeded:
    'the organization already has as many active API keys as it is allowed; deactivate or archive one first',
  workspace_api_key_limit_exceeded:
    'its workspace already has as many active API keys as it is allowed; deactivate or archive one there first',
};

/** The failure in a sentence: the plain meaning of a known refusal first, then the API's own words. */
function failureMessage(err: unknown, request: StatusChangeRequest): string {
  const raw = scrubSecrets((err as Error).message);
  const plain = err instanceof AdminApiError && err.errorCode !== null ? REFUSALS[err.errorCode] : undefined;
  if (plain === undefined) return raw;
  const verb = request.to === 'active' ? 'reactivate' : 'deactivate';
  return `cannot ${verb} ${request.keyId}: ${plain} (${raw})`;
}

/**
 * Writes a status change's outcome: one that applied goes with the dated change and the key's stored status, in
 * one transaction; one that did not is the outcome row alone.
 */
function recordStatusOutcome(ctx: StatusChangeContext, from: string | null, to: string) {
  return async (intent: AuditRow, outcome: AuditedOutcome): Promise<void> => {
    if (outcome.step === 'failed') {
      await ctx.repos.audit.recordOutcome(intent, outcome.step, outcome.details);
      return;
    }
    const applied = { step: outcome.step, details: outcome.details };
    await ctx.repos.keys.recordStatusChange(intent, applied, { from, to, at: ctx.clock.now() });
  };
}

/**
 * Sets a key's status through the Admin API, audited (withAuditedAction): the intent row, the call, then the
 * outcome with the status change in one transaction. A crash after the call leaves an unsettled intent that
 * `settleInterruptedStatusChanges` resolves from the API's own state on the next run.
 */
export async function setKeyStatus(ctx: StatusChangeContext, request: StatusChangeRequest): Promise<'done' | 'failed'> {
  const key = await ctx.repos.keys.statusOf(request.keyId);
  const from = key?.status ?? null;
  const outcome = await withAuditedAction(ctx.repos, {
    subject: { actor: request.actor, action: request.action, subjectType: 'api_key', subjectId: request.keyId },
    intent: { from, to: request.to, reason: request.reason, name: key?.name ?? null, hint: key?.hint ?? null },
    act: () => callAndReadBack(ctx, request),
    record: recordStatusOutcome(ctx, from, request.to),
  });
  if (outcome === null || outcome.step === 'failed') return 'failed';
  ctx.log.info(
    { keyId: request.keyId, action: request.action, from, to: request.to },
    outcome.step === 'done' ? 'key status changed' : 'key status changed (its answer was lost; read back from the API)',
  );
  return 'done';
}

/** The status update, and when it fails, the key's own state read back to tell whether it went through anyway. */
async function callAndReadBack(ctx: StatusChangeContext, request: StatusChangeRequest): Promise<AuditedOutcome | null> {
  try {
    await ctx.admin.updateApiKey(request.keyId, { status: request.to });
    return { step: 'done', details: { status: request.to } };
  } catch (err) {
    const message = failureMessage(err, request);
    // The update may have gone through with only its answer lost (a dropped connection, a cut body): the key's
    // own state says. Without the read-back, "failed" would stand beside an inactive key, and the next sync would
    // call keywarden's own change an outside one.
    let current: string;
    try {
      current = (await ctx.admin.getApiKey(request.keyId)).status;
    } catch (readErr) {
      // Neither answer: the intent stays unsettled, and a later run settles it from the API once the call's retry
      // budget is over (settleInterruptedStatusChanges).
      ctx.log.warn(
        { keyId: request.keyId, action: request.action, err, readErr },
        'key status change: no answer, and the key could not be read back; left for the next run to settle',
      );
      return null;
    }
    if (current === request.to) {
      return { step: 'reconciled', details: { status: request.to, readBack: true, error: message } };
    }
    ctx.log.warn({ keyId: request.keyId, action: request.action, err, reason: message }, 'key status change failed');
    return { step: 'failed', details: { error: message, status: current } };
  }
}

/**
 * Settles status changes a crash interrupted, reactivations as well as deactivations: enforce-rotation and the kill
 * switch run this under the key-status lock, while `keys reactivate` is run by hand and may never run again. The
 * API says whether the call went through. Applied → a `reconciled` row and the status change; not applied → a
 * `reconciled` row saying so (the next plan decides again). Only intents older than `minAgeMs` (default: the admin
 * client's retry budget) are settled: a younger one may be another run's call still in flight, whose own outcome
 * row is yet to come.
 */
export async function settleInterruptedStatusChanges(
  ctx: StatusChangeContext,
  opts: { minAgeMs?: number } = {},
): Promise<number> {
  const intents = await ctx.repos.audit.unsettledIntents(KEY_STATUS_ACTIONS, opts.minAgeMs ?? ctx.admin.retryBudgetMs);
  for (const intent of intents) {
    const details = intent.details as { from?: string | null; to?: string };
    const current = await ctx.admin.getApiKey(intent.subject_id);
    if (current.status === details.to) {
      await ctx.repos.keys.recordStatusChange(
        intent,
        { step: 'reconciled', details: { status: current.status } },
        { from: details.from ?? null, to: current.status, at: ctx.clock.now() },
      );
    } else {
      await ctx.repos.audit.recordOutcome(intent, 'reconciled', { applied: false, status: current.status });
    }
    ctx.log.info(
      { keyId: intent.subject_id, action: intent.action, applied: current.status === details.to },
      'settled an interrupted key status change',
    );
  }
  return intents.length;
}

/**
 * Why the newest failed status change `actor` asked for on a key failed, in the words its audit row keeps (the
 * plain meaning of a known refusal, then the API's own): for the person at the terminal who asked.
 */
export async function lastStatusChangeFailure(
  ctx: Pick<Context, 'repos'>,
  where: { keyId: string; action: KeyStatusAction; actor: string },
): Promise<string | null> {
  const details = await ctx.repos.audit.lastFailure({
    subjectType: 'api_key',
    subjectId: where.keyId,
    action: where.action,
    actor: where.actor,
  });
  const error = details?.error;
  return typeof error === 'string' ? error : null;
}
