import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectAnomaliesJob } from '../../jobs/detect-anomalies.ts';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { loadConfig } from '../../src/config/index.ts';
import { WATERMARKS } from '../../src/db/repos/watermarks.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { keyIdByName, useDemoOrg } from '../support/demo-org.ts';
import { type DemoPresses, pressRoutes, startDemoPresses } from '../support/slack-press.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { waitUntil } from '../support/wait.ts';

const SIGNING_SECRET = 'deactivate-signing-secret-0123456789';
const MIN = 60_000;
const org = useDemoOrg();
const dir = mkdtempSync(join(tmpdir(), 'kw-deactivate-'));

let env: DemoPresses['env'];
let slack: SlackServer;
let presses: DemoPresses;
let ctx: DemoPresses['ctx'];
let url: string;

beforeAll(async () => {
  slack = await startSlackServer();
  const path = join(dir, 'approve.yaml');
  writeFileSync(
    path,
    `anomaly: { auto_deactivate: { enabled: true, min_hourly_usd: 10, mode: approve } }
slack_actions: { enabled: true, allow: { approve_deactivation: ["U0OPS"], reactivate: ["U0OPS"] } }
routes:
  - { match: { kind: "usage.*" }, slack: ["#ai-alerts"], repeat_every: 1h }
`,
  );
  const config = loadConfig({ env: { KEYWARDEN_CONFIG: path } });
  presses = await startDemoPresses({ org, slack, config, signingSecret: SIGNING_SECRET });
  ({ env, ctx, url } = presses);
});

afterAll(async () => {
  await presses?.close();
  await slack?.close();
});

/** Poll, detect, deliver (with buttons) once per simulated minute up to `minutes` after the demo's start. */
async function runUntil(minutes: number) {
  const start = new Date('2026-11-16T10:00:00Z').getTime();
  while (org.clock.now().getTime() < start + minutes * MIN) {
    org.clock.advance(MIN);
    await pollUsageJob.handler(env.ctx, {});
    await detectAnomaliesJob.handler(env.ctx, {});
    await deliverNotifications(ctx, { buttons: true });
  }
}

const statusUpdates = (id: string) =>
  org.emulator.requestLog.filter((r) => r.method === 'POST' && r.path.startsWith(`/v1/organizations/api_keys/${id}`));
const seconds = () => Math.floor(org.clock.now().getTime() / 1000);
const lastAnswer = () => String(slack.responses.at(-1)?.body.text);

/** The newest button row of `choice` on a message about the key, and that message's channel:ts. */
async function buttonOf(keyId: string, choice: string): Promise<{ value: string; message: string }> {
  const row = await org.t.db
    .selectFrom('slack_buttons')
    .innerJoin('alerts', 'alerts.id', 'slack_buttons.alert_id')
    .innerJoin('notifications', 'notifications.id', 'slack_buttons.notification_id')
    .select(['slack_buttons.id', 'notifications.provider_id'])
    .where('alerts.scope_id', '=', keyId)
    .where('slack_buttons.choice', '=', choice)
    .orderBy('notifications.id', 'desc')
    .executeTakeFirstOrThrow();
  return { value: row.id, message: String(row.provider_id) };
}

