import { type Selectable, sql } from 'kysely';
import type { SpendScopeType } from '../../kinds.ts';
import { type Pico, picoToUsd, usdToPico } from '../../money.ts';
import type { SpendClock } from '../../spend/core/inputs.ts';
import type { SeenLimit } from '../../spend/core/limit-changes.ts';
import type { ScopeProjection } from '../../spend/core/project.ts';
import { DAY_MS } from '../../time.ts';
import type { Db } from '../index.ts';
import type { ProjectionsTable } from '../types.ts';

/** Every run's projections are kept this long; older ones are thinned to the last of each scope and UTC day. */
const PROJECTIONS_KEPT_DAYS = 7;

/** `projections`: every run's month-end projection of every scope, and the organization's calendar from Postgres. */
export function spendRepo(db: Db) {
  return {
    /** One run's projections, stored whole, and the old runs thinned (`storeProjections`). */
    store: (projections: readonly ScopeProjection[], madeAt: Date) => storeProjections(db, projections, madeAt),
    /** The latest run's projection of every scope. */
    latest: () => latestProjections(db),
    /** Each scope's newest projection of `month` (`YYYY-MM`) made by `at`. */
    ofMonth: (opts: { month: string; at: Date }) => projectionsOfMonth(db, opts),
    /** `asOf` in the organization's calendar: local date, month start, elapsed part of the day. */
    calendarAt: (timezone: string, asOf: Date) => placeInCalendar(db, timezone, asOf),
    /** When the newest stored projection was made; null before the first. */
    async lastProjectionAt(): Promise<Date | null> {
      const row = await db.selectFrom('projections').select(sql<Date | null>`max(made_at)`.as('at')).executeTakeFirst();
      return row?.at ? new Date(row.at) : null;
    },
    /** The limits the Spend Limits API returned last, and where limits come from now. */
    async seenLimits(): Promise<{ limits: SeenLimit[]; source: LimitSourceState | null }> {
      const [rows, source] = await Promise.all([
        db.selectFrom('spend_limits_seen').selectAll().orderBy('limit_id').execute(),
        db.selectFrom('spend_limits_source').selectAll().where('id', '=', 1).executeTakeFirst(),
      ]);
      return {
        limits: rows.map((r) => ({
          id: r.limit_id,
          scopeType: r.scope_type,
          workspaceId: r.workspace_id,
          period: r.period,
          amountMinor: r.amount_minor === null ? null : BigInt(r.amount_minor),
          currency: r.currency,
          isEnabled: r.is_enabled,
          updatedAt: new Date(r.updated_at),
        })),
        source: source
          ? {
              source: source.source,
              reason: source.reason,
              since: new Date(source.since),
              readAt: source.read_at === null ? null : new Date(source.read_at),
            }
          : null,
      };
    },
    /** A successful read: the limits it returned replace the ones seen before, and the API is the source. */
    saveLimitRead: (limits: readonly SeenLimit[], at: Date) =>
      db.transaction().execute(async (tx) => {
        await tx.deleteFrom('spend_limits_seen').execute();
        if (limits.length > 0) {
          await tx
            .insertInto('spend_limits_seen')
            .values(
              limits.map((l) => ({
                limit_id: l.id,
                scope_type: l.scopeType,
                workspace_id: l.workspaceId,
                period: l.period,
                amount_minor: l.amountMinor === null ? null : String(l.amountMinor),
                currency: l.currency,
                is_enabled: l.isEnabled,
                updated_at: l.updatedAt,
                seen_at: at,
              })),
            )
            .execute();
        }
        await upsertSource(tx, 'api', null, at, at);
      }),
    /** Limits come from the policy file alone (the API refused, or the policy turned the API off), for `reason`. */
    usePolicyLimits: (reason: string, at: Date) => upsertSource(db, 'policy', reason, at, null),
  };
}

/** Where spend limits come from, as spend_limits_source keeps it. */
export interface LimitSourceState {
  source: 'api' | 'policy';
  reason: string | null;
  since: Date;
  /** The last successful read of the API; null: never. */
  readAt: Date | null;
}

/** `since` moves only when the source or its reason changes; `read_at` only on a successful read. */
async function upsertSource(
  db: Db,
  source: 'api' | 'policy',
  reason: string | null,
  at: Date,
  readAt: Date | null,
): Promise<void> {
  await db
    .insertInto('spend_limits_source')
    .values({ id: 1, source, reason, since: at, read_at: readAt })
    .onConflict((oc) =>
      oc.column('id').doUpdateSet({
        since: sql`CASE WHEN spend_limits_source.source = excluded.source
                         AND spend_limits_source.reason IS NOT DISTINCT FROM excluded.reason
                        THEN spend_limits_source.since ELSE excluded.since END`,
        source: (eb) => eb.ref('excluded.source'),
        reason: (eb) => eb.ref('excluded.reason'),
        read_at: sql`coalesce(excluded.read_at, spend_limits_source.read_at)`,
      }),
    )
    .execute();
}

