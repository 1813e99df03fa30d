import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { reconcileCostsJob } from '../../jobs/reconcile-costs.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { AdminApiResponseError } from '../../src/anthropic/errors.ts';
import type { JobContext } from '../../src/context.ts';
import { WATERMARKS } from '../../src/db/repos/watermarks.ts';
import type { FaultStep } from '../../src/emulator/faults.ts';
import type { JobDefinition } from '../../src/queue/define.ts';
import { testJobContext } from '../support/context.ts';
import { DEMO_ADMIN_KEY, DEMO_START, useDemoOrg } from '../support/demo-org.ts';

/**
 * Drill 8, the Admin API half: answers keywarden cannot use (HTML, truncated or empty bodies, wrong types,
 * missing fields, a page that says "more" without a cursor). Each poll or sync must fail with an error naming
 * the endpoint and the field or problem, and write nothing: every table the jobs write is compared before/after.
 */

const USAGE = '/v1/organizations/usage_report/messages';
const KEYS = '/v1/organizations/api_keys';
const WORKSPACES = '/v1/organizations/workspaces';
const COST = '/v1/organizations/cost_report';

const TABLES = [
  'organizations',
  'workspaces',
  'users',
  'api_keys',
  'api_key_status_changes',
  'usage_buckets',
  'cost_buckets',
  'cost_drift',
  'watermarks',
  'pricing_unknown_models',
  'alerts',
  'notifications',
  'audit_log',
] as const;

const org = useDemoOrg();
let ctx: JobContext;
let closeCtx: () => Promise<unknown>;

async function snapshot(): Promise<Record<(typeof TABLES)[number], string[]>> {
  const out = {} as Record<(typeof TABLES)[number], string[]>;
  for (const table of TABLES) {
    const rows = await sql<{ row: string }>`SELECT t::text AS row FROM ${sql.table(table)} t ORDER BY 1`.execute(
      org.t.db,
    );
    out[table] = rows.rows.map((r) => r.row);
  }
  return out;
}

beforeAll(async () => {
  const c = testJobContext({ db: org.t.db, emulatorUrl: org.emulator.url, adminKey: DEMO_ADMIN_KEY, clock: org.clock });
  ctx = c.ctx;
  closeCtx = c.close;
  // a worker that has run before: inventory, a watermark a few minutes back, the month's costs
  await org.t.db
    .insertInto('watermarks')
    .values({ name: WATERMARKS.usage, position: new Date(DEMO_START.getTime() - 5 * 60_000) })
    .execute();
  await syncInventory.handler(ctx, {});
  await pollUsageJob.handler(ctx, {});
  await reconcileCostsJob.handler(ctx, {});
});
afterAll(async () => {
  await closeCtx?.();
});

type Case = [name: string, job: JobDefinition, step: FaultStep, message: RegExp];

const CASES: Case[] = [
  [
    'an HTML outage page with status 200',
    pollUsageJob,
    {
      path: USAGE,
      body: '<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>',
      contentType: 'text/html',
    },
    /^unusable response from the Admin API GET \S+usage_report\/messages: got HTML instead of JSON .*502 Bad Gateway/,
  ],
  [
    'a body cut off after 300 bytes',
    pollUsageJob,
    { path: USAGE, truncateAt: 300 },
    /usage_report\/messages: the body is not valid JSON \(truncated\?\).*\(300 bytes\)/,
  ],
  ['an empty body', pollUsageJob, { path: USAGE, body: '' }, /usage_report\/messages: the body is empty/],
  [
    'token counts as strings',
    pollUsageJob,
    { path: USAGE, patch: [{ path: 'data.*.results.*.output_tokens', value: '12' }] },
    /usage_report\/messages: data\[\d+\]\.results\[0\]\.output_tokens: expected number, got string "12"/,
  ],
  [
    'buckets without starting_at',
    pollUsageJob,
    { path: USAGE, patch: [{ path: 'data.*.starting_at', remove: true }] },
    /usage_report\/messages: data\[0\]\.starting_at: expected string, got missing/,
  ],
  [
    'has_more true with no next_page',
    reconcileCostsJob,
    {
      path: COST,
      patch: [
        { path: 'has_more', value: true },
        { path: 'next_page', value: null },
      ],
    },
    /organizations\/cost_report: next_page: has_more is true but next_page is null/,
  ],
  [
    'a key list whose data is an object',
    syncInventory,
    { path: KEYS, patch: [{ path: 'data', value: { id: 'apikey_01' } }] },
    /^unusable response from the Admin API GET \/v1\/organizations\/api_keys: data: expected array, got object/,
  ],
  [
    'a key without its id',
    syncInventory,
    { path: KEYS, patch: [{ path: 'data.2.id', remove: true }] },
    /organizations\/api_keys: data\[2\]\.id: expected string, got missing/,
  ],
  [
    'a workspace created "yesterday"',
    syncInventory,
    { path: WORKSPACES, patch: [{ path: 'data.0.created_at', value: 'yesterday' }] },
    /organizations\/workspaces: data\[0\]\.created_at: "yesterday" is not an RFC 3339 timestamp/,
  ],
  [
    'a cost amount that is not a decimal',
    reconcileCostsJob,
    { path: COST, patch: [{ path: 'data.*.results.*.amount', value: '12,34' }] },
    /organizations\/cost_report: data\[\d+\]\.results\[0\]\.amount: .*"12,34"/,
  ],
  [
    'a JSON null instead of a page',
    syncInventory,
    { path: KEYS, body: 'null' },
    /organizations\/api_keys: expected object, got null/,
  ],
];

describe('malformed Admin API answers (drill 8)', () => {
  it.each(CASES)('%s: a clear error, nothing written', async (_name, job, step, message) => {
    // a successful run now would write: the clock moved past the watermark
    org.clock.advance(3 * 60_000);
    const before = await snapshot();
    org.emulator.setFaults({ script: [step] });
    const err = await job.handler(ctx, {}).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AdminApiResponseError);
    expect((err as Error).message).toMatch(message);
    // one line a person can read, not a schema dump
    expect((err as Error).message).not.toMatch(/\n|"code":|ZodError|TypeError/);
    // the malformed answer was given (not some other failure)
    const health = (await (await fetch(`${org.emulator.url}/_emulator/health`)).json()) as Record<string, unknown>;
    expect(health.pending_scripted_faults).toBe(0);
    expect(await snapshot()).toEqual(before);
  });

  it('the same jobs write again once the answers are sound (the checks above were not vacuous)', async () => {
    org.emulator.setFaults({});
    org.clock.advance(3 * 60_000);
    const before = await snapshot();
    await pollUsageJob.handler(ctx, {});
    const after = await snapshot();
    expect(after.watermarks).not.toEqual(before.watermarks);
    expect(after.usage_buckets.length).toBeGreaterThan(before.usage_buckets.length);
  });
});
