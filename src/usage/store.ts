import { type Insertable, sql } from 'kysely';
import type { UsageResult } from '../anthropic/types.ts';
import type { Db } from '../db/index.ts';
import type { UsageBucketsTable } from '../db/types.ts';
import { picoToUsd } from '../money.ts';
import type { PriceTable } from './prices.ts';
import { priceUsage } from './pricing.ts';

/** Rows per upsert statement: large enough to amortise a round trip, small enough to keep memory flat. */
const BATCH_ROWS = 5000;

export interface UsageRowAt {
  startingAt: Date;
  result: UsageResult;
}

/**
 * A report row priced and shaped as a `usage_buckets` row. The identity columns are NOT NULL for model, tier and
 * window: usage reported without one (not grouped, or Console usage) is stored under '' rather than dropped.
 */
export function toUsageBucketRow(
  width: '1m' | '1h' | '1d',
  row: UsageRowAt,
  table: PriceTable,
): Insertable<UsageBucketsTable> {
  const r = row.result;
  const priced = priceUsage(r, table, row.startingAt);
  return {
    bucket_width: width,
    starting_at: row.startingAt,
    api_key_id: r.api_key_id,
    workspace_id: r.workspace_id,
    model: r.model ?? '',
    service_tier: r.service_tier ?? '',
    context_window: r.context_window ?? '',
    uncached_input_tokens: r.uncached_input_tokens,
    cache_read_input_tokens: r.cache_read_input_tokens,
    cache_creation_5m_input_tokens: r.cache_creation_5m_input_tokens,
    cache_creation_1h_input_tokens: r.cache_creation_1h_input_tokens,
    output_tokens: r.output_tokens,
    web_search_requests: r.web_search_requests,
    cost_usd: picoToUsd(priced.cost),
    priced_by: priced.pricedBy,
  };
}

/**
 * Replaces the stored usage of one width in [start, end) with the rows `pages` yields, and moves the watermark to
 * `end`, in one transaction that stays open while the pages are read: a page is written as it arrives, so memory
 * holds one page, never a whole chunk. Replace, not add: re-reading a range (the overlap, or a retry after a crash)
 * gives identical rows, and a minute that a late correction lowered, or emptied, is lowered or emptied here too.
 * The watermark only moves with the rows it covers, so a process that dies mid-poll (between pages, or before the
 * commit) leaves the previous state whole and the next poll re-reads. Returns the rows written and the models seen
 * for the first time (`recordUnknownModels`).
 */
export async function replaceUsageRange(
  db: Db,
  range: { start: Date; end: Date },
  pages: AsyncIterable<readonly Insertable<UsageBucketsTable>[]>,
  watermarkName: string,
  seenAt: Date,
  width: '1m' | '1h' = '1m',
  /** A second watermark moved in the same commit (never backwards): the newest data the pages held, read at the end. */
  dataEdge?: { name: string; position: () => Date | null },
): Promise<{ rows: number; newUnknownModels: string[] }> {
  return db.transaction().execute(async (tx) => {
    // One writer per watermark at a time: a second poll (a retry, a replica) waits for this one's commit, so its
    // DELETE sees these rows and replaces them, rather than skipping rows inserted after its statement began.
    await sql`SELECT pg_advisory_xact_lock(hashtext(${`keywarden.usage:${watermarkName}`}))`.execute(tx);
    await tx
      .deleteFrom('usage_buckets')
      .where('bucket_width', '=', width)
      .where('starting_at', '>=', range.start)
      .where('starting_at', '<', range.end)
      .execute();
    let rows = 0;
    const unknown = new Map<string, 'family_max' | 'global_max'>();
    for await (const page of pages) {
      await upsertUsageBuckets(tx, page);
      rows += page.length;
      for (const r of page) {
        if (r.priced_by === 'family_max' || r.priced_by === 'global_max') unknown.set(r.model, r.priced_by);
      }
    }
    await advanceWatermark(tx, watermarkName, range.end);
    const edge = dataEdge?.position() ?? null;
    if (dataEdge && edge !== null) await advanceWatermark(tx, dataEdge.name, edge);
    return { rows, newUnknownModels: await recordUnknownModels(tx, unknown, seenAt) };
  });
}

/**
 * Models priced at a maximum because the table lacks them, recorded once each (`pricing.unknown_model` fires from
 * this table once per model). Returns the models seen for the first time.
 */
async function recordUnknownModels(
  db: Db,
  unknown: ReadonlyMap<string, 'family_max' | 'global_max'>,
  seenAt: Date,
): Promise<string[]> {
  if (unknown.size === 0) return [];
  const inserted = await db
    .insertInto('pricing_unknown_models')
    .values([...unknown].map(([model, priced_by]) => ({ model, priced_by, first_seen_at: seenAt })))
    .onConflict((oc) => oc.column('model').doNothing())
    .returning('model')
    .execute();
  return inserted.map((r) => r.model).sort();
}