/**
 * Stores one run's projections, all with the time they were made, and thins the old ones: a run every 15 minutes
 * for 5,000 keys is ~480k rows a day, while the history worth keeping is how each scope's projection moved day by
 * day. One transaction: a run's rows are stored whole or not at all.
 */
async function storeProjections(db: Db, projections: readonly ScopeProjection[], madeAt: Date): Promise<void> {
  await db.transaction().execute(async (tx) => {
    // pg has a limit of 65535 parameters per statement; 11 columns a row
    for (let i = 0; i < projections.length; i += 2000) {
      await tx
        .insertInto('projections')
        .values(
          projections.slice(i, i + 2000).map((p) => ({
            made_at: madeAt,
            month: `${p.month}-01`,
            scope_type: p.scope.type,
            scope_id: p.scope.id,
            mtd_usd: picoToUsd(p.monthToDate),
            p10_usd: picoToUsd(p.p10),
            p50_usd: picoToUsd(p.p50),
            p90_usd: picoToUsd(p.p90),
            limit_usd: p.scope.limit === null ? null : picoToUsd(p.scope.limit),
            crossing_p50: p.scope.limit === null ? null : p.crossing.p50,
            crossing_p90: p.scope.limit === null ? null : p.crossing.p90,
            method: p.method,
          })),
        )
        .execute();
    }
    const cutoff = new Date(madeAt.getTime() - PROJECTIONS_KEPT_DAYS * DAY_MS);
    // only the rows that aged out lately (runs are minutes apart; two days allow for a stopped worker): older ones
    // were thinned by earlier runs, and scanning them again every run would grow with the years kept
    const since = new Date(cutoff.getTime() - 2 * DAY_MS);
    await sql`
      DELETE FROM projections p
      WHERE p.made_at < ${cutoff} AND p.made_at >= ${since}
        AND EXISTS (
          SELECT 1 FROM projections q
          WHERE q.scope_type = p.scope_type AND q.scope_id = p.scope_id AND q.month = p.month
            AND q.made_at > p.made_at AND q.made_at < ${cutoff}
            AND (q.made_at AT TIME ZONE 'UTC')::date = (p.made_at AT TIME ZONE 'UTC')::date
        )`.execute(tx);
  });
}

export interface StoredProjection {
  madeAt: Date;
  month: string;
  scopeType: SpendScopeType;
  scopeId: string;
  monthToDate: Pico;
  p10: Pico;
  p50: Pico;
  p90: Pico;
  limit: Pico | null;
  crossingP50: string | null;
  crossingP90: string | null;
  method: string;
}

/**
 * The latest run's projection of every scope: the rows made at the newest `made_at` (two replicas running at
 * once store the same projection twice; one of each scope is kept).
 */
async function latestProjections(db: Db): Promise<StoredProjection[]> {
  const latest = await db.selectFrom('projections').select(sql<Date>`max(made_at)`.as('at')).executeTakeFirst();
  if (!latest?.at) return [];
  const rows = await db
    .selectFrom('projections')
    .selectAll()
    .distinctOn(['scope_type', 'scope_id'])
    .where('made_at', '=', latest.at)
    .orderBy('scope_type')
    .orderBy('scope_id')
    .orderBy('id', 'desc')
    .execute();
  return rows.map(toStored);
}

/**
 * Each scope's newest projection of `month` (`YYYY-MM`) made by `at`: a scope left out of the latest run keeps
 * its earlier one, and a clock set in the past sees the projections of its own time (projections_scope index:
 * scope, month, made_at desc).
 */
async function projectionsOfMonth(db: Db, opts: { month: string; at: Date }): Promise<StoredProjection[]> {
  const rows = await db
    .selectFrom('projections')
    .selectAll()
    .distinctOn(['scope_type', 'scope_id'])
    .where('month', '=', `${opts.month}-01`)
    .where('made_at', '<=', opts.at)
    .orderBy('scope_type')
    .orderBy('scope_id')
    .orderBy('made_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
  return rows.map(toStored);
}

function toStored(r: Selectable<ProjectionsTable>): StoredProjection {
  const money = (v: string) => usdToPico(v, 'projections');
  return {
    madeAt: new Date(r.made_at),
    month: r.month.slice(0, 7),
    scopeType: r.scope_type,
    scopeId: r.scope_id,
    monthToDate: money(r.mtd_usd),
    p10: money(r.p10_usd),
    p50: money(r.p50_usd),
    p90: money(r.p90_usd),
    limit: r.limit_usd === null ? null : money(r.limit_usd),
    crossingP50: r.crossing_p50,
    crossingP90: r.crossing_p90,
    method: r.method,
  };
}

/**
 * `asOf` placed in the organization's calendar: local date, month start and elapsed part of the day, from
 * Postgres's time zone database (DST included).
 */
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
