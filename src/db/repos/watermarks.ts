import { sql } from 'kysely';
import type { Db } from '../index.ts';

/**
 * Every watermark's name, defined once. `usage` is the end of the last 1m range committed: where the next poll goes
 * on from. `usageSettled` is the end of the newest minute the API answered with data: how far usage is really known
 * (src/usage/core/freshness.ts), never the range asked for, which the API answers with empty buckets for minutes it has
 * not filled yet. `usageBackfill` is how far the first poll's hourly backfill has got. `billedDays` is the first
 * UTC day whose billed cost (analytics cost API, 1d rows) is not stored yet.
 */
export const WATERMARKS = {
  usage: 'poll-usage',
  usageSettled: 'poll-usage.settled',
  usageBackfill: 'poll-usage.backfill',
  billedDays: 'reconcile-costs.billed-days',
} as const;

export type WatermarkName = (typeof WATERMARKS)[keyof typeof WATERMARKS];

/** The `watermarks` table: how far each catch-up job has got, kept in Postgres so a restart resumes there. */
export function watermarksRepo(db: Db) {
  return {
    /** The position stored under `name`, or null before the first run. */
    async read(name: WatermarkName): Promise<Date | null> {
      const row = await db.selectFrom('watermarks').select('position').where('name', '=', name).executeTakeFirst();
      return row ? new Date(row.position) : null;
    },

    /**
     * When `name` last moved, by the database's clock (null before the first run): two runs after the same commit
     * see the same instant, whatever their own clocks say.
     */
    async movedAt(name: WatermarkName): Promise<Date | null> {
      const row = await db.selectFrom('watermarks').select('updated_at').where('name', '=', name).executeTakeFirst();
      return row ? new Date(row.updated_at) : null;
    },
  };
}

/**
 * Moves `name` to `position` inside the caller's transaction (the usage repository moves its watermarks in the
 * commit of the rows they cover), never backwards: a slow run finishing after a newer one keeps the newer's progress.
 */
export async function advanceWatermark(db: Db, name: WatermarkName, position: Date): Promise<void> {
  await db
    .insertInto('watermarks')
    .values({ name, position })
    .onConflict((oc) =>
      oc.column('name').doUpdateSet({
        position: sql`greatest(watermarks.position, excluded.position)`,
        updated_at: sql`now()`,
      }),
    )
    .execute();
}
