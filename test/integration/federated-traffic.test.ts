import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { reconcileCostsJob } from '../../jobs/reconcile-costs.ts';
import { securityDigestJob } from '../../jobs/security-digest.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { ANALYTICS_BETA } from '../../src/anthropic/analytics.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Secret } from '../../src/config/secret.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { loadSecurityData } from '../../src/digest/security-data.ts';
import { loadScenario, parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { formatUsd, usdToPico } from '../../src/money.ts';
import { blockKitErrors } from '../../src/notify/dev/slack-standin.ts';
import { createEmailSender } from '../../src/notify/email.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { type CapturedEmail, type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';

/**
 * Federated (workload-identity) traffic end to end: the quiet organization plus two federated workloads (no API
 * key; one with a hostile subject), served by the emulator; the usage poll, the billed-cost ingest and the weekly
 * security digest through the SMTP and Slack stand-ins.
 */

const NOW = new Date('2026-11-16T06:00:00Z');
const DEPLOY = 'repo:quiet/deploy:ref:refs/heads/main';
const HOSTILE = '<!channel> <@U0BOSS|boss> *urgent* <https://evil.example|click>';
const SECURITY_EMAIL = 'security@quiet.example';
const SECURITY_SLACK = '#security';

const quiet = loadScenario('quiet');
const federated = [
  {
    subject: DEPLOY,
    workspace: 'Product',
    age_days: 30,
    traffic: { tokens_per_minute: 20_000, models: { 'claude-sonnet-4-5': 1 } },
  },
  { subject: HOSTILE, age_days: 30, traffic: { tokens_per_minute: 2_000, models: { 'claude-haiku-4-5': 1 } } },
];
const scenario = parseScenario({ ...quiet, api_shape: '2026', federated }, 'quiet + federated');

const clock = fixedClock(NOW);
let t: TestDatabase;
let emulator: Emulator;
let plain: Emulator;
let slack: SlackServer;
let smtp: SmtpCapture;
let env: ReturnType<typeof testJobContext>;

beforeAll(async () => {
  [t, emulator, plain, slack, smtp] = await Promise.all([
    createTestDatabase(),
    startEmulator({ scenario, clock, startAt: NOW, freshnessDelayMinutes: 0 }),
    startEmulator({
      scenario: parseScenario({ ...quiet, api_shape: '2026' }, 'quiet'),
      clock,
      startAt: NOW,
      freshnessDelayMinutes: 0,
    }),
    startSlackServer(),
    startSmtpCapture(),
  ]);
  const policy = join(mkdtempSync(join(tmpdir(), 'kw-federated-')), 'keywarden.yaml');
  writeFileSync(
    policy,
    `organization: { name: "Quiet Co", timezone: UTC }
digests:
  security: { cron: "0 9 * * 1", email: ["${SECURITY_EMAIL}"], slack: ["${SECURITY_SLACK}"] }
`,
  );
  env = testJobContext({
    db: t.db,
    emulatorUrl: emulator.url,
    adminKey: quiet.admin_keys[0]!,
    clock,
    config: loadConfig({ env: { KEYWARDEN_CONFIG: policy } }),
    notifier: {
      slack: createSlackClient({ token: new Secret(slack.token), apiUrl: slack.url, timeoutMs: 2000 }),
      email: createEmailSender({ smtpUrl: new Secret(smtp.url), from: 'keywarden@quiet.example' }),
      close: async () => {},
    },
  });
}, 120_000);

afterAll(async () => {
  await env?.close();
  await Promise.all([emulator?.close(), plain?.close(), slack?.close(), smtp?.close()]);
  await t?.drop();
});

/** The day before NOW, through the emulator's HTTP API with the admin key. */
async function get(base: string, path: string, query: string): Promise<unknown> {
  const res = await fetch(`${base}${path}?${query}`, {
    headers: { 'x-api-key': quiet.admin_keys[0]!, 'anthropic-version': '2023-06-01', 'anthropic-beta': ANALYTICS_BETA },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json();
}
const DAY_QUERY = 'starting_at=2026-11-15T00:00:00Z&ending_at=2026-11-16T00:00:00Z';

function section(mail: CapturedEmail, title: string): string {
  const start = mail.text.indexOf(`${title}\n`);
  if (start < 0) throw new Error(`no section "${title}" in:\n${mail.text}`);
  const end = mail.text.indexOf('\n\n', start);
  return mail.text.slice(start, end < 0 ? undefined : end);
}

describe('federated identities', () => {
  it('the emulator serves federated usage without a key as federated_actor; the keys’ figures are unchanged', async () => {
    const usage = (await get(
      emulator.url,
      '/v1/organizations/analytics/usage',
      `${DAY_QUERY}&group_by[]=actor&group_by[]=api_key_id&limit=1000`,
    )) as { data: Array<{ group: { actor: { type: string; subject?: string }; api_key_id: string | null } }> };
    const fed = usage.data.filter((r) => r.group.actor.type === 'federated_actor');
    expect(fed.map((r) => r.group.actor.subject).sort()).toEqual([HOSTILE, DEPLOY].sort());
    expect(fed.every((r) => r.group.api_key_id === null)).toBe(true);

    // an empty api_key_ids[] entry is usage with no key: only the federated workloads
    const noKey = (await get(
      emulator.url,
      '/v1/organizations/analytics/cost',
      `${DAY_QUERY}&group_by[]=actor_type&api_key_ids[]=`,
    )) as { data: Array<{ group: { actor_type: string } }> };
    expect(noKey.data.map((r) => r.group.actor_type)).toEqual(['federated_actor']);

    // the keys' own figures (analytics per key, classic usage report) are those of the scenario without them
    const keyCost = 'group_by[]=api_key_id&group_by[]=model&limit=1000&actor_types[]=service_account_actor';
    expect(await get(emulator.url, '/v1/organizations/analytics/cost', `${DAY_QUERY}&${keyCost}`)).toEqual(
      await get(plain.url, '/v1/organizations/analytics/cost', `${DAY_QUERY}&${keyCost}`),
    );
    const classic = `${DAY_QUERY}&bucket_width=1h&group_by[]=api_key_id&limit=24`;
    expect(await get(emulator.url, '/v1/organizations/usage_report/messages', classic)).toEqual(
      await get(plain.url, '/v1/organizations/usage_report/messages', classic),
    );
  });

  it('the security digest shows federated spend from the stored bill and its share of the whole', async () => {
    await pollUsageJob.handler(env.ctx, {});
    await syncInventory.handler(env.ctx, {});
    await reconcileCostsJob.handler(env.ctx, {});
    const stored = await t.db
      .selectFrom('billed_costs')
      .select(['actor_id', sql<string>`sum(amount_usd)::text`.as('usd')])
      .where('actor_type', '=', 'federated_actor')
      .where('starting_at', '>=', new Date(NOW.getTime() - 7 * 86_400_000))
      .groupBy('actor_id')
      .orderBy('actor_id')
      .execute();
    expect(stored.map((r) => r.actor_id).sort()).toEqual([HOSTILE, DEPLOY].sort());

    expect(await securityDigestJob.handler(env.ctx, {})).toMatchObject({ queued: 2 });
    expect(await deliverNotifications(env.ctx)).toMatchObject({ failed: 0 });
    const mail = smtp.messages.find((m) => m.to.includes(SECURITY_EMAIL) && m.subject.includes('Security digest'))!;

    const traffic = section(mail, 'Traffic by identity, last 7 days');
    const federatedUsd = stored.reduce((sum, r) => sum + usdToPico(r.usd), 0n);
    const row = new RegExp(
      `Federated identities \\(workload identity\\)\\s+0\\s+${formatUsd(federatedUsd).replace('$', '\\$')}\\s+(\\d+(?:\\.\\d)?)%\\s+not reported\\s+–`,
    ).exec(traffic);
    expect(row, traffic).not.toBeNull();
    // the share is of the whole table: every row's spend, the federated one included
    const spends = [...traffic.matchAll(/\$([\d,]+\.\d\d)/g)].map((m) => Number(m[1]!.replace(/,/g, '')));
    const whole = spends.reduce((a, b) => a + b, 0);
    const expected = (Number(federatedUsd / 1_000_000n) / 1e6 / whole) * 100;
    expect(Number(row![1])).toBeCloseTo(expected, expected < 10 ? 1 : 0);
    expect(mail.text).toMatch(
      /Of the last 7 days' spend, \d+(\.\d)?% ran on service-account keys, \d+(\.\d)?% on federated identities \(no key\)/,
    );

    const subjects = section(mail, 'Federated identities (workload identity), last 7 days');
    expect(subjects.split('\n')[4], subjects).toMatch(
      new RegExp(`^${DEPLOY.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s+\\$`),
    );
    // the hostile subject is shown as text: escaped in HTML, no mention, link or formatting in Slack
    expect(subjects).toContain(HOSTILE.slice(0, 30));
    expect(mail.html).not.toContain('<!channel>');
    const post = slack.calls.find(
      (c) =>
        c.method === 'chat.postMessage' &&
        c.args.channel === SECURITY_SLACK &&
        JSON.stringify(c.args.blocks).includes('Security digest'),
    )!;
    expect(blockKitErrors(post.args.blocks as unknown[])).toEqual([]);
    const blocks = JSON.stringify(post.args.blocks);
    expect(blocks).toContain('Federated identities');
    expect(blocks).not.toContain('<!channel>');
    expect(blocks).not.toContain('<https://evil.example');
  });

  it('has no federated row once the analytics API refuses', async () => {
    const repos = createRepos(t.db);
    const opts = { organizationName: 'Quiet Co', timezone: 'UTC' };
    expect((await loadSecurityData(repos, NOW, opts)).federatedTraffic).not.toBeNull();
    await repos.billing.recordAccess('analytics.cost', false, 'api_key_scope_missing', NOW);
    expect((await loadSecurityData(repos, NOW, opts)).federatedTraffic).toBeNull();
  });
});
