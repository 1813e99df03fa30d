import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { expect } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { policySchema, type Route } from '../../src/config/policy.ts';
import { createDb, type Db, migrateToLatest } from '../../src/db/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { WATERMARKS, watermarksRepo } from '../../src/db/repos/watermarks.ts';
import type { DeliveryChannel } from '../../src/db/types.ts';
import { type LocalServer, startLocalPostgres, startLocalRedis } from '../../src/dev/services.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import type { AlertKind } from '../../src/kinds.ts';
import type { SlackCall } from '../../src/notify/dev/slack-standin.ts';
import { createTestDatabase, redisUrl, uniquePrefix } from './db.ts';
import { type SlackServer, startSlackServer } from './slack-server.ts';
import { type CapturedEmail, type SmtpCapture, startSmtpCapture } from './smtp-capture.ts';
import { duplicateUsageRows, storedUsage, truthUsage } from './usage-truth.ts';
import { waitUntil } from './wait.ts';
import { type WorkerProcess, workerProcess } from './worker-process.ts';

/**
 * Everything a fault drill runs against, for real and in real time: the keywarden worker as a child process with
 * fast schedules, the Admin API emulator on the system clock (the scenario's traffic happens as the drill runs),
 * the Slack stand-in, the SMTP capture, and Postgres and Redis: shared with the suite, or of the drill's own when
 * the drill kills them.
 */

export const MINUTE = 60_000;

/** Fast enough that a drill of a few minutes sees dozens of runs of each job. */
export const DRILL_SCHEDULES: Record<string, string> = {
  'poll-usage': '*/10 * * * * *',
  'deliver-notifications': '*/5 * * * * *',
  'sync-inventory': '*/30 * * * * *',
  'enforce-rotation': '*/20 * * * * *',
};

/**
 * One organization of a rig over an `organizations:` list: its id (schema `kw_<id>`) and its emulator's scenario,
 * on another seed when given (other key ids, other traffic: two organizations of one scenario stay apart).
 */
export interface RigOrganizationOption {
  id: string;
  scenario: 'demo' | 'quiet';
  seed?: number;
}

interface RigCommonOptions {
  /** Names the worker's log file, kept in the temp dir after the drill. */
  name: string;
  /** 'own': a Postgres of the drill's own (it may kill it); 'shared': a database on the suite's server. */
  postgres: 'own' | 'shared';
  redis: 'own' | 'shared';
  schedules?: Record<string, string>;
  watchdogInterval?: string;
  /**
   * The policy's text before `schedules:` (and before the `organizations:` list, when given) instead of the drills'
   * Slack and email routes (receivers, say).
   */
  policy?: string;
  /** More of the worker's environment (the receivers' variables). */
  env?: Record<string, string>;
  /** Worker replicas sharing the prefix (default 1); `worker` is the first. */
  replicas?: number;
}

/**
 * One organization (`organization:` alone, rows in public) on the scenario's emulator; or an `organizations:` list,
 * each organization on an emulator of its own (its own keys and traffic, named by its entry's `base_url`) with its
 * rows in its own schema.
 */
export type RigOptions = RigCommonOptions &
  (
    | { scenario: 'demo' | 'quiet'; organizations?: never }
    | { organizations: readonly RigOrganizationOption[]; scenario?: never }
  );

/** An organization of a rig over an `organizations:` list: its emulator, and a pool on its schema alone. */
export interface RigOrganization {
  id: string;
  emulator: Emulator;
  db: Db;
}

export interface TimedSlackCall {
  at: number;
  call: SlackCall;
}

export interface TimedEmail {
  at: number;
  mail: CapturedEmail;
}

export interface Rig {
  /** With `organizations`, the first organization's (its schema's pool). */
  db: Db;
  /** Null when shared with the suite (never killed). */
  postgres: LocalServer | null;
  redis: LocalServer | null;
  /** With `organizations`, the first organization's. */
  emulator: Emulator;
  /** Each organization of the `organizations` option, in its order; empty without it. */
  organizations: RigOrganization[];
  slack: SlackServer;
  smtp: SmtpCapture;
  worker: WorkerProcess;
  /** Every replica, `worker` first. */
  workers: WorkerProcess[];
  /** The replicas' BullMQ prefix, for a drill that reads their queues. */
  prefix: string;
  /** Successful chat.postMessage calls, stamped when answered. */
  slackPosts: TimedSlackCall[];
  /** Every Slack call, failed ones included. */
  slackCalls: TimedSlackCall[];
  emails: TimedEmail[];
  startedAt: Date;
  close(): Promise<void>;
}

