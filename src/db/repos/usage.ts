import { sql } from 'kysely';
import { usdToPico } from '../../money.ts';
import type { KeyTraffic } from '../../rotation/core/types.ts';
import type { Db } from '../index.ts';

/** The `usage_buckets` table: usage per key, workspace and model, one row per bucket. */
export function usageRepo(db: Db) {
  return {
    /** Tokens and cost per key since `from`, and each key's last use ever; for the drain check. */
    async trafficByKey(from: Date): Promise<Map<string, KeyTraffic>> {
      const tokens = sql<string>`sum(uncached_input_tokens + cache_read_input_tokens + cache_creation_5m_input_tokens
        + cache_creation_1h_input_tokens + output_tokens)`;
      const [windowRows, lastRows] = await Promise.all([
        db
          .selectFrom('usage_buckets')
          .select(['api_key_id', tokens.as('tokens'), sql<string>`sum(cost_usd)`.as('cost')])
          .where('starting_at', '>=', from)
          .where('api_key_id', 'is not', null)
          .groupBy('api_key_id')
          .execute(),
        db
          .selectFrom('usage_buckets')
          .select(['api_key_id', sql<Date>`max(starting_at)`.as('last')])
          .where('api_key_id', 'is not', null)
          .groupBy('api_key_id')
          .execute(),
      ]);
      const traffic = new Map<string, KeyTraffic>();
      for (const r of lastRows) {
        traffic.set(r.api_key_id!, { lastUsageAt: new Date(r.last), windowTokens: 0n, windowUsd: 0n });
      }
      for (const r of windowRows) {
        const t = traffic.get(r.api_key_id!)!;
        t.windowTokens = BigInt(r.tokens ?? '0');
        t.windowUsd = usdToPico(r.cost ?? '0');
      }
      return traffic;
    },
  };
}
