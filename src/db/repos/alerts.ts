import type { Db } from '../index.ts';

/** The `alerts` table: one row per alert (kind, scope, period) and its lifecycle state. */
export function alertsRepo(db: Db) {
  return {
    /** The scope ids of the alerts of `kinds` that are firing. */
    async firingScopeIds(kinds: readonly string[]): Promise<string[]> {
      const rows = await db
        .selectFrom('alerts')
        .select('scope_id')
        .where('kind', 'in', [...kinds])
        .where('state', '=', 'firing')
        .execute();
      return rows.map((r) => r.scope_id);
    },
  };
}
