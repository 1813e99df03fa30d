import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RaiseAlertsInput, raiseAlerts } from '../../src/alerts/store.ts';
import { alertsCommand } from '../../src/cli/alerts.ts';
import { fixedClock } from '../../src/clock.ts';
import { policySchema } from '../../src/config/policy.ts';
import { Secret } from '../../src/config/secret.ts';
import { createDb, type Db } from '../../src/db/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { createLogger } from '../../src/log.ts';
import { createEmailSender } from '../../src/notify/email.ts';
import type { Notifier } from '../../src/notify/notifier.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
import { overdueObservation, runawayObservation } from '../support/alerts.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { startRawTcpServer } from '../support/raw-tcp-server.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';

const MIN = 60_000;
const T0 = new Date('2026-11-29T10:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

const routes = policySchema.parse({
  routes: [
    { match: { kind: 'usage.*' }, slack: ['#ai-alerts'], repeat_every: '1h' },
    { match: { kind: 'rotation.*' }, slack: ['#security'], email: ['key_owner', 'security@acme.com'] },
  ],
}).routes;

let tdb: TestDatabase;
let db: Db;
let slack: SlackServer;
let smtp: SmtpCapture;
let adapters: Notifier;
let store: { repos: ReturnType<typeof createRepos> };
const log = createLogger({ level: 'silent' });

/** One deliver-notifications run at `now`, as the job runs it (`db`: another replica's connection). */
function deliver(now: Date, opts: { notifier?: Notifier; db?: Db; batch?: number } = {}) {
  const ctx = {
    repos: opts.db === undefined ? store.repos : createRepos(opts.db),
    notifier: opts.notifier ?? adapters,
    clock: fixedClock(now),
    log,
  };
  return deliverNotifications(ctx, opts.batch === undefined ? {} : { batch: opts.batch });
}

beforeAll(async () => {
  [tdb, slack, smtp] = await Promise.all([createTestDatabase(), startSlackServer(), startSmtpCapture()]);
  db = tdb.db;
  store = { repos: createRepos(db) };
  adapters = {
    slack: createSlackClient({ token: new Secret(slack.token), apiUrl: slack.url, timeoutMs: 2000 }),
    email: createEmailSender({
      smtpUrl: new Secret(smtp.url),
      from: 'keywarden@acme.com',
      timeouts: { connectionMs: 1000, greetingMs: 1000, socketMs: 2000 },
    }),
    close: async () => {},
  };
});

afterAll(async () => {
  await Promise.all([tdb?.drop(), slack?.close(), smtp?.close()]);
});

beforeEach(async () => {
  await db.deleteFrom('notifications').execute();
  await db.deleteFrom('alerts').execute();
  slack.reset();
  smtp.reset();
});

const posts = () => slack.calls.filter((c) => c.method === 'chat.postMessage' && c.response?.ok);

describe('outbox delivery', () => {
  it('routes to Slack and email with the right content; repeat and resolve go in the thread', async () => {
    await raiseAlerts(
      store,
      { kinds: ['rotation.overdue'], observations: [overdueObservation('k1', 'ci-deploy', 'ana@acme.com')] },
      routes,
      T0,
    );
    expect(await deliver(T0)).toEqual({ sent: 3, retrying: 0, failed: 0 });
    const [first] = posts();
    expect(first?.args.channel).toBe('#security');
    expect(String(first?.args.text)).toContain('ci-deploy');
    expect(smtp.messages.flatMap((m) => m.to).sort()).toEqual(['ana@acme.com', 'security@acme.com']);
    expect(smtp.messages[0]?.subject).toContain('ci-deploy');

    // 3 h: no repeat yet (4 h default); 4 h: repeat, in the thread
    await raiseAlerts(
      store,
      { kinds: ['rotation.overdue'], observations: [overdueObservation('k1', 'ci-deploy', 'ana@acme.com')] },
      routes,
      at(180 * MIN),
    );
    await raiseAlerts(
      store,
      { kinds: ['rotation.overdue'], observations: [overdueObservation('k1', 'ci-deploy', 'ana@acme.com')] },
      routes,
      at(240 * MIN),
    );
    await raiseAlerts(store, { kinds: ['rotation.overdue'], observations: [] }, routes, at(250 * MIN));
    await deliver(at(250 * MIN));
    const slackPosts = posts();
    expect(slackPosts).toHaveLength(3);
    expect(slackPosts[1]?.args.thread_ts).toBe(first?.response?.ts);
    expect(slackPosts[2]?.args.thread_ts).toBe(first?.response?.ts);
    expect(String(slackPosts[2]?.args.text)).toContain('Resolved');
    // firing, repeat and resolve, each to the owner and to security
    expect(smtp.messages).toHaveLength(6);
  });

  it('a storm of 40 runaway keys is one Slack message listing them', async () => {
    const observations = Array.from({ length: 40 }, (_, i) => runawayObservation(`apikey_${i}`));
    const r = await raiseAlerts(store, { kinds: ['usage.runaway'], observations }, routes, T0);
    expect(r).toMatchObject({ fired: 40, notifications: 1 });
    await deliver(T0);
    expect(posts()).toHaveLength(1);
    expect(JSON.stringify(posts()[0]?.args.blocks)).toContain('apikey_39');
  });

  it('Slack 429 with Retry-After: waits as told, then delivers once', async () => {
    await raiseAlerts(store, { kinds: ['usage.runaway'], observations: [runawayObservation('k1')] }, routes, T0);
    slack.failNext(1, { status: 429, retryAfter: 30 });
    expect(await deliver(T0)).toMatchObject({ sent: 0, retrying: 1 });
    expect(await deliver(at(29_000))).toMatchObject({ sent: 0, retrying: 0 });
    // counted from the 429's answer: a moment after T0 + 30 s (the run's own time), never before
    expect(await deliver(at(30_000))).toMatchObject({ sent: 0 });
    expect(await deliver(at(31_000))).toMatchObject({ sent: 1 });
    await deliver(at(60 * MIN));
    expect(posts()).toHaveLength(1);
  });

  it('Slack 429: the run holds its other Slack messages untried until Retry-After; email goes on', async () => {
    await raiseAlerts(store, { kinds: ['usage.runaway'], observations: [runawayObservation('k1')] }, routes, T0);
    await raiseAlerts(
      store,
      { kinds: ['rotation.overdue'], observations: [overdueObservation('k2', 'ci-deploy', 'ana@acme.com')] },
      routes,
      T0,
    );
    slack.failNext(1, { status: 429, retryAfter: 30 });
    expect(await deliver(T0)).toEqual({ sent: 2, retrying: 2, failed: 0 });
    // one call to Slack, refused; the second Slack message was not sent to be refused too
    expect(slack.calls.filter((c) => c.method === 'chat.postMessage')).toHaveLength(1);
    expect(smtp.messages).toHaveLength(2);
    expect(await deliver(at(29_000))).toMatchObject({ sent: 0, retrying: 0 });
    expect(await deliver(at(31_000))).toEqual({ sent: 2, retrying: 0, failed: 0 });
    expect(posts().map((p) => p.args.channel)).toEqual(['#ai-alerts', '#security']);
    // the held message was tried once, when it was sent: holding it counted no attempt
    const attempts = await db
      .selectFrom('notifications')
      .select(['target', 'attempts'])
      .where('channel', '=', 'slack')
      .orderBy('id')
      .execute();
    expect(attempts).toEqual([
      { target: '#ai-alerts', attempts: 2 },
      { target: '#security', attempts: 1 },
    ]);
  });

  it('SMTP down for several minutes: every email delivered once when it is back', async () => {
    const obs = ['a', 'b', 'c'].map((k) => overdueObservation(k, `key-${k}`, `${k}@acme.com`));
    // one run per key, so each is its own message (grouping would make them one)
    for (const [i, o] of obs.entries()) await raiseAlerts(store, { kinds: [], observations: [o] }, routes, at(i));
    await smtp.setDown(true);
    for (let m = 0; m < 6; m++) await deliver(at(m * MIN + 10));
    await smtp.setDown(false);
    for (let m = 6; m < 40; m++) await deliver(at(m * MIN + 10));
    const to = smtp.messages.flatMap((m) => m.to).sort();
    expect(to).toEqual([
      'a@acme.com',
      'b@acme.com',
      'c@acme.com',
      'security@acme.com',
      'security@acme.com',
      'security@acme.com',
    ]);
    const rows = await db
      .selectFrom('notifications')
      .select(['channel', 'status', 'possibly_duplicate', 'attempts'])
      .orderBy('id')
      .execute();
    expect(rows.every((r) => r.status === 'sent' && !r.possibly_duplicate)).toBe(true);
    // the server down held each run's other emails behind the first one: only that one ran up attempts
    const emailAttempts = rows.filter((r) => r.channel === 'email').map((r) => r.attempts);
    expect(emailAttempts.slice(1)).toEqual([1, 1, 1, 1, 1]);
    expect(emailAttempts[0]).toBeGreaterThan(3);
  });

  it('an SMTP server that accepts and never greets costs one timeout per run, and Slack goes out meanwhile', async () => {
    const silent = await startRawTcpServer();
    const hung: Notifier = {
      ...adapters,
      email: createEmailSender({
        smtpUrl: new Secret(`smtp://keywarden:pw@127.0.0.1:${silent.port}`),
        from: 'keywarden@acme.com',
        timeouts: { connectionMs: 1000, greetingMs: 300, socketMs: 1000 },
      }),
    };
    try {
      const obs = ['a', 'b', 'c'].map((k) => overdueObservation(k, `key-${k}`, `${k}@acme.com`));
      for (const [i, o] of obs.entries()) await raiseAlerts(store, { kinds: [], observations: [o] }, routes, at(i));
      expect(await deliver(at(10), { notifier: hung })).toEqual({ sent: 3, retrying: 6, failed: 0 });
      expect(silent.connections).toBe(1);
      expect(posts()).toHaveLength(3);
    } finally {
      await silent.close();
    }
  });

  it('a worker that died between send and commit: retried once, marked possibly duplicate', async () => {
    await raiseAlerts(store, { kinds: ['usage.runaway'], observations: [runawayObservation('k1')] }, routes, T0);
    // the crashed run: it claimed the row (committed `sending` with a lease), posted, and died before recording it
    await db
      .updateTable('notifications')
      .set({ status: 'sending', attempts: 1, next_attempt_at: at(5 * MIN) })
      .execute();
    await adapters.slack?.postMessage({ channel: '#ai-alerts', text: 'sent by the crashed run', blocks: [] });
    expect(await deliver(at(MIN))).toMatchObject({ sent: 0 });
    expect(await deliver(at(5 * MIN))).toMatchObject({ sent: 1 });
    await deliver(at(60 * MIN));
    expect(posts()).toHaveLength(2);
    const row = await db.selectFrom('notifications').selectAll().executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'sent', possibly_duplicate: true });

    const listing = await alertsCommand(store, []);
    expect(listing).toContain('usage.runaway');
    expect(listing).toContain('firing   slack #ai-alerts: sent (2 attempts)');
    expect(listing).toContain('possibly duplicated');
    const [listed] = JSON.parse(await alertsCommand(store, ['--json']));
    expect(listed.deliveries).toMatchObject([{ status: 'sent', possiblyDuplicate: true, target: '#ai-alerts' }]);
  });

  it('escapes user-controlled names end to end', async () => {
    const names = ['<!channel>', '<https://x|y>', '<script>alert(1)</script>', 'evil\r\nBcc: x@evil.com'];
    for (const [i, n] of names.entries()) {
      await raiseAlerts(store, { kinds: [], observations: [overdueObservation(`k${i}`, n, null)] }, routes, at(i));
    }
    await deliver(at(MIN));
    // Slack parses mentions and links in the text fallback and in mrkdwn, never in plain_text (the header)
    const mrkdwn = (blocks: unknown): string[] =>
      JSON.stringify(blocks)
        .match(/"type":"mrkdwn","text":"(?:[^"\\]|\\.)*"/g)
        ?.map((m) => JSON.parse(`{${m}}`).text as string) ?? [];
    const texts = posts().map((p) => [String(p.args.text), ...mrkdwn(p.args.blocks)].join(' '));
    expect(texts).toHaveLength(4);
    for (const t of texts) {
      expect(t).not.toContain('<!channel>');
      expect(t).not.toContain('<https://x|y>');
    }
    expect(texts.join(' ')).toContain('&lt;!channel&gt;');
    // the CR/LF name is flattened into one line, not refused: security still hears about that key
    expect(smtp.messages).toHaveLength(4);
    for (const m of smtp.messages) {
      expect(m.html).not.toContain('<script>');
      expect(m.headers.bcc).toBeUndefined();
      expect(m.subject).not.toMatch(/[\r\n]/);
    }
    expect(smtp.messages.flatMap((m) => m.to)).toEqual(Array(smtp.messages.length).fill('security@acme.com'));
  });

  it('two replicas raising the same alert at once write one notification', async () => {
    const other = createDb(tdb.url, { max: 2 });
    try {
      const input: RaiseAlertsInput = { kinds: ['usage.runaway'], observations: [runawayObservation('k1')] };
      await Promise.all([
        raiseAlerts(store, input, routes, T0),
        raiseAlerts({ repos: createRepos(other) }, input, routes, T0),
      ]);
      expect(await db.selectFrom('notifications').select('id').execute()).toHaveLength(1);
    } finally {
      await other.destroy();
    }
  });

  it('two concurrent delivery runs never send one row twice', async () => {
    const other = createDb(tdb.url, { max: 2 });
    try {
      for (let i = 0; i < 20; i++)
        await raiseAlerts(store, { kinds: [], observations: [runawayObservation(`k${i}`)] }, routes, at(i));
      const results = await Promise.all([
        deliver(at(MIN), { batch: 7 }),
        deliver(at(MIN), { db: other, batch: 7 }),
        deliver(at(MIN), { batch: 7 }),
      ]);
      expect(results.reduce((s, r) => s + r.sent, 0)).toBe(20);
      expect(posts()).toHaveLength(20);
    } finally {
      await other.destroy();
    }
  });
});
