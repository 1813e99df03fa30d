import { sql } from 'kysely';
import type { Db } from '../index.ts';

/** The `alerts` table family: the alert lifecycle's record. */
export function alertsRepo(db: Db) {
  return {
    /** How many alerts of each kind there are (every one ever fired, or only those firing now). */
    async countByKind(opts: { firingOnly: boolean }): Promise<Array<{ kind: string; count: number }>> {
      let q = db.selectFrom('alerts').select(['kind', sql<string>`count(*)`.as('n')]);
      if (opts.firingOnly) q = q.where('state', '=', 'firing');
      const rows = await q.groupBy('kind').execute();
      return rows.map((r) => ({ kind: r.kind, count: Number(r.n) }));
    },
  };
}
