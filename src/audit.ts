import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from './db/index.ts';
import type { AuditRow } from './db/types.ts';

/**
 * The audit log brackets every outside action: an `intent` row before the call, a `done` or `failed` row after it.
 * A crash between the two leaves an intent without an outcome; the next run settles it from the outside system's
 * own state with a `reconciled` row. (operation_id, step) is unique, so a step is never recorded twice, whatever
 * retries happen.
 */
export interface AuditSubject {
  actor: string;
  action: string;
  subjectType: string;
  subjectId: string;
}

export async function recordIntent(db: Db, subject: AuditSubject, details: Record<string, unknown>): Promise<string> {
  const operationId = randomUUID();
  await db
    .insertInto('audit_log')
    .values({
      actor: subject.actor,
      action: subject.action,
      step: 'intent',
      subject_type: subject.subjectType,
      subject_id: subject.subjectId,
      operation_id: operationId,
      details: JSON.stringify(details),
    })
    .execute();
  return operationId;
}

/** Records how an operation ended. Recording the same step of an operation twice (a retried job) is a no-op. */
export async function recordOutcome(
  db: Db,
  intent: Pick<AuditRow, 'operation_id' | 'actor' | 'action' | 'subject_type' | 'subject_id'>,
  step: 'done' | 'failed' | 'reconciled',
  details: Record<string, unknown>,
): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      actor: intent.actor,
      action: intent.action,
      step,
      subject_type: intent.subject_type,
      subject_id: intent.subject_id,
      operation_id: intent.operation_id,
      details: JSON.stringify(details),
    })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/**
 * Intents of `action` with no outcome yet, recorded at least `minAgeMs` ago (by the database's clock, which wrote
 * `at`): operations a crash interrupted, not those another run is still carrying out.
 */
export async function unsettledIntents(db: Db, action: string, minAgeMs = 0): Promise<AuditRow[]> {
  return db
    .selectFrom('audit_log as i')
    .selectAll('i')
    .where('i.action', '=', action)
    .where('i.step', '=', 'intent')
    .where('i.at', '<=', sql<Date>`now() - make_interval(secs => ${minAgeMs / 1000})`)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('audit_log as o')
            .select('o.id')
            .whereRef('o.operation_id', '=', 'i.operation_id')
            .where('o.step', '!=', 'intent'),
        ),
      ),
    )
    .orderBy('i.id')
    .execute();
}
