import { sql } from 'kysely';
import { type Pico, picoToUsd, usdToPico } from '../../money.ts';
import type { ActorSpend } from '../../usage/core/actors.ts';
import type { BilledCell, BilledRow, BilledWidth } from '../../usage/core/billed.ts';
import { organizationLock } from '../advisory-lock.ts';
import type { Db } from '../index.ts';
import { advanceWatermark, type WatermarkName } from './watermarks.ts';

/** Rows per insert: 13 columns a row, well under pg's 65,535 parameters, and a short turn of the event loop to build. */
const BATCH_ROWS = 500;

/** Which of the analytics endpoints an access record is about. */
type AnalyticsApiName = 'analytics.cost' | 'analytics.usage';

/** What was last seen of an analytics endpoint: answered (available) or refused, since when. */
interface AnalyticsAccess {
  available: boolean;
  reason: string | null;
  checkedAt: Date;
  changedAt: Date;
}

/** A key's billed cost over a range: as billed (post-discount) and at list price. */
interface KeyBilled {
  billed: Pico;
  list: Pico;
}

/** Billed cost in total, per key ('' for usage without a key) and per workspace (null: the Default Workspace). */
interface BilledSummary {
  total: KeyBilled;
  byKey: Map<string, KeyBilled>;
  byWorkspace: Map<string | null, KeyBilled>;
}

/**
 * `billed_costs` (the analytics cost API's rows per key, workspace and model; 1d for closed days, 1h for today) and
 * `analytics_access` (whether the analytics API answered when last asked). `schema`: the organization's configured schema, which names its locks (see organizationLock).
 */