const UPSERT_COLUMNS = [
  ['bucket_width', 'text'],
  ['starting_at', 'timestamptz'],
  ['api_key_id', 'text'],
  ['workspace_id', 'text'],
  ['model', 'text'],
  ['service_tier', 'text'],
  ['context_window', 'text'],
  ['uncached_input_tokens', 'bigint'],
  ['cache_read_input_tokens', 'bigint'],
  ['cache_creation_5m_input_tokens', 'bigint'],
  ['cache_creation_1h_input_tokens', 'bigint'],
  ['output_tokens', 'bigint'],
  ['web_search_requests', 'bigint'],
  ['cost_usd', 'numeric'],
  ['priced_by', 'text'],
] as const;

/**
 * A bucket row written again replaces its values (never adds to them): the identity index, and every measure set from
 * the new row. Shared with the ingest bench's COPY ceiling, so the ceiling does the same work per row.
 */
export const USAGE_UPSERT_CONFLICT = `ON CONFLICT (bucket_width, starting_at, api_key_id, workspace_id, model, service_tier, context_window)
  DO UPDATE SET
    uncached_input_tokens = excluded.uncached_input_tokens,
    cache_read_input_tokens = excluded.cache_read_input_tokens,
    cache_creation_5m_input_tokens = excluded.cache_creation_5m_input_tokens,
    cache_creation_1h_input_tokens = excluded.cache_creation_1h_input_tokens,
    output_tokens = excluded.output_tokens,
    web_search_requests = excluded.web_search_requests,
    cost_usd = excluded.cost_usd,
    priced_by = excluded.priced_by,
    updated_at = now()`;

/**
 * One set-based upsert on the identity index; values are set, never added, so a repeat is harmless. The rows go
 * as one array per column (unnest): 15 bind parameters whatever the batch size, where a multi-row VALUES list
 * costs 15 per row and spends most of its time parsing and binding them.
 */
export async function upsertUsageBuckets(db: Db, rows: readonly Insertable<UsageBucketsTable>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += BATCH_ROWS) await upsertBatch(db, rows.slice(i, i + BATCH_ROWS));
}

async function upsertBatch(db: Db, rows: readonly Insertable<UsageBucketsTable>[]): Promise<void> {
  const arrays = UPSERT_COLUMNS.map(
    ([column, type]) => sql`${sql.val(arrayLiteral(rows, column))}::${sql.raw(type)}[]`,
  );
  await sql`
    INSERT INTO usage_buckets (${sql.join(UPSERT_COLUMNS.map(([c]) => sql.ref(c)))})
    SELECT * FROM unnest(${sql.join(arrays)})
    ${sql.raw(USAGE_UPSERT_CONFLICT)}
  `.execute(db);
}

/**
 * One column of the batch as a Postgres array literal (`{1,apikey_01,"a \\"quoted\\" name",NULL}`), built with one
 * join. Handing pg a JS array instead makes it concatenate the literal element by element, quoting and escaping
 * each with two regex passes: the largest allocation of a poll cycle (`npm run bench -- ingest`). Numbers, ids and
 * timestamps need no quotes; anything else is quoted, with `"` and `\` escaped.
 */
function arrayLiteral(rows: readonly Insertable<UsageBucketsTable>[], column: (typeof UPSERT_COLUMNS)[number][0]) {
  const elements = new Array<string>(rows.length);
  // a bucket's rows share its Date: format it once
  let lastDate: Date | null = null;
  let lastDateText = '';
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i]![column];
    if (v === undefined || v === null) {
      elements[i] = 'NULL';
      continue;
    }
    if (v instanceof Date && v !== lastDate) {
      lastDate = v;
      lastDateText = v.toISOString();
    }
    const text = v instanceof Date ? lastDateText : String(v);
    elements[i] = UNQUOTED.test(text) && !/^null$/i.test(text) ? text : `"${text.replace(/["\\]/g, '\\$&')}"`;
  }
  return `{${elements.join(',')}}`;
}

/** Array elements that read the same without quotes: no separator, brace, quote, backslash or space. */
const UNQUOTED = /^[\w.:+-]+$/;

async function advanceWatermark(db: Db, name: string, position: Date): Promise<void> {
  await db
    .insertInto('watermarks')
    .values({ name, position })
    .onConflict((oc) =>
      oc.column('name').doUpdateSet({
        // never backwards: a slow run finishing after a newer one must not undo its progress
        position: sql`greatest(watermarks.position, excluded.position)`,
        updated_at: sql`now()`,
      }),
    )
    .execute();
}

export async function readWatermark(db: Db, name: string): Promise<Date | null> {
  const row = await db.selectFrom('watermarks').select('position').where('name', '=', name).executeTakeFirst();
  return row ? new Date(row.position) : null;
}

/** The most rows one bucket of `width` holds among the `buckets` buckets stored before `before` (null: none stored). */
export async function mostRowsPerBucket(
  db: Db,
  width: '1m' | '1h',
  before: Date,
  buckets: number,
): Promise<number | null> {
  const span = width === '1m' ? 60_000 : 3_600_000;
  const r = await sql<{ n: string | null }>`
    SELECT max(n)::text AS n FROM (
      SELECT count(*) AS n FROM usage_buckets
      WHERE bucket_width = ${width} AND starting_at >= ${new Date(before.getTime() - buckets * span)}
        AND starting_at < ${before}
      GROUP BY starting_at) b`.execute(db);
  const n = r.rows[0]?.n;
  return n === null || n === undefined ? null : Number(n);
}
