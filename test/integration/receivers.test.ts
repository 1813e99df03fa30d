import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AlertObservation } from '../../src/alerts/core/lifecycle.ts';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { alertsCommand } from '../../src/cli/alerts.ts';
import { fixedClock } from '../../src/clock.ts';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { Secret } from '../../src/config/secret.ts';
import type { Db } from '../../src/db/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { enqueueDigest } from '../../src/digest/enqueue.ts';
import type { AlertKind } from '../../src/kinds.ts';
import { createLogger } from '../../src/log.ts';
import { webhookId } from '../../src/notify/adapters.ts';
import type { Notifier } from '../../src/notify/notifier.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { createPagerDutyClient, renderPagerDutyEvent } from '../../src/notify/pagerduty.ts';
import { createTeamsClient } from '../../src/notify/teams.ts';
import { createWebhookSender } from '../../src/notify/webhook.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import {
  type PagerDutyStandIn,
  startPagerDutyStandIn,
  startTeamsStandIn,
  startWebhookReceiver,
  type TeamsStandIn,
  type WebhookReceiver,
} from '../support/receiver-servers.ts';
import { webhookSchemaErrors } from '../support/webhook-schema.ts';

const MIN = 60_000;
const T0 = new Date('2026-11-29T10:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const OLD_SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';
/** Of the right shape, but not the one the stand-in's service has: PagerDuty answers 400. */
const WRONG_ROUTING_KEY = 'WR0NGKEY0123456789abcdefABCDEF00';

function runaway(keyId: string, name = `key ${keyId}`): AlertObservation {
  return {
    kind: 'usage.runaway',
    severity: 'critical',
    scopeType: 'key',
    scopeId: keyId,
    scopeName: name,
    workspaceId: 'wrkspc_1',
    workspaceName: 'Customer chatbot',
    period: '',
    title: `Runaway spend on key "${name}"`,
    summary: 'The key spent $412.50 in the last 10 minutes.',
    fields: [{ label: 'Key', value: name }],
    links: [{ label: 'Usage in the Console', url: 'https://console.anthropic.com/usage' }],
    details: {
      currentHourlyUsd: 412.5,
      typicalHourlyUsd: 3.1,
      thresholdHourlyUsd: 15.5,
      startedAt: T0.toISOString(),
    },
  };
}

function threshold(workspace: string): AlertObservation {
  return {
    kind: 'spend.threshold',
    severity: 'warning',
    scopeType: 'workspace',
    scopeId: `wrkspc_${workspace}`,
    workspaceId: `wrkspc_${workspace}`,
    workspaceName: workspace,
    period: '2026-11@0.8',
    title: `Workspace "${workspace}" reached 80% of its $1,000.00 limit for November`,
    summary: '$823.45 spent so far this month.',
    fields: [{ label: 'Workspace', value: workspace }],
    links: [{ label: 'Cost in the Console', url: 'https://console.anthropic.com/settings/cost' }],
    details: {
      month: '2026-11',
      limitUsd: '1000.000000000000',
      monthToDateUsd: '823.450000000000',
      p50Usd: '1100.000000000000',
      p90Usd: '1290.000000000000',
      threshold: 0.8,
    },
  };
}

function overdue(keyId: string, name: string): AlertObservation {
  return {
    kind: 'rotation.blocked',
    severity: 'critical',
    scopeType: 'key',
    scopeId: keyId,
    scopeName: name,
    workspaceId: null,
    period: '',
    title: `Overdue API key "${name}" still carries traffic`,
    fields: [{ label: 'Key', value: name }],
    details: { deadline: '2026-11-20T00:00:00.000Z', successor: 'apikey_successor' },
  };
}

let tdb: TestDatabase;
let db: Db;
let pd: PagerDutyStandIn;
let hook: WebhookReceiver;
let teams: TeamsStandIn;
let config: Config;
let adapters: Notifier;
let store: { repos: ReturnType<typeof createRepos> };
const log = createLogger({ level: 'silent' });

/** One deliver-notifications run at `now`, as the job runs it. */
function deliver(now: Date, notifier: Notifier = adapters) {
  return deliverNotifications({ repos: store.repos, notifier, clock: fixedClock(now), log });
}

beforeAll(async () => {
  [tdb, pd, hook, teams] = await Promise.all([
    createTestDatabase(),
    startPagerDutyStandIn(),
    startWebhookReceiver(SECRET),
    startTeamsStandIn(),
  ]);
  db = tdb.db;
  store = { repos: createRepos(db) };
  const dir = mkdtempSync(join(tmpdir(), 'kw-receivers-'));
  const path = join(dir, 'keywarden.yaml');
  writeFileSync(
    path,
    `organization: { name: "Acme AI" }
receivers:
  pagerduty:
    oncall: { routing_key_env: PD_ONCALL_KEY }
    misconfigured: { routing_key_env: PD_WRONG_KEY }
  webhook:
    ops: { url: "${hook.url}/keywarden", secret_env: OPS_WEBHOOK_SECRET }
  teams:
    finance: { url_env: TEAMS_FINANCE_URL }
    stale: { url_env: TEAMS_STALE_URL }
routes:
  - { match: { kind: "usage.*" }, pagerduty: ["oncall"], webhook: ["ops"], repeat_every: 1h }
  - { match: { kind: "spend.*" }, teams: ["finance"], webhook: ["ops"] }
  - { match: { kind: "rotation.*" }, pagerduty: ["misconfigured"], teams: ["stale"], webhook: ["ops"] }
digests:
  finance: { cron: "0 8 * * *", webhook: ["ops"] }
`,
  );
  config = loadConfig({
    env: {
      KEYWARDEN_CONFIG: path,
      PAGERDUTY_EVENTS_URL: pd.url,
      PD_ONCALL_KEY: pd.routingKey,
      PD_WRONG_KEY: WRONG_ROUTING_KEY,
      // the receiver still trusts the old secret only: signing with both is what lets it switch when it likes
      OPS_WEBHOOK_SECRET: `${OLD_SECRET} ${SECRET}`,
      TEAMS_FINANCE_URL: teams.workflowUrl,
      TEAMS_STALE_URL: teams.workflowUrl.replace(/sig=[^&]+/, 'sig=revoked'),
    },
  });
  adapters = {
    slack: null,
    email: null,
    pagerduty: createPagerDutyClient({
      receivers: config.receivers.pagerduty,
      eventsUrl: config.env.pagerdutyEventsUrl,
      timeoutMs: 2000,
    }),
    webhook: createWebhookSender({ receivers: config.receivers.webhook, timeoutMs: 2000 }),
    teams: createTeamsClient({ receivers: config.receivers.teams, timeoutMs: 2000 }),
    organization: config.policy.organization.name,
    close: async () => {},
  };
});

afterAll(async () => {
  await Promise.all([tdb?.drop(), pd?.close(), hook?.close(), teams?.close()]);
});

beforeEach(async () => {
  await db.deleteFrom('notifications').execute();
  await db.deleteFrom('alerts').execute();
  for (const s of [pd, hook, teams]) {
    s.calls.length = 0;
    s.failNext(0, { status: 200 });
  }
  pd.incidents.clear();
  pd.events.length = 0;
  hook.deliveries.length = 0;
  hook.refusals.length = 0;
  teams.cards.length = 0;
});

const raise = (observations: AlertObservation[], kinds: AlertKind[], now: Date) =>
  raiseAlerts(store, { kinds, observations }, config.policy.routes, now);

describe('PagerDuty (Events API v2 stand-in)', () => {
  it('one incident per alert, by fingerprint: trigger, repeat on the same incident, acknowledge, resolve', async () => {
    const r = await raise([runaway('apikey_a'), runaway('apikey_b')], ['usage.runaway'], T0);
    // one webhook message for the group, one PagerDuty event per alert
    expect(r.notifications).toBe(3);
    await deliver(T0);
    const fingerprints = ['usage.runaway|key|apikey_a|', 'usage.runaway|key|apikey_b|'];
    expect([...pd.incidents.keys()].sort()).toEqual(fingerprints);
    const a = pd.incidents.get(fingerprints[0]!)!;
    expect(a).toMatchObject({
      status: 'triggered',
      severity: 'critical',
      summary: 'Runaway spend on key "key apikey_a"',
    });
    expect(a.customDetails).toMatchObject({
      kind: 'usage.runaway',
      Key: 'key apikey_a',
      alert: { runaway: { rate_usd_per_hour: '412.50', baseline_usd_per_hour: '3.10' } },
    });
    expect(pd.events[0]).toMatchObject({
      links: [{ href: 'https://console.anthropic.com/usage', text: 'Usage in the Console' }],
    });

    // an hour on, still firing: a trigger PagerDuty adds to the open incident, not a second page
    await raise([runaway('apikey_a'), runaway('apikey_b')], ['usage.runaway'], at(60 * MIN));
    await deliver(at(60 * MIN));
    expect(pd.incidents.size).toBe(2);
    // acknowledged from Slack: the same dedup_key
    const ack = renderPagerDutyEvent(
      { kind: 'usage.runaway', event: 'firing', severity: 'critical', title: '', summary: '', fields: [], links: [] },
      fingerprints[0]!,
      null,
      'acknowledge',
    );
    expect(await adapters.pagerduty!.send('oncall', ack)).toMatchObject({ ok: true });
    await raise([], ['usage.runaway'], at(70 * MIN));
    await deliver(at(70 * MIN));
    expect(pd.incidents.get(fingerprints[0]!)).toMatchObject({
      status: 'resolved',
      actions: ['trigger', 'trigger', 'acknowledge', 'resolve'],
    });
    expect(pd.incidents.get(fingerprints[1]!)).toMatchObject({
      status: 'resolved',
      actions: ['trigger', 'trigger', 'resolve'],
    });
    const rows = await db.selectFrom('notifications').select(['status']).where('channel', '=', 'pagerduty').execute();
    expect(rows.map((row) => row.status)).toEqual(Array(6).fill('sent'));
  });

  it('a 400 is a failure of the message that names the field, never the routing key', async () => {
    await raise([overdue('apikey_old', 'ci-deploy')], ['rotation.blocked'], T0);
    await deliver(T0);
    const row = await db
      .selectFrom('notifications')
      .selectAll()
      .where('channel', '=', 'pagerduty')
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'failed', attempts: 1 });
    expect(row.last_error).toContain(`pagerduty "misconfigured" trigger: HTTP 400`);
    expect(row.last_error).toContain("'routing_key' is invalid");
    expect(row.last_error).not.toContain(WRONG_ROUTING_KEY);
  });

  it('a resolve waits for its trigger still in backoff: the incident is opened, then resolved, never left open', async () => {
    await raise([runaway('apikey_late')], ['usage.runaway'], T0);
    pd.failNext(1, { status: 500 });
    await deliver(T0); // the trigger fails: tried again 30 s on
    await raise([], ['usage.runaway'], at(10_000));
    await deliver(at(10_000)); // only the resolve is due, and it waits: sent now, PagerDuty would drop it
    for (const t of [40_000, 80_000, 120_000]) await deliver(at(t));
    expect(pd.incidents.get('usage.runaway|key|apikey_late|')).toMatchObject({
      status: 'resolved',
      actions: ['trigger', 'resolve'],
    });
    const rows = await db
      .selectFrom('notifications')
      .select(['event', 'status'])
      .where('channel', '=', 'pagerduty')
      .orderBy('id')
      .execute();
    expect(rows).toEqual([
      { event: 'firing', status: 'sent' },
      { event: 'resolved', status: 'sent' },
    ]);
  });

  it('a new episode waits for the last one still in backoff: firing, resolved, firing again reach PagerDuty in order', async () => {
    await raise([runaway('apikey_flap')], ['usage.runaway'], T0);
    pd.failNext(1, { status: 500 });
    await deliver(T0); // the first trigger fails: tried again 30 s on
    await raise([], ['usage.runaway'], at(10_000));
    await deliver(at(10_000));
    await raise([runaway('apikey_flap')], ['usage.runaway'], at(20_000));
    await deliver(at(20_000)); // the second episode's trigger is due now, but two older events are not out yet
    for (const t of [40_000, 80_000, 120_000, 160_000]) await deliver(at(t));
    const firing = await db.selectFrom('alerts').select('state').where('scope_id', '=', 'apikey_flap').execute();
    expect(firing.map((a) => a.state)).toContain('firing');
    expect(pd.incidents.get('usage.runaway|key|apikey_flap|')).toMatchObject({
      status: 'triggered',
      actions: ['trigger', 'resolve', 'trigger'],
    });
  });

  it('a 429 holds the run behind one call, and the events go out once Retry-After has passed', async () => {
    const keys = ['k1', 'k2', 'k3', 'k4', 'k5'];
    await raise(
      keys.map((k) => runaway(k)),
      ['usage.runaway'],
      T0,
    );
    pd.failNext(1, { status: 429, retryAfter: 30 });
    await deliver(T0);
    expect(pd.calls).toHaveLength(1);
    expect(pd.incidents.size).toBe(0);
    await deliver(at(20_000));
    expect(pd.calls).toHaveLength(1);
    await deliver(at(40_000));
    expect(pd.incidents.size).toBe(5);
    expect(pd.calls).toHaveLength(6);
  });
});

