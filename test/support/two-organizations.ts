import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { createDb, type Db } from '../../src/db/index.ts';
import { WATERMARKS } from '../../src/db/repos/watermarks.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { MINUTE_MS } from '../../src/time.ts';
import { createTestDatabase, redisUrl, type TestDatabase, uniquePrefix } from './db.ts';
import { drillPolicy } from './kill-drill.ts';
import { spawnNode } from './processes.ts';
import { type SlackServer, startSlackServer } from './slack-server.ts';
import { type SmtpCapture, startSmtpCapture } from './smtp-capture.ts';
import { type WorkerProcess, workerProcess } from './worker-process.ts';

/**
 * Two organizations from one deployment, for the e2e tests of #18: each on an emulator of its own (its own key,
 * its own traffic) named by `base_url`, the Slack stand-in and the SMTP capture, a fresh database migrated by
 * `keywarden migrate` (both schemas), and worker replicas wired to all of it, not yet started. `close()` stops
 * what it started; a setup that fails part-way stops what it had started before it throws.
 */
export interface TwoOrganizations {
  t: TestDatabase;
  /** Organization A (`orga`, "Org A", schema kw_orga): the quiet scenario, accepting KEY_A. */
  emulatorA: Emulator;
  /** Organization B (`orgb`, "Org B", schema kw_orgb): the quiet scenario on another seed, accepting KEY_B. */
  emulatorB: Emulator;
  slack: SlackServer;
  smtp: SmtpCapture;
  replicas: WorkerProcess[];
  /** The replicas' BullMQ prefix. */
  prefix: string;
  /** What `keywarden migrate` printed. */
  migrateOutput: string;
  /** A pool on one schema of the test database, as its owner; `close()` ends it. */
  schemaDb(schema: string): Db;
  close(): Promise<void>;
}

/** The policy file before it is written: the drill's, with both organizations listed (JSON is YAML). */
interface TwoOrganizationsPolicy {
  routes: Record<string, unknown>[];
  schedules: Record<string, string>;
  job_alerts: { missed_intervals: number };
  organizations: {
    id: string;
    name: string;
    admin_key_env: string;
    base_url: string;
    timezone?: string;
    schedules?: Record<string, string>;
  }[];
}

export const KEY_A = 'sk-ant-admin01-organization-a-e2e-key-0123456789abcdAAAA';
const KEY_B = 'sk-ant-admin01-organization-b-e2e-key-0123456789abcdBBBB';

export async function startTwoOrganizations(opts: {
  replicas: number;
  /** poll-usage's schedule (six fields: seconds first). */
  pollUsage: string;
  /** The test's own edits to the policy: routes, schedules, job_alerts, an organization's schedules or timezone. */
  policy: (policy: TwoOrganizationsPolicy) => void;
}): Promise<TwoOrganizations> {
  let t: TestDatabase | undefined;
  let emulatorA: Emulator | undefined;
  let emulatorB: Emulator | undefined;
  let slack: SlackServer | undefined;
  let smtp: SmtpCapture | undefined;
  let dir: string | undefined;
  const replicas: WorkerProcess[] = [];
  const pools: Db[] = [];
  const close = async () => {
    for (const r of replicas) await r.kill9();
    await Promise.all(pools.map((p) => p.destroy()));
    await Promise.allSettled([slack?.close(), smtp?.close(), emulatorA?.close(), emulatorB?.close()]);
    await t?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    t = await createTestDatabase();
    const ownerUrl = t.url;
    const schemaDb = (schema: string) => {
      const db = createDb(ownerUrl, { max: 2, schema });
      pools.push(db);
      return db;
    };
    emulatorA = await startEmulator({ scenario: loadScenario('quiet'), adminKeys: [KEY_A], freshnessDelayMinutes: 0 });
    // the same calm organization on another seed: other key ids, other traffic
    emulatorB = await startEmulator({
      scenario: { ...loadScenario('quiet'), seed: 8 },
      adminKeys: [KEY_B],
      freshnessDelayMinutes: 0,
    });
    slack = await startSlackServer();
    smtp = await startSmtpCapture();
    dir = mkdtempSync(join(tmpdir(), 'kw-two-orgs-'));
    const policy: TwoOrganizationsPolicy = {
      ...JSON.parse(drillPolicy({ pollUsage: opts.pollUsage }).yaml),
      organizations: [
        { id: 'orga', name: 'Org A', admin_key_env: 'ORG_A_ADMIN_KEY', base_url: emulatorA.url },
        { id: 'orgb', name: 'Org B', admin_key_env: 'ORG_B_ADMIN_KEY', base_url: emulatorB.url },
      ],
    };
    opts.policy(policy);
    const yaml = JSON.stringify(policy, null, 2);
    const env = {
      REDIS_URL: redisUrl(),
      ORG_A_ADMIN_KEY: KEY_A,
      ORG_B_ADMIN_KEY: KEY_B,
      SLACK_BOT_TOKEN: slack.token,
      SLACK_API_URL: slack.url,
      SMTP_URL: smtp.url,
      EMAIL_FROM: 'keywarden@acme.example',
      LOG_LEVEL: 'info',
    };
    const prefix = uniquePrefix();
    for (let i = 0; i < opts.replicas; i++) {
      // as deployed: the worker a member of keywarden_runtime, migrate as the tables' owner
      replicas.push(workerProcess({ dir, prefix, policy: yaml, env: { ...env, DATABASE_URL: t.runtimeUrl } }));
    }
    // `keywarden migrate` creates both schemas (the worker processes above wrote the policy file)
    const migrate = spawnNode('src/cli/index.ts', ['migrate'], {
      ...env,
      DATABASE_URL: t.url,
      KEYWARDEN_CONFIG: join(dir, 'keywarden.yaml'),
    });
    expect((await migrate.exited).code, migrate.output()).toBe(0);
    // as if each had polled a few minutes ago: no first-run backfill of the month
    const minute = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
    for (const schema of ['kw_orga', 'kw_orgb']) {
      await schemaDb(schema)
        .insertInto('watermarks')
        .values({ name: WATERMARKS.usage, position: new Date(minute - 3 * MINUTE_MS) })
        .execute();
    }
    return {
      t,
      emulatorA,
      emulatorB,
      slack,
      smtp,
      replicas,
      prefix,
      migrateOutput: migrate.output(),
      schemaDb,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
