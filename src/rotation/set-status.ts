import type { AdminClient } from '../anthropic/client.ts';
import { AdminApiError } from '../anthropic/errors.ts';
import { recordIntent, recordOutcome, unsettledIntents } from '../audit.ts';
import { isKeyIdReference } from '../config/references.ts';
import type { Db } from '../db/index.ts';
import type { AuditRow } from '../db/types.ts';
import type { Logger } from '../log.ts';
import { scrubSecrets } from '../log.ts';

export type KeyStatusAction = 'api_key.deactivate' | 'api_key.reactivate';

/**
 * The stored keys a person's reference names: by id when it reads `apikey_…`, else by exact name. Never both: a
 * key may be named like another key's id, and an id given on the command line must name that key only.
 */
export async function findKeysByReference(
  db: Db,
  ref: string,
): Promise<{ id: string; name: string; status: string }[]> {
  return db
    .selectFrom('api_keys')
    .select(['id', 'name', 'status'])
    .where(isKeyIdReference(ref) ? 'id' : 'name', '=', ref)
    .execute();
}

export interface StatusChangeRequest {
  keyId: string;
  to: 'inactive' | 'active';
  action: KeyStatusAction;
  /** Who asked: `keywarden:rotation`, `keywarden:anomaly`, `cli:<user>`. */
  actor: string;
  reason: string;
}

interface Deps {
  db: Db;
  admin: AdminClient;
  log: Logger;
  now: () => Date;
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

/** Records a status change keywarden made, in the same transaction as the outcome row that proves it. */
async function recordApplied(
  deps: Deps,
  intent: AuditRow,
  step: 'done' | 'reconciled',
  from: string | null,
  to: string,
  details: Record<string, unknown> = {},
) {
  const at = deps.now();
  await deps.db.transaction().execute(async (tx) => {
    await recordOutcome(tx, intent, step, { status: to, ...details });
    await tx
      .insertInto('api_key_status_changes')
      .values({
        api_key_id: intent.subject_id,
        from_status: from,
        to_status: to,
        changed_at: at,
        source: 'keywarden',
        reason: String((intent.details as { reason?: string }).reason ?? ''),
      })
      .execute();
    await tx
      .updateTable('api_keys')
      .set({ status: to, status_changed_at: at })
      .where('id', '=', intent.subject_id)
      .execute();
  });
}

/**
 * Sets a key's status through the Admin API, audited: an intent row first, the call, then the outcome with the
 * status change in one transaction. A crash after the call leaves an unsettled intent that
 * `settleInterruptedStatusChanges` resolves from the API's own state on the next run.
 */
export async function setKeyStatus(deps: Deps, request: StatusChangeRequest): Promise<'done' | 'failed'> {
  const key = await deps.db
    .selectFrom('api_keys')
    .select(['status', 'name', 'partial_key_hint'])
    .where('id', '=', request.keyId)
    .executeTakeFirst();
  const from = key?.status ?? null;
  const operationId = await recordIntent(
    deps.db,
    { actor: request.actor, action: request.action, subjectType: 'api_key', subjectId: request.keyId },
    { from, to: request.to, reason: request.reason, name: key?.name ?? null, hint: key?.partial_key_hint ?? null },
  );
  const intent = await deps.db
    .selectFrom('audit_log')
    .selectAll()
    .where('operation_id', '=', operationId)
    .executeTakeFirstOrThrow();
  try {
    await deps.admin.updateApiKey(request.keyId, { status: request.to });
  } catch (err) {
    const message = failureMessage(err, request);
    // The update may have gone through with only its answer lost (a dropped connection, a cut body): the key's
    // own state says. Without the read-back, "failed" would stand beside an inactive key, and the next sync would
    // call keywarden's own change an outside one.
    let current: string;
    try {
      current = (await deps.admin.getApiKey(request.keyId)).status;
    } catch (readErr) {
      // Neither answer: the intent stays unsettled, and a later run settles it from the API once the call's retry
      // budget is over (settleInterruptedStatusChanges).
      deps.log.warn(
        { keyId: request.keyId, action: request.action, err, readErr },
        'key status change: no answer, and the key could not be read back; left for the next run to settle',
      );
      return 'failed';
    }
    if (current === request.to) {
      await recordApplied(deps, intent, 'reconciled', from, request.to, { readBack: true, error: message });
      deps.log.info(
        { keyId: request.keyId, action: request.action, from, to: request.to },
        'key status changed (its answer was lost; read back from the API)',
      );
      return 'done';
    }
    await recordOutcome(deps.db, intent, 'failed', { error: message, status: current });
    deps.log.warn({ keyId: request.keyId, action: request.action, err, reason: message }, 'key status change failed');
    return 'failed';
  }
  await recordApplied(deps, intent, 'done', from, request.to);
  deps.log.info({ keyId: request.keyId, action: request.action, from, to: request.to }, 'key status changed');
  return 'done';
}

/**
 * Settles status changes a crash interrupted: the API says whether the call went through. Applied → a
 * `reconciled` row and the status change; not applied → a `reconciled` row saying so (the next plan decides again).
 * Only intents older than `minAgeMs` (default: the admin client's retry budget) are settled: a younger one may be
 * another run's call still in flight, whose own outcome row is yet to come.
 */
export async function settleInterruptedStatusChanges(
  deps: Deps,
  action: KeyStatusAction,
  opts: { minAgeMs?: number } = {},
): Promise<number> {
  const intents = await unsettledIntents(deps.db, action, opts.minAgeMs ?? deps.admin.retryBudgetMs);
  for (const intent of intents) {
    const details = intent.details as { from?: string | null; to?: string };
    const current = await deps.admin.getApiKey(intent.subject_id);
    if (current.status === details.to) {
      await recordApplied(deps, intent, 'reconciled', details.from ?? null, current.status);
    } else {
      await recordOutcome(deps.db, intent, 'reconciled', { applied: false, status: current.status });
    }
    deps.log.info(
      { keyId: intent.subject_id, action, applied: current.status === details.to },
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
  db: Db,
  where: { keyId: string; action: KeyStatusAction; actor: string },
): Promise<string | null> {
  const row = await db
    .selectFrom('audit_log')
    .select('details')
    .where('subject_type', '=', 'api_key')
    .where('subject_id', '=', where.keyId)
    .where('action', '=', where.action)
    .where('actor', '=', where.actor)
    .where('step', '=', 'failed')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  const error = (row?.details as { error?: unknown } | undefined)?.error;
  return typeof error === 'string' ? error : null;
}
