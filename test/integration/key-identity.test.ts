import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { securityDigestJob } from '../../jobs/security-digest.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Secret } from '../../src/config/secret.ts';
import { loadScenario, parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { blockKitErrors } from '../../src/notify/dev/slack-standin.ts';
import { createEmailSender } from '../../src/notify/email.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { DEMO_ADMIN_KEY, DEMO_START, keyIdByName } from '../support/demo-org.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { type CapturedEmail, type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';

/**
 * Key identity end to end, on the demo organization served in 2026 shapes (the ones that carry `principal`): the
 * production services run on service-account keys, "Data labeling batch" is Chloe's personal key carrying traffic
 * around the clock, "Research notebook" is the personal key of Bob, who left, still in use, and "Legacy
 * integration" is a legacy workspace key that never expires. A legacy key with a hostile name rides along.
 */

const HOSTILE = '<!channel> <@U0BOSS|boss> *urgent* `key`\n<https://evil.example|click>';
const SECURITY_EMAIL = 'security@acme.example';
const SECURITY_SLACK = '#security';

const demo = loadScenario('demo');
const scenario = parseScenario({
  ...demo,
  api_shape: '2026',
  keys: [...demo.keys, { name: HOSTILE, created_by: null, age_days: 10 }],
});

const clock = fixedClock(DEMO_START);
let t: TestDatabase;
let emulator: Emulator;
let slack: SlackServer;
let smtp: SmtpCapture;
let env: ReturnType<typeof testJobContext>;

beforeAll(async () => {
  [t, emulator, slack, smtp] = await Promise.all([
    createTestDatabase(),
    startEmulator({ scenario, clock, startAt: DEMO_START }),
    startSlackServer(),
    startSmtpCapture(),
  ]);
  const policy = join(mkdtempSync(join(tmpdir(), 'kw-identity-')), 'keywarden.yaml');
  writeFileSync(
    policy,
    `organization: { name: "Acme AI", timezone: UTC }
routes:
  - { match: { kind: "key.*" }, slack: ["${SECURITY_SLACK}"], email: ["${SECURITY_EMAIL}"] }
digests:
  security: { cron: "0 9 * * 1", email: ["${SECURITY_EMAIL}"], slack: ["${SECURITY_SLACK}"] }
`,
  );
  env = testJobContext({
    db: t.db,
    emulatorUrl: emulator.url,
    adminKey: DEMO_ADMIN_KEY,
    clock,
    config: loadConfig({ env: { KEYWARDEN_CONFIG: policy } }),
    notifier: {
      slack: createSlackClient({ token: new Secret(slack.token), apiUrl: slack.url, timeoutMs: 2000 }),
      email: createEmailSender({ smtpUrl: new Secret(smtp.url), from: 'keywarden@acme.example' }),
      close: async () => {},
    },
  });
  // the month's usage first (the first poll backfills it hourly), so the first sync reads the keys' traffic
  await pollUsageJob.handler(env.ctx, {});
}, 120_000);

afterAll(async () => {
  await env?.close();
  await Promise.all([emulator?.close(), slack?.close(), smtp?.close()]);
  await t?.drop();
});

const identityAlerts = async () =>
  (
    await t.db
      .selectFrom('alerts as a')
      .innerJoin('api_keys as k', 'k.id', 'a.scope_id')
      .select(['k.name', 'a.period', 'a.state', 'a.severity'])
      .where('a.kind', '=', 'key.identity')
      .orderBy('k.name')
      .orderBy('a.period')
      .execute()
  ).map((a) => `${a.name}: ${a.period} ${a.state} ${a.severity}`);

const notificationsOf = (kind: string) =>
  t.db
    .selectFrom('notifications')
    .select(['event', 'channel', 'target'])
    .where(sql<string>`payload->'notification'->>'kind'`, '=', kind)
    .orderBy('id');

const postsTo = (channel: string) =>
  slack.calls.filter((c) => c.method === 'chat.postMessage' && c.args.channel === channel && c.response?.ok);
const mailTo = (address: string) => smtp.messages.filter((m) => m.to.includes(address));

function section(mail: CapturedEmail, title: string): string {
  const start = mail.text.indexOf(`${title}\n`);
  if (start < 0) throw new Error(`no section "${title}" in:\n${mail.text}`);
  const end = mail.text.indexOf('\n\n', start);
  return mail.text.slice(start, end < 0 ? undefined : end);
}

describe('key identity', () => {
  it('classifies every key, raises key.identity per key and finding, and resolves it when the finding ends', async () => {
    const summary = (await syncInventory.handler(env.ctx, {})) as Record<string, unknown>;

    const stored = await t.db.selectFrom('api_keys').select(['name', 'identity']).orderBy('name').execute();
    const identity = Object.fromEntries(stored.map((k) => [k.name, k.identity]));
    expect(identity).toMatchObject({
      'Production Backend': 'service_account',
      'Support bot': 'service_account',
      'CI runner': 'service_account',
      'Data labeling batch': 'personal',
      'Research notebook': 'personal',
      'Legacy integration': 'legacy',
      [HOSTILE]: 'legacy',
    });

    const alerts = await identityAlerts();
    for (const expected of [
      'Data labeling batch: around_the_clock firing warning',
      'Research notebook: owner_left firing warning',
      'Research notebook: dead_in_use firing critical',
      'Legacy integration: legacy firing info',
      'Legacy integration: no_expiry firing info',
      `${HOSTILE}: legacy firing info`,
      'Production Backend: no_expiry firing info',
    ]) {
      expect(alerts).toContain(expected);
    }
    // service accounts are not legacy; the personal keys with an owner at work and the services are not flagged
    expect(alerts.filter((a) => a.startsWith('Production Backend: legacy'))).toEqual([]);
    expect(alerts.filter((a) => a.includes('claude_code') && a.includes('around_the_clock'))).toEqual([]);
    // a key with an expiry date has no no_expiry finding
    expect(alerts.filter((a) => a.startsWith('Slack assistant: no_expiry'))).toEqual([]);
    // Bob's notebook is his personal key: dead, not orphaned (key.orphaned keeps to keys no one stands behind)
    expect(summary.orphanedKeys).toEqual([]);
    expect(await t.db.selectFrom('alerts').select('id').where('kind', '=', 'key.orphaned').execute()).toEqual([]);

    // one message for the kind's new alerts, to each target of the route
    expect(await notificationsOf('key.identity').execute()).toEqual([
      { event: 'firing', channel: 'slack', target: SECURITY_SLACK },
      { event: 'firing', channel: 'email', target: SECURITY_EMAIL },
    ]);
    expect(await deliverNotifications(env.ctx)).toMatchObject({ failed: 0 });
    const [post] = postsTo(SECURITY_SLACK);
    expect(blockKitErrors(post!.args.blocks as unknown[])).toEqual([]);
    const posted = JSON.stringify(post!.args);
    expect(posted).toContain('Dead API key \\"Research notebook\\" still carries traffic');
    expect(posted).toContain('Personal API key \\"Data labeling batch\\" carries service traffic around the clock');
    // the hostile name is shown, never obeyed: no mention, no link, no formatting reaches Slack
    expect(posted).not.toContain('<!channel>');
    expect(posted).not.toContain('<@U0BOSS');
    expect(posted).not.toContain('<https://evil.example');
    const [mail] = mailTo(SECURITY_EMAIL);
    expect(mail!.text).toContain('API key "Legacy integration" is a legacy workspace key');
    expect(mail!.html).not.toContain('<!channel>');

    // a second sync with nothing changed says nothing new
    clock.advance(10 * 60_000);
    await syncInventory.handler(env.ctx, {});
    expect(await notificationsOf('key.identity').execute()).toHaveLength(2);

    // retiring the legacy key ends its findings: they resolve, said once to each target
    await env.ctx.admin.updateApiKey(await keyIdByName(t.db, 'Legacy integration'), { status: 'inactive' });
    clock.advance(60_000);
    await syncInventory.handler(env.ctx, {});
    await syncInventory.handler(env.ctx, {});
    const after = await identityAlerts();
    expect(after).toContain('Legacy integration: legacy resolved info');
    expect(after).toContain('Legacy integration: no_expiry resolved info');
    expect(after).toContain('Research notebook: dead_in_use firing critical');
    expect((await notificationsOf('key.identity').execute()).map((n) => `${n.event} ${n.channel}`)).toEqual([
      'firing slack',
      'firing email',
      'resolved slack',
      'resolved email',
    ]);
  });

  it('the security digest shows the share of traffic by identity and lists the identity findings', async () => {
    expect(await securityDigestJob.handler(env.ctx, {})).toMatchObject({ queued: 2 });
    expect(await deliverNotifications(env.ctx)).toMatchObject({ failed: 0 });
    const mail = mailTo(SECURITY_EMAIL).find((m) => m.subject.includes('Security digest'))!;

    const traffic = section(mail, 'Traffic by identity, last 7 days');
    expect(traffic).toMatch(/Service accounts\s+\d+\s+\$[\d,]+\.\d\d\s+\d+(\.\d)?%\s+[\d,]+\s+\d+(\.\d)?%/);
    expect(traffic).toMatch(/Personal keys \(a user\)\s+2\s/);
    expect(traffic).toMatch(/Legacy workspace keys\s+\d+\s/);
    expect(mail.text).toMatch(/Of the last 7 days' spend, \d+(\.\d)?% ran on service-account keys/);

    const findings = section(mail, 'Identity findings');
    const lines = findings.split('\n');
    // dead keys in use first
    expect(lines[4]).toMatch(
      /^Research notebook\s+Research\s+personal \(a user\)\s+dead \(its owner left\), still in use$/,
    );
    expect(findings).toMatch(
      /Data labeling batch\s+Research\s+personal \(a user\)\s+service traffic around the clock \(\d of 7 days\)/,
    );
    expect(findings).not.toContain('Legacy integration'); // retired above
    // plain text shows the hostile name as it is (nothing reads it as markup); the HTML part escapes it
    expect(findings).toContain(HOSTILE.split('\n')[0]!.slice(0, 40));
    expect(mail.html).not.toContain('<!channel>');

    const post = postsTo(SECURITY_SLACK).find((p) => JSON.stringify(p.args.blocks).includes('Security digest'))!;
    expect(blockKitErrors(post.args.blocks as unknown[])).toEqual([]);
    const blocks = JSON.stringify(post.args.blocks);
    expect(blocks).toContain('*Identity findings*');
    expect(blocks).toContain('*Research notebook*');
    expect(blocks).not.toContain('<!channel>');
  });
});
