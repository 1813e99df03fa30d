import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { checkHeadroom } from '../../src/anomaly/check-headroom.ts';
import { AdminClient } from '../../src/anthropic/client.ts';
import type { AnthropicVersion } from '../../src/anthropic/transport.ts';
import { formatKeyTable } from '../../src/cli/keys.ts';
import { fixedClock } from '../../src/clock.ts';
import { Secret } from '../../src/config/secret.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { planRotation } from '../../src/rotation/core/plan.ts';
import { keyRows } from '../../src/rotation/key-rows.ts';
import { loadRotationInputs } from '../../src/rotation/load.ts';
import { setKeyStatus } from '../../src/rotation/set-status.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { DEMO_ADMIN_KEY, DEMO_START } from '../support/demo-org.ts';

/**
 * keywarden's own path (inventory, the `keys` table, usage, headroom, a deactivation) over the demo organization in
 * both API versions, and with 2026 shapes served under the classic version (the emulator's `api_shape` switch).
 * Whatever the shapes, the outcome is the same: the Default Workspace is one workspace, shown by name.
 */

const MIN = 60_000;

interface Run {
  table: string;
  workspaces: string[];
  keyWorkspaces: Array<[string, string | null]>;
  headroom: { workspaces: number; unreadable: string[]; atRisk: number };
  deactivated: string;
}

const VARIANTS: Array<[string, AnthropicVersion, 'by_version' | '2026']> = [
  ['2023-06-01, classic shapes', '2023-06-01', 'by_version'],
  ['2026-10-21, the SDK shapes', '2026-10-21', 'by_version'],
  ['2023-06-01 answered in 2026 shapes', '2023-06-01', '2026'],
];

const runs = new Map<string, Run>();
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanup.splice(0)) await c();
});

async function runVariant(version: AnthropicVersion, shape: 'by_version' | '2026'): Promise<Run> {
  const clock = fixedClock(DEMO_START);
  const t: TestDatabase = await createTestDatabase();
  cleanup.push(() => t.drop());
  const em: Emulator = await startEmulator({
    scenario: { ...loadScenario('demo'), api_shape: shape },
    clock,
    startAt: DEMO_START,
  });
  cleanup.push(() => em.close());
  const env = testJobContext({ db: t.db, emulatorUrl: em.url, adminKey: DEMO_ADMIN_KEY, clock });
  cleanup.push(() => env.close());
  const admin = new AdminClient({
    baseUrl: em.url,
    adminKey: new Secret(DEMO_ADMIN_KEY),
    anthropicVersion: version,
    log: env.ctx.log,
  });
  const ctx = { ...env.ctx, admin };
  await syncInventory.handler(ctx, {});
  clock.advance(10 * MIN);
  await pollUsageJob.handler(ctx, {});
  const summary = await checkHeadroom(ctx);

  const now = clock.now();
  const policy = ctx.config.policy.rotation;
  const inputs = await loadRotationInputs(ctx.repos, policy.drain_window_hours, now);
  const table = formatKeyTable(keyRows(inputs, planRotation(inputs, policy, now), now));
  const workspaces = (await t.db.selectFrom('workspaces').select('name').orderBy('name').execute()).map((w) => w.name);
  const keyWorkspaces = (
    await t.db.selectFrom('api_keys').select(['name', 'workspace_id']).orderBy('name').execute()
  ).map((k): [string, string | null] => [k.name, k.workspace_id]);

  const legacy = await t.db
    .selectFrom('api_keys')
    .select('id')
    .where('name', '=', 'Legacy integration')
    .executeTakeFirstOrThrow();
  const outcome = await setKeyStatus(ctx, {
    keyId: legacy.id,
    to: 'inactive',
    action: 'api_key.deactivate',
    actor: 'keywarden:rotation',
    reason: 'test',
  });
  const after = await admin.getApiKey(legacy.id);
  return {
    table,
    workspaces,
    keyWorkspaces,
    headroom: { workspaces: summary.workspaces, unreadable: summary.unreadable, atRisk: summary.atRisk },
    deactivated: `${outcome} ${after.status} ${after.workspaceId}`,
  };
}

describe('the demo organization in every shape', () => {
  beforeAll(async () => {
    for (const [name, version, shape] of VARIANTS) runs.set(name, await runVariant(version, shape));
  }, 120_000);

  it('classic shapes: the keys table shows the Default Workspace by name', () => {
    const classic = runs.get(VARIANTS[0]![0])!;
    const legacy = classic.table.split('\n').find((line) => line.includes('Legacy integration'))!;
    expect(legacy).toContain('Default Workspace');
    expect(classic.headroom.unreadable).toEqual([]);
    expect(classic.deactivated).toBe('done inactive null');
  });

  it.each(VARIANTS.slice(1).map(([name]) => name))(
    '%s: the same keys table, inventory, headroom and deactivation',
    (name) => {
      const classic = runs.get(VARIANTS[0]![0])!;
      const run = runs.get(name)!;
      expect(run.table).toBe(classic.table);
      expect(run.workspaces).toEqual(classic.workspaces);
      expect(run.keyWorkspaces).toEqual(classic.keyWorkspaces);
      expect(run.headroom).toEqual(classic.headroom);
      expect(run.deactivated).toBe(classic.deactivated);
    },
  );
});
