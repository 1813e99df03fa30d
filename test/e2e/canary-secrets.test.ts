import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WATERMARKS } from '../../src/db/repos/watermarks.ts';
import { redisUrl } from '../support/db.ts';
import { type DrillStack, startDrillStack } from '../support/drill-stack.ts';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';
import { waitUntil } from '../support/wait.ts';
import { type WorkerProcess, workerProcess } from '../support/worker-process.ts';

/**
 * Drill 6: canary secrets through every path the real worker has (normal polls and syncs, key deactivations,
 * Slack failing with invalid_auth and 500, SMTP refusing the login, the admin key refused, a Postgres error),
 * with LOG_LEVEL=trace. Then every place a secret could end up is read back: all worker output, every Redis key
 * and value, every row of every table of the database (audit_log included), every Slack call, every email.
 * None may hold a canary or a distinctive piece of one; and each canary must have been used, so the drill
 * cannot pass by never touching them.
 */

// Each canary's body carries a marker; its last 4 characters (what a hint shows) are not part of the marker.
const ADMIN_KEY = 'sk-ant-admin01-CANARYadm1nQz7Wv3xPp9sKe0Lm-yT4rWXYZ';
const SLACK_TOKEN = 'xoxb-CANARYslk9Hq2Rt7Nv5-Bp3Ks8Jd1Fg-zzQQ';
const SMTP_USER = 'kw-mailer';
const SMTP_PASSWORD = 'CANARYsmtpPw0rd-5Xq8!Lk2Ve7';

/** Each canary and the forms it could take on the way: its body without the well-known prefix, its marker,
 *  URL-encoded, base64 (SMTP AUTH PLAIN and LOGIN send base64, a Basic header too). */
function forms(name: string, secret: string, prefix: string): Array<[string, string]> {
  const body = secret.slice(prefix.length);
  return [
    [`${name}`, secret],
    [`${name} body`, body],
    [`${name} marker`, body.slice(0, 16)],
    [`${name} url-encoded`, encodeURIComponent(secret)],
    [`${name} base64`, Buffer.from(secret).toString('base64')],
  ];
}
const NEEDLES: Array<[string, string]> = [
  ...forms('admin key', ADMIN_KEY, 'sk-ant-admin01-'),
  ...forms('Slack token', SLACK_TOKEN, 'xoxb-'),
  ...forms('SMTP password', SMTP_PASSWORD, ''),
  ['SMTP AUTH PLAIN', Buffer.from(`\0${SMTP_USER}\0${SMTP_PASSWORD}`).toString('base64')],
  ['any canary marker', 'CANARY'],
];

function leaks(where: string, text: string): string[] {
  return NEEDLES.filter(([, needle]) => text.includes(needle)).map(([what]) => `${what} in ${where}`);
}

const POLICY = `organization: { name: "Canary drill", timezone: UTC }
rotation: { enforce: true, grace_days: 0, force_after_days: 0 }
routes:
  - { match: { kind: "keywarden.*" }, slack: ["#ops"], email: ["ops@acme.example"] }
  - { match: { kind: "key.*" }, slack: ["#security"], email: ["security@acme.example"] }
  - { match: { kind: "rotation.*" }, slack: ["#security"], email: ["key_owner", "security@acme.example"] }
  - { match: { kind: "*" }, slack: ["#ai-alerts"] }
schedules:
  poll-usage: "*/5 * * * * *"
  sync-inventory: "*/10 * * * * *"
  enforce-rotation: "*/15 * * * * *"
  reconcile-costs: "*/20 * * * * *"
  deliver-notifications: "*/5 * * * * *"
`;

/** Every key and value in Redis, as text: names, strings, hashes, lists, sets, sorted sets and streams. */
async function dumpRedis(redis: Redis): Promise<string> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', '1000');
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      let value: unknown;
      if (type === 'string') value = await redis.get(key);
      else if (type === 'hash') value = await redis.hgetall(key);
      else if (type === 'list') value = await redis.lrange(key, 0, -1);
      else if (type === 'set') value = await redis.smembers(key);
      else if (type === 'zset') value = await redis.call('ZRANGE', key, '0', '-1', 'WITHSCORES');
      else if (type === 'stream') value = await redis.xrange(key, '-', '+');
      else value = `(${type})`;
      out.push(`${key} ${type} ${JSON.stringify(value)}`);
    }
  } while (cursor !== '0');
  return out.join('\n');
}

/** Every row of every table (the data pg_dump would write), as text. */
async function dumpDatabase(s: DrillStack): Promise<{ text: string; rows: number }> {
  const tables = await sql<{ schema: string; name: string }>`
    SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
    WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`.execute(s.t.db);
  const out: string[] = [];
  for (const t of tables.rows) {
    const rows = await sql<{ row: string }>`SELECT t::text AS row FROM ${sql.table(`${t.schema}.${t.name}`)} t`.execute(
      s.t.db,
    );
    for (const r of rows.rows) out.push(`${t.name} ${r.row}`);
  }
  return { text: out.join('\n'), rows: out.length };
}

