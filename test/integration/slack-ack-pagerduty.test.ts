import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertObservation } from '../../src/alerts/core/lifecycle.ts';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { createPagerDutyClient } from '../../src/notify/pagerduty.ts';
import { useDemoOrg } from '../support/demo-org.ts';
import { type PagerDutyStandIn, startPagerDutyStandIn } from '../support/receiver-servers.ts';
import { type DemoPresses, startDemoPresses } from '../support/slack-press.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { waitUntil } from '../support/wait.ts';

const SIGNING_SECRET = 'ack-pagerduty-signing-secret-0123456789';
const org = useDemoOrg();

let slack: SlackServer;
let pd: PagerDutyStandIn;
let presses: DemoPresses;
let ctx: DemoPresses['ctx'];
let config: Config;
let url: string;

beforeAll(async () => {
  [slack, pd] = await Promise.all([startSlackServer(), startPagerDutyStandIn()]);
  const path = join(mkdtempSync(join(tmpdir(), 'kw-ack-pd-')), 'keywarden.yaml');
  writeFileSync(
    path,
    `receivers: { pagerduty: { oncall: { routing_key_env: PD_ONCALL_KEY } } }
slack_actions: { enabled: true }
routes:
  - { match: { kind: "usage.*" }, slack: ["#ai-alerts"], pagerduty: ["oncall"] }
  - { match: { kind: "spend.*" }, slack: ["#finance"] }
`,
  );
  config = loadConfig({ env: { KEYWARDEN_CONFIG: path, PAGERDUTY_EVENTS_URL: pd.url, PD_ONCALL_KEY: pd.routingKey } });
  const pagerduty = createPagerDutyClient({
    receivers: config.receivers.pagerduty,
    eventsUrl: config.env.pagerdutyEventsUrl,
    timeoutMs: 2000,
  });
  presses = await startDemoPresses({
    org,
    slack,
    config,
    signingSecret: SIGNING_SECRET,
    pagerduty,
    syncInventory: false,
  });
  ({ ctx, url } = presses);
});

afterAll(async () => {
  await presses?.close();
  await Promise.all([slack?.close(), pd?.close()]);
});

const alert = (kind: 'usage.runaway' | 'spend.threshold', scopeId: string): AlertObservation => ({
  kind,
  severity: 'critical',
  scopeType: 'key',
  scopeId,
  workspaceId: null,
  period: '',
  title: `${kind} on ${scopeId}`,
  details: {},
});

/** The Acknowledge button on the message about `scopeId`, and the message's channel:ts. */
async function ackButton(scopeId: string): Promise<{ value: string; message: string }> {
  const row = await org.t.db
    .selectFrom('slack_buttons')
    .innerJoin('alerts', 'alerts.id', 'slack_buttons.alert_id')
    .innerJoin('notifications', 'notifications.id', 'slack_buttons.notification_id')
    .select(['slack_buttons.id', 'notifications.provider_id'])
    .where('alerts.scope_id', '=', scopeId)
    .where('slack_buttons.choice', '=', 'ack')
    .executeTakeFirstOrThrow();
  return { value: row.id, message: String(row.provider_id) };
}

describe('Acknowledge in Slack acknowledges the PagerDuty incident of the same alert', () => {
  it('over both transports: one acknowledge event per PagerDuty target the firing went to, through the outbox', async () => {
    const now = org.clock.now();
    await raiseAlerts(
      ctx,
      { kinds: ['usage.runaway'], observations: [alert('usage.runaway', 'apikey_01RUNAWAY')] },
      config.policy.routes,
      now,
    );
    await raiseAlerts(
      ctx,
      { kinds: ['spend.threshold'], observations: [alert('spend.threshold', 'apikey_01SPEND')] },
      config.policy.routes,
      now,
    );
    await deliverNotifications(ctx, { buttons: true });
    expect([...pd.incidents.values()].map((i) => i.status)).toEqual(['triggered']);

    // over HTTP, twice (a double click): the incident is acknowledged once
    const runaway = await ackButton('apikey_01RUNAWAY');
    for (let i = 0; i < 2; i++) {
      const r = await slack.pressOverHttp(
        url,
        SIGNING_SECRET,
        { actionId: 'ack', value: runaway.value, userId: 'U0ANA', message: runaway.message },
        { timestamp: Math.floor(org.clock.now().getTime() / 1000) },
      );
      expect(r.status).toBe(200);
    }
    const acks = await org.t.db
      .selectFrom('notifications')
      .select(['channel', 'target', 'status'])
      .where('event', '=', 'acknowledged')
      .execute();
    expect(acks).toEqual([{ channel: 'pagerduty', target: 'oncall', status: 'pending' }]);
    await deliverNotifications(ctx, { buttons: true });
    const incident = [...pd.incidents.values()][0];
    expect(incident?.status).toBe('acknowledged');
    expect(pd.events.map((e) => e.event_action)).toEqual(['trigger', 'acknowledge']);

    // an alert that went to Slack only (over Socket Mode): acknowledged there, nothing for PagerDuty
    const spend = await ackButton('apikey_01SPEND');
    await slack.pressOverSocket({ actionId: 'ack', value: spend.value, userId: 'U0ANA', message: spend.message });
    await waitUntil(
      'acknowledged',
      async () =>
        (
          await org.t.db
            .selectFrom('alerts')
            .select('acknowledged_by')
            .where('scope_id', '=', 'apikey_01SPEND')
            .executeTakeFirst()
        )?.acknowledged_by === 'U0ANA',
      5_000,
    );
    await deliverNotifications(ctx, { buttons: true });
    expect(
      await org.t.db.selectFrom('notifications').select('id').where('event', '=', 'acknowledged').execute(),
    ).toHaveLength(1);
    expect(pd.events).toHaveLength(2);
  });
});
