import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createTestDatabase, redisUrl, type TestDatabase } from '../support/db.ts';
import { runNode } from '../support/processes.ts';

let t: TestDatabase;
let emulator: Emulator;

beforeAll(async () => {
  t = await createTestDatabase();
  emulator = await startEmulator({ scenario: loadScenario('quiet'), freshnessDelayMinutes: 0 });
});
afterAll(async () => {
  await emulator?.close();
  await t?.drop();
});

describe('keywarden run poll-usage --once', () => {
  it("shows the first run's backfill and catch-up as progress lines, then the result", async () => {
    const { code, output } = await runNode('src/cli/index.ts', ['run', 'poll-usage', '--once'], {
      DATABASE_URL: t.url,
      REDIS_URL: redisUrl(),
      ANTHROPIC_ADMIN_KEY: emulator.state.scenario.admin_keys[0],
      ANTHROPIC_BASE_URL: emulator.url,
      KEYWARDEN_CONFIG: 'examples/keywarden.yaml',
      LOG_LEVEL: 'warn',
    });
    expect(code).toBe(0);
    const lines = output.split('\n');
    const backfill = lines.filter((l) => l.startsWith('backfill '));
    const usage = lines.filter((l) => l.startsWith('usage '));
    // 35 days before the month plus the month to date, a week a line, then 48 hours of 1m usage, a day a line
    expect(backfill.length).toBeGreaterThanOrEqual(5);
    expect(backfill[0]).toMatch(/^backfill 1\/(\d+) \(hourly\): up to \d{4}-\d\d-\d\d \d\d:\d\d UTC, [\d,]+ rows$/);
    expect(backfill.at(-1)).toMatch(new RegExp(`^backfill ${backfill.length}/${backfill.length} `));
    expect(usage.length).toBeGreaterThanOrEqual(2);
    expect(usage.at(-1)).toMatch(new RegExp(`^usage ${usage.length}/${usage.length} \\(1-minute\\): up to `));
    // the result follows on stdout, as JSON
    expect(output).toMatch(/"watermark": "\d{4}-/);
  });

  it('is refused while another run of the job holds its lock (a worker polling on a replica)', async () => {
    // the lock a worker's run of poll-usage holds, taken by a session of the test's own
    await t.db.connection().execute(async (conn) => {
      await sql`SELECT pg_advisory_lock(hashtext('keywarden.job:poll-usage'))`.execute(conn);
      try {
        const { code, output } = await runNode('src/cli/index.ts', ['run', 'poll-usage', '--once'], {
          DATABASE_URL: t.url,
          REDIS_URL: redisUrl(),
          ANTHROPIC_ADMIN_KEY: emulator.state.scenario.admin_keys[0],
          ANTHROPIC_BASE_URL: emulator.url,
          KEYWARDEN_CONFIG: 'examples/keywarden.yaml',
          LOG_LEVEL: 'warn',
        });
        expect(code).not.toBe(0);
        expect(output).toMatch(/another run of poll-usage is in progress/);
        expect(output).not.toMatch(/^backfill /m);
      } finally {
        await sql`SELECT pg_advisory_unlock(hashtext('keywarden.job:poll-usage'))`.execute(conn);
      }
    });
  });
});
