import { sql } from 'kysely';
import type { Db } from '../index.ts';

/** The month in progress in a timezone: from local midnight on the 1st (`monthStart`, YYYY-MM-01) until `until`. */
interface MonthToDate {
  monthStart: string;
  timezone: string;
  until: Date;
}

/** The usage family: priced usage (usage_buckets) and its drift from the cost report (cost_drift). */
export function usageRepo(db: Db) {
  // The month's first instant: local midnight on the 1st, whatever the offset that day.
  const monthFrom = (m: MonthToDate) => sql<Date>`(${m.monthStart}::timestamp AT TIME ZONE ${m.timezone})`;

  return {
    /** Priced usage per local day of the month (exact USD strings, summed in numeric); days without usage absent. */
    async dailySpend(m: MonthToDate): Promise<Array<{ day: string; usd: string }>> {
      const localDay = sql<string>`to_char(starting_at AT TIME ZONE ${m.timezone}, 'YYYY-MM-DD')`;
      return db
        .selectFrom('usage_buckets')
        .select([localDay.as('day'), sql<string>`sum(cost_usd)::text`.as('usd')])
        .where('bucket_width', 'in', ['1m', '1h'])
        .where('starting_at', '>=', monthFrom(m))
        .where('starting_at', '<', m.until)
        .groupBy(sql`1`)
        .orderBy(sql`1`)
        .execute();
    },

    /** Priced usage of the month per API key (id null: usage without a key), with the key's name and place. */
    async spendByKey(m: MonthToDate) {
      return db
        .selectFrom('usage_buckets as u')
        .leftJoin('api_keys as k', 'k.id', 'u.api_key_id')
        .leftJoin('workspaces as w', 'w.id', 'k.workspace_id')
        .select([
          'u.api_key_id as id',
          sql<string | null>`max(k.name)`.as('name'),
          sql<string | null>`max(k.workspace_id)`.as('workspace_id'),
          sql<string | null>`max(k.scope_type)`.as('scope_type'),
          sql<string | null>`max(w.name)`.as('workspace_name'),
          sql<string>`sum(u.cost_usd)::text`.as('usd'),
        ])
        .where('u.bucket_width', 'in', ['1m', '1h'])
        .where('u.starting_at', '>=', monthFrom(m))
        .where('u.starting_at', '<', m.until)
        .groupBy('u.api_key_id')
        .execute();
    },

    /** Priced usage of the month per workspace (id null: the Default Workspace), with its name. */
    async spendByWorkspace(m: MonthToDate) {
      return (
        db
          .selectFrom('usage_buckets as u')
          .leftJoin('workspaces as w', 'w.id', 'u.workspace_id')
          .leftJoin('api_keys as k', 'k.id', 'u.api_key_id')
          .select([
            'u.workspace_id as id',
            sql<string | null>`max(w.name)`.as('name'),
            sql<string>`sum(u.cost_usd)::text`.as('usd'),
          ])
          .where('u.bucket_width', 'in', ['1m', '1h'])
          .where('u.starting_at', '>=', monthFrom(m))
          .where('u.starting_at', '<', m.until)
          // an organization-scoped key's rows say no workspace, as the Default Workspace's do; it is in none
          .where(sql<boolean>`k.scope_type IS DISTINCT FROM 'organization'`)
          .groupBy('u.workspace_id')
          .execute()
      );
    },

    /** The drifted (UTC) days since `fromDay`, newest first, with each workspace's name. */
    async driftSince(fromDay: string) {
      return db
        .selectFrom('cost_drift as d')
        .leftJoin('workspaces as w', 'w.id', 'd.workspace_id')
        .select([
          'd.day',
          'd.workspace_id',
          'w.name as workspace_name',
          'd.reported_usd',
          'd.priced_usd',
          'd.drift_ratio',
        ])
        .where('d.day', '>=', fromDay)
        .orderBy('d.day', 'desc')
        .orderBy('w.name')
        .execute();
    },

    /** Per workspace (null: the Default Workspace), the largest drift recorded this UTC month. */
    async largestDriftThisMonth(): Promise<Array<{ workspaceId: string | null; ratio: number }>> {
      const rows = await db
        .selectFrom('cost_drift')
        .select(['workspace_id', sql<number>`max(drift_ratio)`.as('ratio')])
        .where('day', '>=', sql<string>`date_trunc('month', now() AT TIME ZONE 'UTC')::date`)
        .groupBy('workspace_id')
        .execute();
      return rows.map((r) => ({ workspaceId: r.workspace_id, ratio: Number(r.ratio) }));
    },
  };
}