describe('anomaly.auto_deactivate.mode: approve, and Reactivate on the kill switch notice', () => {
  it('the runaway asks; Deactivate key refuses stale data, then acts once through the kill switch; Reactivate says the API refusal plainly, then brings it back', async () => {
    await runUntil(25);
    const id = await keyIdByName(org.t.db, 'CI runner');
    // the kill switch would have acted by now: in approve mode it asked instead
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
    expect(statusUpdates(id)).toHaveLength(0);
    const question = slack.calls.find(
      (c) => c.method === 'chat.postMessage' && String(c.args.text).includes('Deactivate API key "CI runner"?'),
    );
    expect(JSON.stringify(question?.args.blocks)).toContain('"action_id":"approve"');
    const deactivate = await buttonOf(id, 'deactivate');
    const press = (userId: string) =>
      slack.pressOverHttp(
        url,
        SIGNING_SECRET,
        { actionId: 'approve', value: deactivate.value, userId, userName: 'ops', message: deactivate.message },
        { timestamp: seconds() },
      );

    // not allowed: refused, nothing asked of the API
    await press('U0ANA');
    expect(lastAnswer()).toContain('slack_actions.allow.approve_deactivation');

    // usage data that stopped coming (the poll is 20 minutes behind): refused, said so
    const settled = await org.t.db
      .selectFrom('watermarks')
      .select('position')
      .where('name', '=', WATERMARKS.usageSettled)
      .executeTakeFirstOrThrow();
    await org.t.db
      .updateTable('watermarks')
      .set({ position: new Date(org.clock.now().getTime() - 20 * MIN) })
      .where('name', '=', WATERMARKS.usageSettled)
      .execute();
    await press('U0OPS');
    expect(lastAnswer()).toMatch(/^Not set inactive: the key's usage data is stale/);
    expect(JSON.stringify(slack.calls.filter((c) => c.method === 'chat.update').at(-1)?.args.blocks)).toContain(
      'Deactivate key pressed by <@U0OPS>',
    );
    expect(statusUpdates(id)).toHaveLength(0);
    await org.t.db
      .updateTable('watermarks')
      .set({ position: settled.position })
      .where('name', '=', WATERMARKS.usageSettled)
      .execute();

    // the kill switch switched off (or out of approve mode) after the message went out: refused at the press
    const asConfigured = ctx.config;
    const autoDeactivate = asConfigured.policy.anomaly.auto_deactivate;
    for (const changed of [
      { ...autoDeactivate, enabled: false },
      { ...autoDeactivate, mode: 'auto' as const },
    ]) {
      ctx.config = {
        ...asConfigured,
        policy: { ...asConfigured.policy, anomaly: { ...asConfigured.policy.anomaly, auto_deactivate: changed } },
      };
      await press('U0OPS');
      expect(lastAnswer()).toMatch(/^Not set inactive: anomaly\.auto_deactivate is no longer enabled in approve mode/);
      expect(statusUpdates(id)).toHaveLength(0);
      expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
    }
    ctx.config = asConfigured;

    // fresh data: set inactive once, as the kill switch (its hourly count and the episode's record see it)
    await press('U0OPS');
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('inactive');
    expect(statusUpdates(id)).toHaveLength(1);
    const change = await org.t.db
      .selectFrom('audit_log')
      .select(['actor', 'step', 'details'])
      .where('action', '=', 'api_key.deactivate')
      .where('subject_id', '=', id)
      .orderBy('id')
      .execute();
    expect(change.map((c) => `${c.actor} ${c.step}`)).toEqual(['keywarden:anomaly intent', 'keywarden:anomaly done']);
    expect(JSON.stringify(change[0]?.details)).toContain('approved from Slack by slack:U0OPS (ops)');
    expect(JSON.stringify(slack.calls.filter((c) => c.method === 'chat.update').at(-1)?.args.blocks)).toMatch(
      /Deactivation approved by <@U0OPS> at \d\d:\d\d UTC: the key was set inactive/,
    );

    // the other transport, again: already inactive, no second call
    const answered = slack.responses.length;
    await slack.pressOverSocket({
      actionId: 'approve',
      value: deactivate.value,
      userId: 'U0OPS',
      message: deactivate.message,
    });
    await waitUntil('answered', () => slack.responses.length > answered, 20_000);
    expect(lastAnswer()).toContain('already inactive');
    expect(statusUpdates(id)).toHaveLength(1);

    // the next detection run records the deactivation in the episode: its notice carries Reactivate
    await runUntil(27);
    const notice = slack.calls.find(
      (c) =>
        c.method === 'chat.postMessage' && String(c.args.text).includes('was set inactive by the runaway kill switch'),
    );
    expect(JSON.stringify(notice?.args.blocks)).toContain('"action_id":"reactivate"');
    const reactivate = await buttonOf(id, 'reactivate');
    const pressReactivate = () =>
      slack.pressOverHttp(
        url,
        SIGNING_SECRET,
        { actionId: 'reactivate', value: reactivate.value, userId: 'U0OPS', message: reactivate.message },
        { timestamp: seconds() },
      );

    // the API's own refusal, said plainly
    org.emulator.setFaults({
      script: [{ path: '/v1/organizations/api_keys/', status: 400, errorCode: 'org_api_key_limit_exceeded' }],
    });
    await pressReactivate();
    org.emulator.setFaults({});
    expect(lastAnswer()).toContain(
      'The Admin API refused to reactivate the key: cannot reactivate ' +
        `${id}: the organization already has as many active API keys as it is allowed`,
    );
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('inactive');

    await pressReactivate();
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
    expect(JSON.stringify(slack.calls.filter((c) => c.method === 'chat.update').at(-1)?.args.blocks)).toContain(
      'Reactivated by <@U0OPS>',
    );
    const presses = await org.t.db
      .selectFrom('audit_log')
      .select(['action', 'details'])
      .where('actor', '=', 'slack:U0OPS')
      .where('action', 'like', 'slack.%')
      .where('step', '!=', 'intent')
      .orderBy('id')
      .execute();
    expect(presses.map((p) => `${p.action} ${(p.details as { outcome: string }).outcome}`)).toEqual([
      'slack.approve refused:recheck',
      'slack.approve refused:recheck',
      'slack.approve refused:recheck',
      'slack.approve deactivated',
      'slack.approve unchanged:not_active',
      'slack.reactivate refused_by_api',
      'slack.reactivate reactivated',
    ]);
  }, 120_000);

  it('an expired key cannot come back: Reactivate says so, and nothing changes', async () => {
    const id = await keyIdByName(org.t.db, 'Partner sandbox');
    await raiseAlerts(
      ctx,
      {
        kinds: ['rotation.deactivated'],
        observations: [
          {
            kind: 'rotation.deactivated',
            severity: 'info',
            scopeType: 'key',
            scopeId: id,
            workspaceId: null,
            period: '',
            title: 'API key "Partner sandbox" was set inactive',
            details: {},
          },
        ],
      },
      pressRoutes([{ match: { kind: 'rotation.*' }, slack: ['#security'] }]),
      org.clock.now(),
    );
    await deliverNotifications(ctx, { buttons: true });
    const reactivate = await buttonOf(id, 'reactivate');
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'reactivate', value: reactivate.value, userId: 'U0OPS', message: reactivate.message },
      { timestamp: seconds() },
    );
    expect(lastAnswer()).toMatch(
      /^The Admin API refused to reactivate the key: .*an expired API key cannot be reactivated/,
    );
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('expired');
  });
});
