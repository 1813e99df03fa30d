import { sql } from 'kysely';
import type { Db } from '../index.ts';

/** The `audit_log` table: an intent row before every outside action, an outcome row after it. */
export function auditRepo(db: Db) {
  /** Rows of `actor`'s `action` written within `seconds` of the database's clock (a run's clock may be simulated). */
  const recent = (actor: string, action: string, seconds: number) =>
    db
      .selectFrom('audit_log')
      .where('actor', '=', actor)
      .where('action', '=', action)
      .where('at', '>', sql<Date>`now() - make_interval(secs => ${seconds})`);
  return {
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