describe('canary secrets (drill 6)', () => {
  let s: DrillStack;
  let refusingSmtp: SmtpCapture;
  let first: WorkerProcess;
  let redis: Redis;

  beforeAll(async () => {
    s = await startDrillStack({
      secrets: { adminKey: ADMIN_KEY, slackToken: SLACK_TOKEN, smtpUser: SMTP_USER, smtpPassword: SMTP_PASSWORD },
      policy: POLICY,
      logLevel: 'trace',
    });
    // the first run's mail server wants another password: the login fails with the canary in hand
    refusingSmtp = await startSmtpCapture({ user: SMTP_USER, password: 'another-password-entirely' });
    first = workerProcess({
      env: {
        ...s.env,
        SMTP_URL: `smtp://${SMTP_USER}:${encodeURIComponent(SMTP_PASSWORD)}@127.0.0.1:${refusingSmtp.port}`,
      },
      policy: POLICY,
      dir: s.dir,
      prefix: s.prefix,
    });
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    await s.t.db
      .insertInto('watermarks')
      .values({ name: WATERMARKS.usage, position: new Date(minute - 3 * 60_000) })
      .execute();
    redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    await first?.stop();
    await refusingSmtp?.close();
    redis?.disconnect();
    await s?.close();
  });

  it('no canary in logs, Redis, Postgres, Slack calls or emails after every path ran', async () => {
    // ── run 1: normal polls, syncs and deactivations; Slack fails twice; SMTP refuses the login; Postgres errs ──
    s.slack.failNext(1, { error: 'invalid_auth' });
    s.slack.failNext(1, { status: 500 });
    await first.start();
    await waitUntil(
      'an inventory sync and a poll',
      async () => {
        const keys = await s.t.db.selectFrom('api_keys').select('id').execute();
        const polled = s.emulator.requestLog.some(
          (r) => r.path.startsWith('/v1/organizations/usage_report') && r.status === 200,
        );
        return keys.length > 0 && polled;
      },
      40_000,
    );
    await waitUntil(
      'Slack answering invalid_auth, 500 and then ok',
      () => {
        const answers = s.slack.calls.map((c) => c.response);
        return (
          answers.some((a) => a?.error === 'invalid_auth') &&
          answers.some((a) => a?.status === 500) &&
          answers.some((a) => a?.ok === true)
        );
      },
      40_000,
    );
    const refusedMail = await waitUntil(
      'an email refused at login',
      () =>
        s.t.db
          .selectFrom('notifications')
          .select('last_error')
          .where('channel', '=', 'email')
          .where('last_error', 'is not', null)
          .executeTakeFirst(),
      40_000,
    );
    expect(refusedMail.last_error).toMatch(/535|auth/i);
    await waitUntil(
      'a key deactivation, audited',
      () => s.t.db.selectFrom('audit_log').select('id').where('action', '=', 'api_key.deactivate').executeTakeFirst(),
      40_000,
    );
    // a Postgres error inside a job: the table poll-usage reads is gone for a few seconds
    await sql`ALTER TABLE watermarks RENAME TO watermarks_away`.execute(s.t.db);
    await first.current.waitForOutput(/relation \W+watermarks\W+ does not exist/, 20_000);
    await sql`ALTER TABLE watermarks_away RENAME TO watermarks`.execute(s.t.db);
    await first.stop();

    // ── run 2: mail goes through; the admin key is refused (blind) and comes back ──
    await s.worker.start();
    s.emulator.setAdminKeys([]);
    await waitUntil(
      'the blind alert in Slack and by email',
      () => {
        const slack = s.slack.calls.some((c) => /keywarden is blind/.test(String(c.args.text)) && c.response?.ok);
        return slack && s.smtp.messages.some((m) => /keywarden is blind/.test(m.subject));
      },
      40_000,
    );
    s.emulator.setAdminKeys([ADMIN_KEY]);
    await waitUntil(
      'the blind alert resolved',
      () => s.smtp.messages.some((m) => /Resolved/.test(m.subject) && /keywarden is blind/.test(m.subject)),
      40_000,
    );
    await s.worker.stop();

    // ── each canary was used ──
    expect(s.emulator.requestLog.filter((r) => r.status === 200).length).toBeGreaterThan(0); // only ADMIN_KEY is accepted
    expect(s.emulator.requestLog.some((r) => r.status === 401)).toBe(true);
    expect(s.slack.calls.filter((c) => c.response?.ok).length).toBeGreaterThan(0); // only SLACK_TOKEN is accepted
    expect(s.smtp.messages.length).toBeGreaterThan(0);
    expect(s.smtp.messages.every((m) => m.user === SMTP_USER)).toBe(true); // logged in with SMTP_PASSWORD

    // ── and appears nowhere ──
    const output = first.output() + s.worker.output();
    expect(output).toMatch(/"level":10/); // trace lines were written
    const db = await dumpDatabase(s);
    const audit = await s.t.db.selectFrom('audit_log').selectAll().execute();
    expect(audit.length).toBeGreaterThan(0);
    const redisText = await dumpRedis(redis);
    expect(redisText).toContain(`${s.prefix}:ingest:`); // the dump does hold the worker's queues
    const found = [
      ...leaks('worker output', output),
      ...leaks('Redis', redisText),
      ...leaks('Postgres', db.text),
      ...leaks('audit_log', JSON.stringify(audit)),
      ...leaks('Slack calls', JSON.stringify(s.slack.calls)),
      ...leaks('emails', [...s.smtp.messages, ...refusingSmtp.messages].map((m) => m.raw).join('\n')),
    ];
    console.log(
      `searched ${output.length} bytes of worker output, ${db.rows} database rows, ${s.slack.calls.length} Slack calls, ` +
        `${s.smtp.messages.length} emails for ${NEEDLES.length} canary forms`,
    );
    expect(found).toEqual([]);
  }, 180_000);
});