export function billingRepo(db: Db, schema?: string) {
  return {
    /**
     * Replaces the stored rows of `width` in [start, end) with the rows `pages` yields, in one transaction open while
     * the pages are read (memory holds one page), and moves `watermark` to `end` with them; returns the rows written. Replacing 1d rows also removes the 1h rows before `end`: a closed day is kept as its day row.
     */
    async replaceBilled(
      range: { width: BilledWidth; start: Date; end: Date },
      pages: AsyncIterable<readonly BilledRow[]>,
      watermark: WatermarkName | null,
    ): Promise<number> {
      return db.transaction().execute(async (tx) => {
        // one writer at a time: two runs (a retry, a replica) replace in turn rather than interleave; per schema, as
        // it is held while the pages are read (one organization's hung Admin API must not hold the others' runs)
        await sql`SELECT pg_advisory_xact_lock(hashtext(${organizationLock('keywarden.billed_costs', schema)}))`.execute(
          tx,
        );
        await tx
          .deleteFrom('billed_costs')
          .where('bucket_width', '=', range.width)
          .where('starting_at', '>=', range.start)
          .where('starting_at', '<', range.end)
          .execute();
        if (range.width === '1d') {
          await tx
            .deleteFrom('billed_costs')
            .where('bucket_width', '=', '1h')
            .where('starting_at', '<', range.end)
            .execute();
        }
        let written = 0;
        for await (const rows of pages) {
          written += rows.length;
          for (let i = 0; i < rows.length; i += BATCH_ROWS) {
            await tx
              .insertInto('billed_costs')
              .values(
                rows.slice(i, i + BATCH_ROWS).map((r) => ({
                  bucket_width: r.width,
                  starting_at: r.startingAt,
                  api_key_id: r.apiKeyId,
                  workspace_id: r.workspaceId,
                  model: r.model,
                  actor_type: r.actor?.type ?? null,
                  actor_id: r.actor?.id ?? '',
                  actor_label: r.actor?.label ?? null,
                  amount_usd: picoToUsd(r.amount),
                  list_amount_usd: picoToUsd(r.listAmount),
                  requests: r.requests,
                  currency: r.currency,
                  data_refreshed_at: r.dataRefreshedAt,
                })),
              )
              // the API ranks live data: a walk that outlasts a refresh can meet a row again on a later page (it
              // moved up past the page boundary); the later answer is the newer one
              .onConflict((oc) =>
                oc
                  .expression(sql`bucket_width, starting_at, api_key_id, coalesce(workspace_id, ''), model, actor_id`)
                  .doUpdateSet((eb) => ({
                    actor_type: eb.ref('excluded.actor_type'),
                    actor_label: eb.ref('excluded.actor_label'),
                    amount_usd: eb.ref('excluded.amount_usd'),
                    list_amount_usd: eb.ref('excluded.list_amount_usd'),
                    requests: eb.ref('excluded.requests'),
                    currency: eb.ref('excluded.currency'),
                    data_refreshed_at: eb.ref('excluded.data_refreshed_at'),
                  })),
              )
              .execute();
          }
        }
        if (watermark !== null) await advanceWatermark(tx, watermark, range.end);
        return written;
      });
    },

    /** The stored bill per key, model and period starting in [from, to). */
    async billedCells(from: Date, to: Date): Promise<BilledCell[]> {
      const rows = await db
        .selectFrom('billed_costs')
        .select(['api_key_id', 'model', 'bucket_width', 'starting_at', 'amount_usd', 'list_amount_usd'])
        .where('starting_at', '>=', from)
        .where('starting_at', '<', to)
        .execute();
      return rows.map((r) => ({
        keyId: r.api_key_id,
        model: r.model,
        width: r.bucket_width,
        start: new Date(r.starting_at),
        amount: usdToPico(r.amount_usd),
        listAmount: usdToPico(r.list_amount_usd),
      }));
    },

    /**
     * Billed cost over [from, to) per key and per workspace (null: the Default Workspace), and in total; null when
     * nothing billed is stored there (the analytics API refused, or nothing was read yet): "unknown", not zero.
     */
    async billedSummary(from: Date, to: Date): Promise<BilledSummary | null> {
      const rows = await db
        .selectFrom('billed_costs')
        .select([
          'api_key_id',
          'workspace_id',
          sql<string>`sum(amount_usd)::text`.as('billed'),
          sql<string>`sum(list_amount_usd)::text`.as('list'),
        ])
        .where('starting_at', '>=', from)
        .where('starting_at', '<', to)
        .groupBy(['api_key_id', 'workspace_id'])
        .execute();
      if (rows.length === 0) return null;
      const add = <K>(map: Map<K, KeyBilled>, id: K, b: KeyBilled) => {
        const prev = map.get(id) ?? { billed: 0n, list: 0n };
        map.set(id, { billed: prev.billed + b.billed, list: prev.list + b.list });
      };
      const summary: BilledSummary = { total: { billed: 0n, list: 0n }, byKey: new Map(), byWorkspace: new Map() };
      for (const r of rows) {
        const b = { billed: usdToPico(r.billed), list: usdToPico(r.list) };
        summary.total = { billed: summary.total.billed + b.billed, list: summary.total.list + b.list };
        add(summary.byKey, r.api_key_id, b);
        add(summary.byWorkspace, r.workspace_id, b);
      }
      return summary;
    },

    /**
     * Billed spend per actor (who the analytics cost API attributes it to) over periods starting in [from, to), of
     * one key when `apiKeyId` is given; largest first. Empty where nothing billed is stored (no analytics access).
     */
    async actorSpend(from: Date, to: Date, apiKeyId?: string): Promise<ActorSpend[]> {
      let q = db
        .selectFrom('billed_costs')
        .select([
          'actor_type',
          'actor_id',
          // a user's email can change within the range: the latest spelling is as good as any
          sql<string | null>`max(actor_label)`.as('label'),
          sql<string>`sum(amount_usd)::text`.as('billed'),
          sql<string>`sum(list_amount_usd)::text`.as('list'),
          sql<string>`coalesce(sum(requests), 0)::text`.as('requests'),
          sql<string>`count(DISTINCT api_key_id)::text`.as('keys'),
        ])
        .where('starting_at', '>=', from)
        .where('starting_at', '<', to);
      if (apiKeyId !== undefined) q = q.where('api_key_id', '=', apiKeyId);
      const rows = await q.groupBy(['actor_type', 'actor_id']).orderBy(sql`sum(amount_usd)`, 'desc').execute();
      return rows.map((r) => ({
        type: r.actor_type,
        id: r.actor_id,
        label: r.label,
        billed: usdToPico(r.billed),
        list: usdToPico(r.list),
        requests: Number(r.requests),
        keys: Number(r.keys),
      }));
    },

    /** The newest instant the stored bill covers completely (its pages' `data_refreshed_at`); null when none. */
    async billedRefreshedAt(): Promise<Date | null> {
      const row = await db
        .selectFrom('billed_costs')
        .select(sql<Date | null>`max(data_refreshed_at)`.as('at'))
        .executeTakeFirst();
      return row?.at ? new Date(row.at) : null;
    },

    /** What was last seen of `api`; null before it was first asked. */
    async access(api: AnalyticsApiName): Promise<AnalyticsAccess | null> {
      const r = await db.selectFrom('analytics_access').selectAll().where('api', '=', api).executeTakeFirst();
      if (!r) return null;
      return {
        available: r.available,
        reason: r.reason,
        checkedAt: new Date(r.checked_at),
        changedAt: new Date(r.changed_at),
      };
    },

    /** Records whether `api` answered at `at`; returns whether that differs from the record before (or is the first). */
    async recordAccess(api: AnalyticsApiName, available: boolean, reason: string | null, at: Date): Promise<boolean> {
      const before = await db
        .selectFrom('analytics_access')
        .select('available')
        .where('api', '=', api)
        .executeTakeFirst();
      const changed = before?.available !== available;
      await db
        .insertInto('analytics_access')
        .values({ api, available, reason, checked_at: at, changed_at: at })
        .onConflict((oc) =>
          oc.column('api').doUpdateSet({
            available,
            reason,
            checked_at: at,
            changed_at: changed ? at : sql`analytics_access.changed_at`,
          }),
        )
        .execute();
      return changed;
    },
  };
}
