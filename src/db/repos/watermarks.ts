import type { Db } from '../index.ts';

/** The `watermarks` table: how far each catch-up job has got, kept in Postgres so a restart resumes there. */
export function watermarksRepo(db: Db) {
  return {
    /** The position stored under `name`, or null before the first run. */
    async read(name: string): Promise<Date | null> {
      const row = await db.selectFrom('watermarks').select('position').where('name', '=', name).executeTakeFirst();
      return row ? new Date(row.position) : null;
    },

    /** When `name` was last moved, by the database's clock; null before the first run. */
    async movedAt(name: string): Promise<Date | null> {
      const row = await db.selectFrom('watermarks').select('updated_at').where('name', '=', name).executeTakeFirst();
      return row ? new Date(row.updated_at) : null;
    },
  };
}
