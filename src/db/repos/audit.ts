import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../index.ts';
import type { AuditRow } from '../types.ts';

/** Who did what to which thing: the identity an audit row and its outcome rows share. */
export interface AuditSubject {
  actor: string;
  action: string;
  subjectType: string;
  subjectId: string;
}

export type AuditOutcomeStep = 'done' | 'failed' | 'reconciled';

/**
 * The `audit_log` table: an `intent` row before every outside action, a `done`, `failed` or `reconciled` row after
 * it. (operation_id, step) is unique, so a step is never recorded twice, whatever retries happen; the worker's
 * database role can only append (migration 007). src/audit.ts brackets an action with these rows.
 */
export function auditRepo(db: Db) {
  /** Rows of `actor`'s `action` written within `seconds` of the database's clock (a run's clock may be simulated). */
  const recent = (actor: string, action: string, seconds: number) =>
    db
      .selectFrom('audit_log')
      .where('actor', '=', actor)
      .where('action', '=', action)
      .where('at', '>', sql<Date>`now() - make_interval(secs => ${seconds})`);
  return {
    /** Records the intent of an action about to be taken; returns the row its outcome will name. */
    async recordIntent(subject: AuditSubject, details: Record<string, unknown>): Promise<AuditRow> {
      return db
        .insertInto('audit_log')
        .values({
          actor: subject.actor,
          action: subject.action,
          step: 'intent',
          subject_type: subject.subjectType,
          subject_id: subject.subjectId,
          operation_id: randomUUID(),
          details: JSON.stringify(details),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    },

    /** Records how an operation ended. Recording the same step of an operation twice (a retried job) is a no-op. */
    async recordOutcome(
      intent: Pick<AuditRow, 'operation_id' | 'actor' | 'action' | 'subject_type' | 'subject_id'>,
      step: AuditOutcomeStep,
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
    },

    /**
     * Intents of any of `actions` with no outcome yet, recorded at least `minAgeMs` ago (by the database's clock, which
     * wrote `at`): operations a crash interrupted, not those another run is still carrying out.
     */
    async unsettledIntents(actions: readonly string[], minAgeMs = 0): Promise<AuditRow[]> {
      return db
        .selectFrom('audit_log as i')
        .selectAll('i')
        .where('i.action', 'in', actions)
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
    },

    /** The details of the newest `failed` outcome of `action` that `actor` asked for on one subject, if any. */
    async lastFailure(where: {
      subjectType: string;
      subjectId: string;
      action: string;
      actor: string;
    }): Promise<Record<string, unknown> | null> {
      const row = await db
        .selectFrom('audit_log')
        .select('details')
        .where('subject_type', '=', where.subjectType)
        .where('subject_id', '=', where.subjectId)
        .where('action', '=', where.action)
        .where('actor', '=', where.actor)
        .where('step', '=', 'failed')
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      return (row?.details as Record<string, unknown> | undefined) ?? null;
    },

    /** How many times `actor` began `action` in the last `seconds` (intents: an attempt counts whatever its outcome). */
    async intentsWithin(actor: string, action: string, seconds: number): Promise<number> {
      const row = await recent(actor, action, seconds)
        .select(sql<string>`count(*)`.as('n'))
        .where('step', '=', 'intent')
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    },

    /** Whether `actor`'s `action` on `subjectId` succeeded in the last `seconds` (an outcome row that says so). */
    async succeededWithin(actor: string, action: string, subjectId: string, seconds: number): Promise<boolean> {
      const row = await recent(actor, action, seconds)
        .select('id')
        .where('step', 'in', ['done', 'reconciled'])
        .where('subject_id', '=', subjectId)
        .executeTakeFirst();
      return row !== undefined;
    },
  };
}