describe('signed webhooks (a receiver verifying with standardwebhooks)', () => {
  it('every delivery verifies, matches the documented schema, and carries its figures', async () => {
    await raise([runaway('apikey_a')], ['usage.runaway'], T0);
    await raise([threshold('Research')], ['spend.threshold'], T0);
    await raise([overdue('apikey_old', 'ci-deploy')], ['rotation.blocked'], T0);
    await deliver(T0);
    expect(hook.refusals).toEqual([]);
    expect(hook.deliveries.map((d) => d.payload.type).sort()).toEqual([
      'rotation.blocked',
      'spend.threshold',
      'usage.runaway',
    ]);
    for (const d of hook.deliveries) expect(webhookSchemaErrors(d.payload)).toEqual([]);
    // signed with both secrets while they rotate: two v1 signatures
    expect(hook.deliveries[0]!.signature.split(' ')).toHaveLength(2);
    const spend = hook.deliveries.find((d) => d.payload.type === 'spend.threshold')!.payload;
    expect(spend).toMatchObject({
      version: 1,
      state: 'firing',
      organization: { name: 'Acme AI' },
      fingerprint: 'spend.threshold|workspace|wrkspc_Research|2026-11@0.8',
      alerts: [
        {
          scope: { type: 'workspace', id: 'wrkspc_Research', name: 'Research' },
          spend: { limit_usd: '1000.00', month_to_date_usd: '823.45', threshold: 0.8, percentage_used: 82.34 },
        },
      ],
    });
    const rotation = hook.deliveries.find((d) => d.payload.type === 'rotation.blocked')!.payload;
    expect(rotation).toMatchObject({
      alerts: [{ rotation: { deadline: '2026-11-20T00:00:00.000Z', successor: { id: 'apikey_successor' } } }],
    });
    const rows = await db.selectFrom('notifications').select(['id']).where('channel', '=', 'webhook').execute();
    expect(hook.deliveries.map((d) => d.id).sort()).toEqual(rows.map((r) => webhookId(r.id)).sort());
    for (const d of hook.deliveries) expect(d.payload.id).toBe(d.id);
  });

  it('rejects a tampered body: the signature covers every byte', async () => {
    await raise([runaway('apikey_a')], ['usage.runaway'], T0);
    await deliver(T0);
    const [sent] = hook.deliveries;
    const tampered = sent!.body.replace('"412.50"', '"0.01"');
    expect(tampered).not.toBe(sent!.body);
    const res = await fetch(`${hook.url}/keywarden`, {
      method: 'POST',
      redirect: 'error',
      headers: {
        'content-type': 'application/json',
        'webhook-id': sent!.id,
        'webhook-timestamp': sent!.timestamp,
        'webhook-signature': sent!.signature,
      },
      body: tampered,
    });
    expect(res.status).toBe(401);
    expect(hook.refusals).toEqual(['No matching signature found']);
    expect(hook.deliveries).toHaveLength(1);
  });

  it('a retry carries the same webhook-id, so the receiver can drop a second copy; 5xx backs off', async () => {
    await raise([runaway('apikey_a')], ['usage.runaway'], T0);
    hook.failNext(1, { status: 503 });
    // PagerDuty's event goes out; the webhook's waits
    expect(await deliver(T0)).toMatchObject({ sent: 1, retrying: 1 });
    // backoff: 30 s after the first failure
    expect(await deliver(at(31_000))).toMatchObject({ sent: 1 });
    const webhookCalls = hook.calls.filter((c) => c.headers['webhook-id'] !== undefined);
    expect(webhookCalls).toHaveLength(2);
    expect(webhookCalls[0]!.headers['webhook-id']).toBe(webhookCalls[1]!.headers['webhook-id']);
    expect(hook.deliveries).toHaveLength(1);
  });

  it('a send cut off by a crash goes again after its lease, marked possibly duplicate, with the same webhook-id', async () => {
    await raise([threshold('Research')], ['spend.threshold'], T0);
    const row = await db
      .selectFrom('notifications')
      .select(['id'])
      .where('channel', '=', 'webhook')
      .executeTakeFirstOrThrow();
    // the crashed run: it claimed the row, committed `sending`, delivered, and died before recording it
    await db
      .updateTable('notifications')
      .set({ status: 'sending', attempts: 1, next_attempt_at: at(5 * MIN) })
      .where('id', '=', row.id)
      .execute();
    await deliver(at(MIN));
    expect(hook.deliveries).toHaveLength(0);
    await deliver(at(5 * MIN));
    expect(hook.deliveries.map((d) => d.id)).toEqual([webhookId(row.id)]);
    const after = await db.selectFrom('notifications').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow();
    expect(after).toMatchObject({ status: 'sent', possibly_duplicate: true, attempts: 2 });
    expect(await alertsCommand(store, [])).toContain('webhook ops: sent (2 attempts)');
  });

  it('a webhook receiver that is down holds its own messages only: another receiver is delivered in the same run', async () => {
    const other = await startWebhookReceiver(SECRET);
    try {
      const sender = createWebhookSender({
        receivers: {
          ...config.receivers.webhook,
          audit: { url: `${other.url}/hook`, secrets: config.receivers.webhook.ops!.secrets },
        },
        timeoutMs: 2000,
      });
      const both = { ...adapters, pagerduty: null, webhook: sender };
      const routes = config.policy.routes.map((r) => ({ ...r, pagerduty: [], webhook: ['ops', 'audit'] }));
      await raiseAlerts(store, { kinds: [], observations: [runaway('k1'), runaway('k2')] }, routes, T0);
      await raiseAlerts(store, { kinds: [], observations: [runaway('k3')] }, routes, T0);
      hook.setDown(true);
      await deliver(T0, both);
      // `ops` refused once and held its second message; `audit` got both of its own
      expect(hook.calls).toHaveLength(1);
      expect(other.deliveries).toHaveLength(2);
    } finally {
      hook.setDown(false);
      await other.close();
    }
  });

  it('a redirect is not followed: the signed body goes to the configured URL or nowhere', async () => {
    const elsewhere = await startWebhookReceiver(SECRET);
    const redirecting = createServer((_req, res) => {
      res.writeHead(307, { location: `${elsewhere.url}/stolen` });
      res.end();
    });
    await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = redirecting.address() as AddressInfo;
      const sender = createWebhookSender({
        receivers: { ops: { url: `http://127.0.0.1:${port}/k`, secrets: config.receivers.webhook.ops!.secrets } },
        timeoutMs: 2000,
      });
      const r = await sender.send('ops', 'keywarden-notification-1', '{}');
      expect(r).toEqual({
        ok: false,
        failure: { kind: 'permanent', reason: 'webhook "ops": answered with a redirect: set the URL it points to' },
      });
      expect(elsewhere.calls).toEqual([]);
    } finally {
      redirecting.close();
      await elsewhere.close();
    }
  });

  it('the finance digest goes to a webhook as a payload of its own', async () => {
    const digest = {
      kind: 'digest.finance',
      title: 'Finance digest: Acme AI, Sun 29 Nov 2026',
      summary: 'Month to date and the month-end projection.',
      fields: [{ label: 'Spend this month', value: '$1,234.56' }],
      sections: [{ title: 'Top keys', columns: [{ label: 'Key' }], rows: [['Production Backend']], empty: 'None.' }],
      links: [],
    };
    const queued = await enqueueDigest(
      store.repos,
      {
        kind: 'finance',
        period: '2026-11-29',
        payload: {
          digest,
          chart: {
            alt: 'Cumulative spend in November 2026',
            spend: {
              title: 'Acme AI: spend in November 2026',
              monthLabel: 'November 2026',
              timezone: 'UTC',
              daysInMonth: 30,
              cumulativeUsd: [100, 250.5],
              projection: null,
              limitUsd: null,
            },
          },
        },
      },
      { slack: [], email: [], webhook: config.policy.digests.finance!.webhook },
      T0,
    );
    expect(queued).toBe(1);
    await deliver(T0);
    expect(hook.deliveries).toHaveLength(1);
    const payload = hook.deliveries[0]!.payload;
    expect(webhookSchemaErrors(payload)).toEqual([]);
    expect(payload).toMatchObject({
      type: 'digest.finance',
      state: 'digest',
      figures: digest.fields,
      spend: { date: '2026-11-29', month_to_date_usd: '250.50', daily_usd: ['100.00', '150.50'], limit_usd: null },
    });
  });
});

