import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { type Config, loadConfig } from '../../src/config/index.ts';
import type { JobContext } from '../../src/context.ts';
import type { Db } from '../../src/db/index.ts';
import { enforceRotation } from '../../src/rotation/enforce.ts';
import { keyIdByName } from './demo-org.ts';

/**
 * The demo organization made ready for digests: inventory synced, rotation evaluated, and half a month of spend
 * with projections and a drifted day written directly (known figures, so the digests can be checked to the cent).
 * The clock is the demo's: Monday 16 November 2026, 10:00 UTC.
 */

export const DIGEST_TARGETS = {
  financeEmail: 'finance@acme.example',
  financeSlack: '#finance',
  securityEmail: 'security@acme.example',
  securitySlack: '#security',
};

export function digestConfig(): Config {
  const dir = mkdtempSync(join(tmpdir(), 'kw-digest-'));
  const path = join(dir, 'keywarden.yaml');
  writeFileSync(
    path,
    `organization: { name: "Acme AI", timezone: UTC }
spend:
  limits: { organization: 5000, workspaces: { "Customer chatbot": 2000 }, keys: { "Production Backend": 1000 } }
digests:
  finance: { cron: "0 8 * * *", email: ["${DIGEST_TARGETS.financeEmail}"], slack: ["${DIGEST_TARGETS.financeSlack}"] }
  security: { cron: "0 9 * * 1", email: ["${DIGEST_TARGETS.securityEmail}"], slack: ["${DIGEST_TARGETS.securitySlack}"] }
`,
  );
  return loadConfig({ env: { KEYWARDEN_CONFIG: path } });
}

/** USD per full day, per key; the day in progress (until 10:00) has a quarter of it. */
export const DAILY_USD: Record<string, number> = {
  'Production Backend': 80,
  'Support bot': 40,
  'Data labeling batch': 25,
  'CI runner': 12,
  'Legacy integration': 3, // Default Workspace
};
export const FULL_DAYS = 15; // 1–15 November
/** Usage without an API key (Console, Workbench) in Research: $2 a day. */
export const CONSOLE_DAILY_USD = 2;

export async function prepareDigestOrg(ctx: JobContext, db: Db): Promise<void> {
  await syncInventory.handler(ctx, {});
  await enforceRotation(ctx);
  await seedSpend(db);
}

async function seedSpend(db: Db): Promise<void> {
  const keys = await db.selectFrom('api_keys').select(['id', 'name', 'workspace_id']).execute();
  const research = (
    await db.selectFrom('workspaces').select('id').where('name', '=', 'Research').executeTakeFirstOrThrow()
  ).id;
  const rows = [];
  const base = {
    model: 'claude-sonnet-4-5',
    service_tier: 'standard',
    context_window: '0-200k',
    output_tokens: 1000,
    priced_by: 'table',
  };
  for (let day = 1; day <= FULL_DAYS + 1; day++) {
    const today = day === FULL_DAYS + 1;
    const at = today ? `2026-11-${day}T09:00:00Z` : `2026-11-${String(day).padStart(2, '0')}T12:00:00Z`;
    const width = today ? ('1m' as const) : ('1h' as const);
    const share = today ? 0.25 : 1;
    for (const [name, usd] of Object.entries(DAILY_USD)) {
      const key = keys.find((k) => k.name === name);
      if (!key) throw new Error(`demo key ${name} missing`);
      rows.push({
        ...base,
        bucket_width: width,
        starting_at: at,
        api_key_id: key.id,
        workspace_id: key.workspace_id,
        cost_usd: (usd * share).toFixed(2),
      });
    }
    rows.push({
      ...base,
      bucket_width: width,
      starting_at: at,
      api_key_id: null,
      workspace_id: research,
      cost_usd: (CONSOLE_DAILY_USD * share).toFixed(2),
    });
  }
  // October: must not count in November's digest
  rows.push({
    ...base,
    bucket_width: '1h' as const,
    starting_at: '2026-10-31T23:00:00Z',
    api_key_id: keys[0]!.id,
    workspace_id: keys[0]!.workspace_id,
    cost_usd: '9999',
  });
  await db.insertInto('usage_buckets').values(rows).execute();

  const backend = await keyIdByName(db, 'Production Backend');
  const chatbot = (
    await db.selectFrom('workspaces').select('id').where('name', '=', 'Customer chatbot').executeTakeFirstOrThrow()
  ).id;
  const projection = (
    made: string,
    scope: 'organization' | 'workspace' | 'key',
    id: string,
    p: number[],
    limit: string | null,
    cross: [string | null, string | null],
  ) => ({
    made_at: made,
    month: '2026-11-01',
    scope_type: scope,
    scope_id: id,
    mtd_usd: String(p[0]),
    p10_usd: String(p[1]),
    p50_usd: String(p[2]),
    p90_usd: String(p[3]),
    limit_usd: limit,
    crossing_p50: cross[0],
    crossing_p90: cross[1],
    method: 'weekday-level-trend',
  });
  await db
    .insertInto('projections')
    .values([
      // an older organization projection: the digest must show the latest
      projection('2026-11-15T10:00:00Z', 'organization', 'organization', [2240, 4000, 4400, 5200], '5000', [
        null,
        '2026-11-28',
      ]),
      projection('2026-11-16T09:00:00Z', 'organization', 'organization', [2400, 4350, 4700, 5400], '5000', [
        null,
        '2026-11-27',
      ]),
      projection('2026-11-16T09:00:00Z', 'workspace', chatbot, [1800, 3300, 3550, 3900], '2000', [
        '2026-11-17',
        '2026-11-17',
      ]),
      projection('2026-11-16T09:00:00Z', 'key', backend, [1200, 2250, 2400, 2600], '1000', [
        '2026-11-01',
        '2026-11-01',
      ]),
      // last month's: ignored
      projection('2026-10-31T09:00:00Z', 'organization', 'organization', [1, 2, 3, 4], '5000', [null, null]),
    ])
    .execute();

  await db
    .insertInto('cost_drift')
    .values([
      { day: '2026-11-12', workspace_id: research, reported_usd: '100', priced_usd: '103.5', drift_ratio: 0.035 },
      {
        day: '2026-11-14',
        workspace_id: null,
        reported_usd: '0',
        priced_usd: '3',
        drift_ratio: Number.POSITIVE_INFINITY,
      },
      { day: '2026-10-28', workspace_id: research, reported_usd: '100', priced_usd: '150', drift_ratio: 0.5 },
    ])
    .execute();
}
