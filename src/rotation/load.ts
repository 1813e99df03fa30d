import { sql } from 'kysely';
import type { Db } from '../db/index.ts';
import { keyWorkspaceName } from '../inventory/key-place.ts';
import { usdToPico } from '../money.ts';
import { USAGE_SETTLED_WATERMARK } from '../usage/ingest.ts';
import type { KeyState, KeyTraffic, RotationInputs } from './core/types.ts';

/**
 * Reads what the rotation core needs from Postgres: keys with their workspace name and owner, each key's usage
 * over the drain window, how fresh the usage data is (the end of the newest minute the API answered with data:
 * poll-usage's settled watermark, not the range it asked for), and the reminder stages sent.
 */
export async function loadRotationInputs(db: Db, drainWindowHours: number, now: Date): Promise<RotationInputs> {
  const keyRows = await db
    .selectFrom('api_keys as k')
    .leftJoin('workspaces as w', 'w.id', 'k.workspace_id')
    .leftJoin('users as u', (join) => join.onRef('u.id', '=', 'k.created_by_id').on('u.left_at', 'is', null))
    .select([
      'k.id',
      'k.name',
      'k.status',
      'k.workspace_id',
      'k.scope_type',
      'w.name as workspace_name',
      'k.created_at',
      'k.expires_at',
      'k.created_by_id',
      'k.created_by_type',
      'u.email as owner_email',
      'k.partial_key_hint',
    ])
    .where('k.gone_at', 'is', null)
    .orderBy('k.created_at')
    .execute();
  const keys: KeyState[] = keyRows.map((r) => ({
    id: r.id,
    name: r.name,
    status: r.status,
    workspaceId: r.workspace_id,
    scope: r.scope_type,
    workspaceName: keyWorkspaceName(r.scope_type, r.workspace_id, r.workspace_name),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    createdByUserId: r.created_by_type === 'user' ? r.created_by_id : null,
    ownerEmail: r.owner_email ?? null,
    partialKeyHint: r.partial_key_hint,
  }));

  const windowStart = new Date(now.getTime() - drainWindowHours * 3_600_000);
  const tokens = sql<string>`sum(uncached_input_tokens + cache_read_input_tokens + cache_creation_5m_input_tokens
    + cache_creation_1h_input_tokens + output_tokens)`;
  const [windowRows, lastRows, watermark, sentRows] = await Promise.all([
    db
      .selectFrom('usage_buckets')
      .select(['api_key_id', tokens.as('tokens'), sql<string>`sum(cost_usd)`.as('cost')])
      .where('starting_at', '>=', windowStart)
      .where('api_key_id', 'is not', null)
      .groupBy('api_key_id')
      .execute(),
    db
      .selectFrom('usage_buckets')
      .select(['api_key_id', sql<Date>`max(starting_at)`.as('last')])
      .where('api_key_id', 'is not', null)
      .groupBy('api_key_id')
      .execute(),
    db.selectFrom('watermarks').select('position').where('name', '=', USAGE_SETTLED_WATERMARK).executeTakeFirst(),
    db.selectFrom('rotation_reminders').selectAll().execute(),
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
  const sent = new Map<string, Map<string, Date>>();
  for (const r of sentRows) {
    const stages = sent.get(r.api_key_id) ?? new Map<string, Date>();
    stages.set(r.stage, r.sent_at);
    sent.set(r.api_key_id, stages);
  }
  return { keys, traffic, usage: { dataUntil: watermark?.position ?? null }, sent };
}
