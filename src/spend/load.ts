import { sql } from 'kysely';
import type { Db } from '../db/index.ts';
import { WINDOW_DAYS } from '../forecast/model.ts';
import { type Pico, usdToPico } from '../money.ts';
import { USAGE_WATERMARK } from '../usage/ingest.ts';
import { readWatermark } from '../usage/store.ts';

/**
 * What a spend projection run reads from Postgres: daily spend per workspace and key in the organization's
 * timezone, the month-to-date and the last two weeks per key and model (for "top drivers"), and the names of
 * workspaces and keys (limits name them; messages show them).
 */

/** One local day of one (workspace, key) pair; null ids: the Default Workspace, usage without an API key. */
export interface DailyCost {
  date: string;
  workspaceId: string | null;
  keyId: string | null;
  cost: Pico;
}

/** Spend of one (workspace, key, model) in the month to date, the last 7 complete days and the 7 before them. */
export interface DriverCost {
  workspaceId: string | null;
  keyId: string | null;
  model: string;
  monthToDate: Pico;
  last7: Pico;
  previous7: Pico;
}

/** The instant the data is complete to, placed in the organization's calendar. */
export interface SpendClock {
  /** The poll watermark (data is complete to here), or now when it is later or when nothing was polled yet. */
  asOf: Date;
  /** Local date of `asOf` (YYYY-MM-DD): the day in progress; its month is the month projected. */
  today: string;
  /** Local date of the month's first day. */
  monthStart: string;
  /** Elapsed part of today at `asOf` (a DST day is 23 or 25 hours long). */
  fractionElapsed: number;
}

export interface SpendInputs {
  clock: SpendClock;
  /** From 16 weeks before today (what the projection looks at) to `asOf`. */
  daily: DailyCost[];
  drivers: DriverCost[];
  workspaces: Map<string, string>;
  /** `scope`: `workspace` or `organization` (a key in no workspace, though its usage rows say null as for Default). */
  keys: Map<string, { name: string; workspaceId: string | null; scope: string; hint: string | null }>;
}

/**
 * Reads everything one run needs. The data is taken as complete to the poll watermark rather than to now: usage
 * arrives minutes late, and counting the missing minutes as "nothing spent yet today" would pull today's rate down.
 * Hourly rows (older than 48 h) are bucketed by the local day of their start: exact for whole-hour offsets.
 */
export async function loadSpendInputs(db: Db, timezone: string, now: Date): Promise<SpendInputs> {
  const watermark = await readWatermark(db, USAGE_WATERMARK);
  const asOf = watermark !== null && watermark < now ? watermark : now;
  const clock = await placeInCalendar(db, timezone, asOf);
  const local = sql`(starting_at AT TIME ZONE ${timezone})::date`;
  const localStart = (date: unknown) => sql`((${date})::date::timestamp AT TIME ZONE ${timezone})`;
  const windowStart = localStart(sql`${clock.today}::date - ${WINDOW_DAYS}::int`);
  // the identity index leads with (bucket_width, starting_at): naming the widths lets it serve the range
  const daily = await sql<{ date: string; workspace_id: string | null; api_key_id: string | null; cost: string }>`
    SELECT to_char(${local}, 'YYYY-MM-DD') AS date, workspace_id, api_key_id, sum(cost_usd)::text AS cost
    FROM usage_buckets
    WHERE bucket_width IN ('1m', '1h') AND starting_at >= ${windowStart} AND starting_at < ${asOf}
    GROUP BY 1, 2, 3
    ORDER BY 1`.execute(db);

  const today = sql`${clock.today}::date`;
  const drivers = await sql<{
    workspace_id: string | null;
    api_key_id: string | null;
    model: string;
    mtd: string;
    last7: string;
    previous7: string;
  }>`
    SELECT workspace_id, api_key_id, model,
      coalesce(sum(cost_usd) FILTER (WHERE ${local} >= ${clock.monthStart}::date), 0)::text AS mtd,
      coalesce(sum(cost_usd) FILTER (WHERE ${local} >= ${today} - 7 AND ${local} < ${today}), 0)::text AS last7,
      coalesce(sum(cost_usd) FILTER (WHERE ${local} >= ${today} - 14 AND ${local} < ${today} - 7), 0)::text
        AS previous7
    FROM usage_buckets
    WHERE bucket_width IN ('1m', '1h')
      AND starting_at >= ${localStart(sql`least(${clock.monthStart}::date, ${today} - 14)`)}
      AND starting_at < ${asOf}
    GROUP BY 1, 2, 3`.execute(db);

  const workspaces = await db.selectFrom('workspaces').select(['id', 'name']).execute();
  const keys = await db
    .selectFrom('api_keys')
    .select(['id', 'name', 'workspace_id', 'scope_type', 'partial_key_hint'])
    .execute();
  return {
    clock,
    daily: daily.rows.map((r) => ({
      date: r.date,
      workspaceId: r.workspace_id,
      keyId: r.api_key_id,
      cost: usdToPico(r.cost, 'usage_buckets.cost_usd'),
    })),
    drivers: drivers.rows.map((r) => ({
      workspaceId: r.workspace_id,
      keyId: r.api_key_id,
      model: r.model,
      monthToDate: usdToPico(r.mtd, 'usage_buckets.cost_usd'),
      last7: usdToPico(r.last7, 'usage_buckets.cost_usd'),
      previous7: usdToPico(r.previous7, 'usage_buckets.cost_usd'),
    })),
    workspaces: new Map(workspaces.map((w) => [w.id, w.name])),
    keys: new Map(
      keys.map((k) => [
        k.id,
        { name: k.name, workspaceId: k.workspace_id, scope: k.scope_type, hint: k.partial_key_hint },
      ]),
    ),
  };
}

/** Local date, month start and elapsed part of the day, from Postgres's time zone database (DST included). */
async function placeInCalendar(db: Db, timezone: string, asOf: Date): Promise<SpendClock> {
  const { rows } = await sql<{ today: string; month_start: string; fraction: number }>`
    WITH t AS (SELECT (${asOf}::timestamptz AT TIME ZONE ${timezone})::date AS d)
    SELECT to_char(d, 'YYYY-MM-DD') AS today,
      to_char(date_trunc('month', d), 'YYYY-MM-DD') AS month_start,
      extract(epoch FROM ${asOf}::timestamptz - (d::timestamp AT TIME ZONE ${timezone}))
        / extract(epoch FROM ((d + 1)::timestamp AT TIME ZONE ${timezone}) - (d::timestamp AT TIME ZONE ${timezone}))
        AS fraction
    FROM t`.execute(db);
  const row = rows[0]!;
  return {
    asOf,
    today: row.today,
    monthStart: row.month_start,
    fractionElapsed: Math.min(1, Math.max(0, Number(row.fraction))),
  };
}
