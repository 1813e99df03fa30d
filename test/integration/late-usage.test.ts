import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { fixedClock } from '../../src/clock.ts';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { enforceRotation } from '../../src/rotation/enforce.ts';
import { loadRotationInputs } from '../../src/rotation/load.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { DEMO_ADMIN_KEY, DEMO_START } from '../support/demo-org.ts';
import { storedUsage, truthUsage } from '../support/usage-truth.ts';

/**
 * The Admin API's usage data 20 minutes late, or this machine's clock 20 minutes fast: an hour of polls a minute
 * apart must still store every minute once it shows, judge freshness by the newest minute with data, and never let
 * enforcement (enforce: true, a 1-hour drain window) retire the busy overdue keys of the demo organization.
 */

const MINUTE = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'kw-late-'));
const BUSY_OVERDUE = ['Production Backend', 'Research notebook', 'Legacy integration'];

function enforcing(): Config {
  const path = join(dir, 'enforce.yaml');
  writeFileSync(path, 'rotation: { enforce: true, grace_days: 0, drain_window_hours: 1 }\n');
  return loadConfig({ env: { KEYWARDEN_CONFIG: path } });
}

describe.each([
  // the demo's own delay is 1 minute: 21 is 20 minutes late
  { name: 'the API 20 minutes late', apiDelayMinutes: 21, workerAheadMinutes: 0 },
  { name: "the worker's clock 20 minutes fast", apiDelayMinutes: 1, workerAheadMinutes: 20 },
])('$name', ({ apiDelayMinutes, workerAheadMinutes }) => {
  const apiClock = fixedClock(DEMO_START);
  const workerClock = fixedClock(new Date(DEMO_START.getTime() + workerAheadMinutes * MINUTE));
  let t: TestDatabase;
  let emulator: Emulator;
  beforeAll(async () => {
    t = await createTestDatabase();
    emulator = await startEmulator({
      scenario: loadScenario('demo'),
      clock: apiClock,
      startAt: DEMO_START,
      freshnessDelayMinutes: apiDelayMinutes,
    });
  });
  afterAll(async () => {
    await emulator?.close();
    await t?.drop();
  });

  it('an hour of polls stores the usage once it shows, and enforcement retires none of the busy overdue keys', async () => {
    const env = testJobContext({
      db: t.db,
      emulatorUrl: emulator.url,
      adminKey: DEMO_ADMIN_KEY,
      clock: workerClock,
      config: enforcing(),
    });
    try {
      await syncInventory.handler(env.ctx, {});
      // the overdue notices go out first (grace counts from them: grace_days 0)
      expect((await enforceRotation(env.ctx)).deactivated).toEqual([]);
      for (let m = 0; m < 60; m++) {
        apiClock.advance(MINUTE);
        workerClock.advance(MINUTE);
        await pollUsageJob.handler(env.ctx, {});
      }
      // every minute the API has shown (its "now" less 21 minutes) is stored, to the token
      const apiNow = apiClock.now().getTime();
      const shown = new Date(apiNow - 21 * MINUTE);
      const want = truthUsage(emulator, '1m', DEMO_START, shown);
      expect(want.size).toBeGreaterThan(0);
      expect(await storedUsage(t.db, '1m', DEMO_START, shown)).toEqual(want);

      // freshness is where the data ends (never past the API's "now"), not where the polls asked up to
      const inputs = await loadRotationInputs(env.ctx.repos, 1, workerClock.now());
      expect(inputs.usage.dataUntil!.getTime()).toBeLessThanOrEqual(apiNow - (apiDelayMinutes - 1) * MINUTE);

      const statuses = async () =>
        Object.fromEntries((await env.ctx.admin.listApiKeys({}).toArray()).map((k) => [k.name, k.status]));
      const before = await statuses();
      for (const name of BUSY_OVERDUE) expect(before[name]).toBe('active');
      const run = await enforceRotation(env.ctx);
      expect(run.deactivated).toEqual([]);
      expect(await statuses()).toEqual(before);
    } finally {
      await env.close();
    }
  });
});
