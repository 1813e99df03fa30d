import { sql } from 'kysely';
import type { Db } from '../index.ts';

/** A digest for one target, as the outbox keeps it. */
interface DigestRow {
  channel: 'slack' | 'email';
  target: string;
}

/** The `notifications` table: the outbox every message goes out through. */
export function outboxRepo(db: Db) {
  return {
    /** Messages not yet sent (pending, or leased by a sender right now). */
    async pendingCount(): Promise<number> {
      const row = await db
        .selectFrom('notifications')
        .select(sql<string>`count(*)`.as('n'))
        .where('status', 'in', ['pending', 'sending'])
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    },

    /** The targets that already have the digest named by `fingerprint`. */
    async digestTargets(fingerprint: string): Promise<DigestRow[]> {
      return db
        .selectFrom('notifications')
        .select(['channel', 'target'])
        .where('fingerprint', '=', fingerprint)
        .where('event', '=', 'digest')
        .execute();
    },

    /**
     * One digest row per target, due now; a target that has it already is left alone by the outbox's unique key
     * (fingerprint, event, sequence, channel, target). Returns how many rows were new.
     */
    async insertDigest(fingerprint: string, payload: string, rows: readonly DigestRow[], now: Date): Promise<number> {
      if (rows.length === 0) return 0;
      const inserted = await db
        .insertInto('notifications')
        .values(
          rows.map((r) => ({
            alert_id: null,
            fingerprint,
            event: 'digest' as const,
            sequence: 0,
            channel: r.channel,
            target: r.target,
            payload,
            next_attempt_at: now,
            created_at: now,
          })),
        )
        .onConflict((oc) => oc.columns(['fingerprint', 'event', 'sequence', 'channel', 'target']).doNothing())
        .returning('id')
        .execute();
      return inserted.length;
    },
  };
}