// The drills run poll-usage every 10 s: the default of 3 missed intervals would call a 30 s Redis blip a stopped
// job. 18 intervals is the 3 minutes a worker on the default one-minute schedule is given.
const ORGANIZATION = `organization: { name: "Drill Co", timezone: UTC }
`;
const POLICY_SECTIONS = `rotation: { enforce: false }
job_alerts: { missed_intervals: 18 }
routes:
  - { match: { kind: "rotation.*" }, slack: ["#security"], email: ["security@drill.example"] }
  - { match: { kind: "*" },          slack: ["#ai-alerts"], email: ["ops@drill.example"] }
`;
const POLICY_ROUTES = `${ORGANIZATION}${POLICY_SECTIONS}`;

/** The variable holding an organization's admin key in a rig over an `organizations:` list. */
const adminKeyEnv = (id: string) => `DRILL_ADMIN_KEY_${id.toUpperCase()}`;

export async function startRig(opts: RigOptions): Promise<Rig> {
  const cleanups: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    let db: Db;
    let databaseUrl: string;
    let postgres: LocalServer | null = null;
    if (opts.postgres === 'own') {
      postgres = await startLocalPostgres({ durableCommits: true });
      cleanups.push(() => postgres!.stop());
      databaseUrl = postgres.url;
      db = createDb(databaseUrl, { max: 3 });
      cleanups.push(() => db.destroy());
      await migrateToLatest(db);
    } else {
      const t = await createTestDatabase();
      cleanups.push(() => t.drop());
      db = t.db;
      databaseUrl = t.url;
    }
    let redis: LocalServer | null = null;
    if (opts.redis === 'own') {
      redis = await startLocalRedis();
      cleanups.push(() => redis!.stop());
    }
    const startedAt = new Date();
    // usage shows one minute after the fact, as the real API's does (a little later, usually)
    const emulatorOf = async (name: 'demo' | 'quiet', seed?: number) => {
      const scenario = { ...loadScenario(name), ...(seed !== undefined ? { seed } : {}) };
      const emulator = await startEmulator({ scenario, startAt: startedAt, freshnessDelayMinutes: 1 });
      cleanups.push(() => emulator.close());
      return { emulator, adminKey: scenario.admin_keys[0]! };
    };
    const organizations: RigOrganization[] = [];
    // one organization: the scenario's admin key by ANTHROPIC_ADMIN_KEY; a list: each one's by its entry's variable
    const adminEnv: Record<string, string> = {};
    const entries: string[] = [];
    for (const o of opts.organizations ?? []) {
      const { emulator, adminKey } = await emulatorOf(o.scenario, o.seed);
      adminEnv[adminKeyEnv(o.id)] = adminKey;
      entries.push(
        `  - { id: ${o.id}, name: "Drill ${o.id}", timezone: UTC, admin_key_env: ${adminKeyEnv(o.id)}, base_url: "${emulator.url}" }\n`,
      );
      const schema = `kw_${o.id}`;
      const orgDb = createDb(databaseUrl, { max: 3, schema });
      cleanups.push(() => orgDb.destroy());
      await migrateToLatest(orgDb, schema);
      organizations.push({ id: o.id, emulator, db: orgDb });
    }
    let emulator: Emulator;
    if (opts.scenario !== undefined) {
      const single = await emulatorOf(opts.scenario);
      emulator = single.emulator;
      adminEnv.ANTHROPIC_ADMIN_KEY = single.adminKey;
      adminEnv.ANTHROPIC_BASE_URL = emulator.url;
    } else {
      emulator = organizations[0]!.emulator;
      db = organizations[0]!.db;
    }

    const slackPosts: TimedSlackCall[] = [];
    const slackCalls: TimedSlackCall[] = [];
    const slack = await startSlackServer({
      onCall: (call) => {
        slackCalls.push({ at: Date.now(), call });
        if (call.method === 'chat.postMessage' && call.response?.ok) slackPosts.push({ at: Date.now(), call });
      },
    });
    cleanups.push(() => slack.close());
    const emails: TimedEmail[] = [];
    const smtp = await startSmtpCapture({ onMessage: (mail) => emails.push({ at: Date.now(), mail }) });
    cleanups.push(() => smtp.close());

    const dir = mkdtempSync(join(tmpdir(), 'keywarden-drill-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const schedules = { ...DRILL_SCHEDULES, ...opts.schedules };
    const sections = opts.policy ?? (opts.scenario !== undefined ? POLICY_ROUTES : POLICY_SECTIONS);
    const list = entries.length > 0 ? `organizations:\n${entries.join('')}` : '';
    const policy = `${sections}${list}schedules:\n${Object.entries(schedules)
      .map(([job, cron]) => `  ${job}: "${cron}"\n`)
      .join('')}`;
    const prefix = uniquePrefix();
    const workers = Array.from({ length: opts.replicas ?? 1 }, () =>
      workerProcess({
        dir,
        policy,
        prefix,
        ...(opts.watchdogInterval ? { watchdogInterval: opts.watchdogInterval } : {}),
        env: {
          DATABASE_URL: databaseUrl,
          REDIS_URL: redis?.url ?? redisUrl(),
          ...adminEnv,
          SLACK_BOT_TOKEN: slack.token,
          SLACK_API_URL: slack.url,
          SMTP_URL: smtp.url,
          EMAIL_FROM: '"keywarden drill" <keywarden@drill.example>',
          LOG_LEVEL: 'info',
          ...opts.env,
        },
      }),
    );
    const worker = workers[0]!;
    // killed, not stopped: a drill that fails half-way must not wait for a graceful shutdown
    cleanups.push(async () => {
      for (const [i, w] of workers.entries()) {
        await w.kill9();
        // the worker's whole log, for reading after a failed drill
        const logFile = join(tmpdir(), `keywarden-drill-${opts.name}${i === 0 ? '' : `-${i + 1}`}.log`);
        writeFileSync(logFile, w.output());
        console.info(`worker log: ${logFile}`);
      }
    });
    return {
      db,
      postgres,
      redis,
      emulator,
      organizations,
      slack,
      smtp,
      worker,
      workers,
      prefix,
      slackPosts,
      slackCalls,
      emails,
      startedAt,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Where poll-usage has committed every 1-minute bucket up to (exclusive), or null before its first poll. */
export const usageWatermark = (db: Db) => watermarksRepo(db).read(WATERMARKS.usage);

/** Waits until poll-usage has committed every minute up to `minute` (exclusive). */
export async function waitForUsageThrough(db: Db, minute: Date, timeoutMs: number): Promise<Date> {
  return waitUntil(
    `usage committed through ${minute.toISOString()}`,
    async () => {
      const w = await usageWatermark(db);
      return w !== null && w.getTime() >= minute.getTime() ? w : null;
    },
    timeoutMs,
  );
}

export const floorMinute = (ms: number) => new Date(Math.floor(ms / MINUTE) * MINUTE);

/**
 * Stored 1-minute usage of [from, to) equals the emulator's ground truth cell by cell, to the token: no minute
 * missing (a gap), none doubled, none different. Returns the number of cells compared.
 */
export async function expectUsageEqualsTruth(db: Db, emulator: Emulator, from: Date, to: Date): Promise<number> {
  const want = truthUsage(emulator, '1m', from, to);
  expect(await duplicateUsageRows(db)).toBe(0);
  expect(want.size).toBeGreaterThan(0);
  expect(await storedUsage(db, '1m', from, to)).toEqual(want);
  return want.size;
}

export interface OutboxRow {
  id: string;
  fingerprint: string;
  event: string;
  sequence: number;
  channel: DeliveryChannel;
  target: string;
  status: string;
  provider_id: string | null;
  possibly_duplicate: boolean;
  attempts: number;
  title: string;
}

export async function outboxRows(db: Db): Promise<OutboxRow[]> {
  const r = await sql<OutboxRow>`
    SELECT id, fingerprint, event, sequence, channel, target, status, provider_id, possibly_duplicate, attempts,
           payload->'notification'->>'title' AS title
    FROM notifications ORDER BY id`.execute(db);
  return r.rows;
}

export async function waitForOutboxDrained(db: Db, timeoutMs: number): Promise<OutboxRow[]> {
  return waitUntil(
    'every outbox row sent',
    async () => {
      const rows = await outboxRows(db);
      return rows.every((r) => r.status === 'sent') ? rows : null;
    },
    timeoutMs,
  );
}

const slackId = (p: TimedSlackCall) => `${p.call.response!.channel}:${p.call.response!.ts}`;

/**
 * Exactly once, end to end: every outbox row is sent, and each Slack post and each email received is the one
 * recorded by exactly one row (its channel:ts or Message-ID, to the row's target), with no message left over: a
 * message without its row, or a row delivered twice, fails. Each (fingerprint, event, target) has one row.
 */
export async function expectEachDeliveredOnce(rig: Rig): Promise<OutboxRow[]> {
  // The worker runs on: an alert found meanwhile (a runaway) may be queued or in flight between the caller's drain
  // and these reads. Wait for a moment where every row is sent and the receivers hold as many messages as the rows
  // say; if none comes, the exact checks below say what differs.
  const rows = await waitUntil(
    'every outbox row sent and matched by a received message',
    async () => {
      const now = await outboxRows(rig.db);
      const count = (channel: DeliveryChannel) => now.filter((r) => r.channel === channel).length;
      const agree =
        now.every((r) => r.status === 'sent') &&
        rig.slackPosts.length === count('slack') &&
        rig.emails.length === count('email');
      return agree ? now : null;
    },
    60_000,
  ).catch(() => outboxRows(rig.db));
  expect(rows.filter((r) => r.status !== 'sent')).toEqual([]);
  const perAlertTarget = new Map<string, number>();
  for (const r of rows) {
    const k = `${r.fingerprint}|${r.event}|${r.channel}|${r.target}`;
    perAlertTarget.set(k, (perAlertTarget.get(k) ?? 0) + 1);
  }
  expect([...perAlertTarget].filter(([, n]) => n > 1)).toEqual([]);

  const slackRows = rows.filter((r) => r.channel === 'slack');
  expect(rig.slackPosts.map(slackId).sort()).toEqual(slackRows.map((r) => r.provider_id!).sort());
  for (const r of slackRows) {
    const post = rig.slackPosts.find((p) => slackId(p) === r.provider_id)!;
    expect(post.call.response!.channel).toBe(rig.slack.channelId(r.target));
  }
  const emailRows = rows.filter((r) => r.channel === 'email');
  expect(rig.emails.map((e) => e.mail.messageId).sort()).toEqual(emailRows.map((r) => r.provider_id!).sort());
  for (const r of emailRows) {
    const mail = rig.emails.find((e) => e.mail.messageId === r.provider_id)!.mail;
    expect(mail.envelope.to).toEqual([r.target]);
  }
  expect(rows.filter((r) => r.possibly_duplicate)).toEqual([]);
  return rows;
}

/** How many times the worker's log has said `message` (pino's `msg`) so far. */
export function logCount(worker: WorkerProcess, message: string): number {
  let n = 0;
  for (const line of worker.output().split('\n')) {
    if (line.includes(`"msg":"${message}"`)) n++;
  }
  return n;
}

/** Waits until the worker's log has said `message` more than `moreThan` times (a count taken earlier). */
export async function waitForLog(worker: WorkerProcess, message: string, moreThan: number, timeoutMs: number) {
  await waitUntil(`"${message}" in the worker's log`, () => logCount(worker, message) > moreThan, timeoutMs);
}

/** Waits until a started worker has settled: usage committed through the last whole minute, the inventory synced. */
export async function waitForSettled(rig: Rig): Promise<void> {
  await waitForUsageThrough(rig.db, floorMinute(Date.now() - MINUTE), 120_000);
  await waitForLog(rig.worker, 'inventory synced', 0, 60_000);
}

/** A kind of the drills' own: no job of the worker evaluates it, so nothing but the drill fires or resolves these. */
// Not one of ALERT_KINDS: typed as one so the drill's alerts go through the real store and routes.
export const DRILL_KIND = 'drill.outage' as AlertKind;

/** `[label-007]`: unique in every message, so a message is tied to its alert by its text alone. */
export const drillTitle = (label: string, i: number) => `Drill alert [${label}-${String(i).padStart(3, '0')}]`;

/**
 * Whether a message is one of the drill's own: the worker's jobs raise real alerts beside them (the scenario's keys
 * have key-identity findings, for one), which the drills deliver too but do not count.
 */
export const isDrillTitle = (title: string | null | undefined): boolean => title?.startsWith('Drill alert [') === true;

/**
 * Raises `n` alerts through the real store (alert rows and outbox rows in one transaction each), in separate runs so
 * that each is its own message: one Slack post and one email each, by the policy's catch-all route.
 */
export async function raiseDrillAlerts(db: Db, routes: readonly Route[], label: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    const scopeId = `apikey_drill_${label}_${i}`;
    await raiseAlerts(
      { repos: createRepos(db) },
      {
        kinds: [DRILL_KIND],
        scopes: [`key:${scopeId}`],
        observations: [
          {
            kind: DRILL_KIND,
            severity: 'warning',
            scopeType: 'key',
            scopeId,
            workspaceId: null,
            period: '',
            title: drillTitle(label, i),
            details: { drill: label, n: i },
            summary: `Raised by a fault drill (${label}).`,
          },
        ],
      },
      routes,
      new Date(),
    );
  }
}

/** The policy's routes, as the worker reads them (the drills raise alerts the way a job would). */
export const DRILL_ROUTES: readonly Route[] = loadPolicyRoutes();

function loadPolicyRoutes(): readonly Route[] {
  return policySchema.parse(parseYaml(POLICY_ROUTES)).routes;
}

/** Messages received that carry `title`, per target: `#channel` or an email address. */
export function messagesByTarget(rig: Rig, title: string): Map<string, number> {
  const out = new Map<string, number>();
  const add = (target: string) => out.set(target, (out.get(target) ?? 0) + 1);
  for (const p of rig.slackPosts) {
    if (String(p.call.args.text ?? '').includes(title)) add(p.call.response!.channel!);
  }
  for (const e of rig.emails) if (e.mail.subject.includes(title)) for (const to of e.mail.envelope.to) add(to);
  return out;
}