describe('Microsoft Teams (Workflows stand-in)', () => {
  it('a card with the title, the facts and the Console link; a revoked URL fails without quoting it', async () => {
    await raise([threshold('Research')], ['spend.threshold'], T0);
    await raise([overdue('apikey_old', 'ci-deploy')], ['rotation.blocked'], T0);
    await deliver(T0);
    expect(teams.cards).toHaveLength(1);
    const card = teams.cards[0] as { body: { text?: string }[] };
    expect(card.body[0]?.text).toBe('⚠️ Workspace "Research" reached 80% of its $1,000.00 limit for November');
    const text = JSON.stringify(card);
    expect(text).toContain('"FactSet"');
    expect(text).toContain('[Cost in the Console](https://console.anthropic.com/settings/cost)');
    expect(text).not.toContain('"Action.');
    const stale = await db
      .selectFrom('notifications')
      .selectAll()
      .where('channel', '=', 'teams')
      .where('target', '=', 'stale')
      .executeTakeFirstOrThrow();
    expect(stale.status).toBe('failed');
    expect(stale.last_error).toContain('teams "stale": HTTP 401');
    expect(stale.last_error).toContain('copy it again from the workflow in Teams');
    expect(stale.last_error).not.toContain('revoked');
  });

  it('an error page that echoes the workflow URL leaves no trace of it in the outbox row', async () => {
    const echoing = createServer((req, res) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`bad request to ${req.url}`);
    });
    await new Promise<void>((resolve) => echoing.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = echoing.address() as AddressInfo;
      const secretUrl = `http://127.0.0.1:${port}/workflows/abc/invoke?sig=c2VjcmV0LXNpZ25hdHVyZQ`;
      const client = createTeamsClient({ receivers: { finance: { url: new Secret(secretUrl) } }, timeoutMs: 2000 });
      const r = await client.send('finance', { type: 'message', attachments: [] });
      expect(r.ok).toBe(false);
      const reason = r.ok ? '' : r.failure.reason;
      expect(reason).toMatch(/^teams "finance": HTTP 400 bad request to /);
      expect(reason).not.toContain('c2VjcmV0LXNpZ25hdHVyZQ');
    } finally {
      echoing.close();
    }
  });

  it('`keywarden alerts` lists each receiver delivery with its state', async () => {
    await raise([overdue('apikey_old', 'ci-deploy')], ['rotation.blocked'], T0);
    await deliver(T0);
    const listing = await alertsCommand(store, []);
    expect(listing).toContain('firing   webhook ops: sent (1 attempts)');
    expect(listing).toContain('firing   pagerduty misconfigured: failed (1 attempts)');
    expect(listing).toContain('firing   teams stale: failed (1 attempts)');
  });
});
