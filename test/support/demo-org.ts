import { afterAll, beforeAll } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/index.ts';
import { loadScenario, type Scenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export const DEMO_START = new Date('2026-11-16T10:00:00Z');
export const DEMO_ADMIN_KEY = loadScenario('demo').admin_keys[0]!;

/**
 * The emulator's demo organization on a fixed clock, and a fresh database, for the file that calls it (its
 * beforeAll/afterAll are registered there). Read the fields inside tests: they are set once beforeAll has run.
 * `apiShape` overrides the shapes the emulator serves (default: by `anthropic-version`, as the demo says).
 */
export function useDemoOrg(apiShape?: Scenario['api_shape']) {
  const clock = fixedClock(DEMO_START);
  const org = { clock, t: null as unknown as TestDatabase, emulator: null as unknown as Emulator };
  beforeAll(async () => {
    org.t = await createTestDatabase();
    const demo = loadScenario('demo');
    const scenario = apiShape === undefined ? demo : { ...demo, api_shape: apiShape };
    org.emulator = await startEmulator({ scenario, clock, startAt: DEMO_START });
  });
  afterAll(async () => {
    await org.emulator.close();
    await org.t.drop();
  });
  return org;
}

export async function keyIdByName(db: Db, name: string): Promise<string> {
  return (await db.selectFrom('api_keys').select('id').where('name', '=', name).executeTakeFirstOrThrow()).id;
}

export async function keyNameById(db: Db, id: string): Promise<string> {
  return (await db.selectFrom('api_keys').select('name').where('id', '=', id).executeTakeFirstOrThrow()).name;
}
