import { sql } from 'kysely';
import { expect } from 'vitest';
import type { Db } from '../../src/db/index.ts';
import { WATERMARKS } from '../../src/db/repos/watermarks.ts';
import type { Emulator } from '../../src/emulator/server.ts';

/**
 * Stored usage against the emulator's ground truth (its usage is a pure function of key and minute), cell by cell
 * and to the token: `key|bucket start|model|tier|context window` → the five token counts.
 */

const MINUTE = 60_000;
const HOUR = 3_600_000;
const COUNT_FIELDS = [
  'uncached_input_tokens',
  'cache_read_input_tokens',
  'cache_creation_5m_input_tokens',
  'cache_creation_1h_input_tokens',
  'output_tokens',
] as const;

const cellId = (key: string, at: number, model: string, tier: string, cw: string) =>
  `${key}|${new Date(at).toISOString()}|${model}|${tier}|${cw}`;

export type UsageCells = Map<string, string>;

/** The stored rows of one width in [from, to). */
export async function storedUsage(db: Db, width: '1m' | '1h', from: Date, to: Date): Promise<UsageCells> {
  const rows = await db
    .selectFrom('usage_buckets')
    .selectAll()
    .where('bucket_width', '=', width)
    .where('starting_at', '>=', from)
    .where('starting_at', '<', to)
    .execute();
  return new Map(
    rows.map((r) => [
      cellId(r.api_key_id ?? '', new Date(r.starting_at).getTime(), r.model, r.service_tier, r.context_window),
      COUNT_FIELDS.map((f) => String(r[f])).join(','),
    ]),
  );
}

/** What the emulator's organization used in [from, to), in buckets of `width` (non-zero cells only). */
export function truthUsage(emulator: Emulator, width: '1m' | '1h', from: Date, to: Date): UsageCells {
  const step = width === '1m' ? MINUTE : HOUR;
  const sums = new Map<string, bigint[]>();
  for (const key of emulator.state.keys) {
    for (let m = from.getTime(); m < to.getTime(); m += MINUTE) {
      const bucket = Math.floor(m / step) * step;
      for (const c of emulator.usageAt(key.id, new Date(m))) {
        const id = cellId(key.id, bucket, c.model, c.service_tier, c.context_window);
        const sum = sums.get(id) ?? COUNT_FIELDS.map(() => 0n);
        COUNT_FIELDS.forEach((f, i) => {
          sum[i]! += BigInt(c[f]);
        });
        sums.set(id, sum);
      }
    }
  }
  const out: UsageCells = new Map();
  for (const [id, sum] of sums) if (sum.some((v) => v !== 0n)) out.set(id, sum.join(','));
  return out;
}

/** Identity groups stored more than once (the unique index should make this 0 whatever happened). */
export async function duplicateUsageRows(db: Db): Promise<number> {
  const r = await sql<{ n: string }>`
    SELECT count(*) AS n FROM (
      SELECT 1 FROM usage_buckets
      GROUP BY bucket_width, starting_at, api_key_id, workspace_id, model, service_tier, context_window
      HAVING count(*) > 1) d`.execute(db);
  return Number(r.rows[0]!.n);
}

/**
 * The whole stored history against the ground truth: hourly rows from `backfillStart` to where the 1m history
 * begins (the backfill's watermark), 1m rows from there to the poll's watermark, nothing outside those ranges
 * (no hourly row over the 1m history: no usage counted twice), and no duplicate rows.
 */
export async function expectUsageEqualsTruth(db: Db, emulator: Emulator, backfillStart: Date): Promise<void> {
  const mark = async (name: string) => {
    const row = await db.selectFrom('watermarks').select('position').where('name', '=', name).executeTakeFirst();
    if (!row) throw new Error(`no watermark ${name}: the poll never completed`);
    return new Date(row.position);
  };
  const minuteFrom = await mark(WATERMARKS.usageBackfill);
  const minuteTo = await mark(WATERMARKS.usage);
  expect(await storedUsage(db, '1h', backfillStart, minuteFrom)).toEqual(
    truthUsage(emulator, '1h', backfillStart, minuteFrom),
  );
  expect(await storedUsage(db, '1m', minuteFrom, minuteTo)).toEqual(truthUsage(emulator, '1m', minuteFrom, minuteTo));
  const strays = await db
    .selectFrom('usage_buckets')
    .select(sql<string>`count(*)`.as('n'))
    .where((eb) =>
      eb.or([
        eb.and([
          eb('bucket_width', '=', '1h'),
          eb.or([eb('starting_at', '<', backfillStart), eb('starting_at', '>=', minuteFrom)]),
        ]),
        eb.and([
          eb('bucket_width', '=', '1m'),
          eb.or([eb('starting_at', '<', minuteFrom), eb('starting_at', '>=', minuteTo)]),
        ]),
      ]),
    )
    .executeTakeFirstOrThrow();
  expect(Number(strays.n)).toBe(0);
  expect(await duplicateUsageRows(db)).toBe(0);
}
