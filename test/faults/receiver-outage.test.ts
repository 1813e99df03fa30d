import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { policySchema } from '../../src/config/policy.ts';
import {
  drillTitle,
  isDrillTitle,
  MINUTE,
  type Rig,
  raiseDrillAlerts,
  sleep,
  startRig,
  waitForOutboxDrained,
  waitForSettled,
} from '../support/fault-rig.ts';
import {
  type PagerDutyStandIn,
  startPagerDutyStandIn,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../support/receiver-servers.ts';
import { webhookSchemaErrors } from '../support/webhook-schema.ts';

/**
 * Drill 5 for the receivers: PagerDuty's Events API resets every connection and the webhook receiver answers 429
 * (Retry-After 30 s), for five minutes, with 100 alerts waiting to go out (a PagerDuty event and a signed webhook
 * each). Once both are back, every alert is one incident triggered once and one webhook delivered once (each
 * verified with `standardwebhooks` and valid against the payload schema), and the outage was met with a probe
 * per wait, not a refused call per message.
 */

const OUTAGE_MS = Number(process.env.KW_DRILL_DELIVERY_OUTAGE_MS ?? 5 * MINUTE);
const ALERTS = 100;
const RETRY_AFTER_S = 30;
/** After the outage: PagerDuty's probe may have backed off to 4 minutes (the outbox's backoff), then all go out. */
const DRAIN_MS = 6 * MINUTE;
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

let rig: Rig;
let pd: PagerDutyStandIn;
let hook: WebhookReceiver;

const policy = (hookUrl: string) => `organization: { name: "Drill Co", timezone: UTC }
rotation: { enforce: false }
job_alerts: { missed_intervals: 18 }
receivers:
  pagerduty: { oncall: { routing_key_env: DRILL_PD_KEY } }
  webhook: { ops: { url: "${hookUrl}/keywarden", secret_env: DRILL_WEBHOOK_SECRET } }
routes:
  - { match: { kind: "*" }, pagerduty: ["oncall"], webhook: ["ops"] }
`;

beforeAll(async () => {
  [pd, hook] = await Promise.all([startPagerDutyStandIn(), startWebhookReceiver(SECRET)]);
  rig = await startRig({
    name: 'receiver-outage',
    scenario: 'quiet',
    postgres: 'shared',
    redis: 'shared',
    policy: policy(hook.url),
    env: { PAGERDUTY_EVENTS_URL: pd.url, DRILL_PD_KEY: pd.routingKey, DRILL_WEBHOOK_SECRET: SECRET },
  });
  await rig.worker.start();
});
afterAll(async () => {
  await rig?.close();
  await Promise.all([pd?.close(), hook?.close()]);
});

describe('drill 5 for receivers: PagerDuty down and a webhook rate-limiting for five minutes, 100 alerts pending', () => {
  it('delivers every alert once to each receiver afterwards, behind one probe per wait', async () => {
    const { db, worker } = rig;
    await waitForSettled(rig);
    // the quiet organization's own alerts (key.identity on its legacy and never-expiring keys, at the first
    // inventory sync) go out before the outage, so what the outage holds is the drill's alerts only
    await waitForOutboxDrained(db, 60_000);
    const incidentsBefore = pd.incidents.size;
    const deliveriesBefore = hook.deliveries.length;
    const pdCallsBefore = pd.calls.length;
    const hookCallsBefore = hook.calls.length;

    pd.setDown(true);
    hook.failNext(1_000_000, { status: 429, retryAfter: RETRY_AFTER_S });
    const outageFrom = Date.now();
    const routes = policySchema.parse(parseYaml(policy(hook.url))).routes;
    await raiseDrillAlerts(db, routes, 'rcv', ALERTS);
    await sleep(outageFrom + OUTAGE_MS - Date.now());
    const refusedPd = pd.calls.length - pdCallsBefore;
    const refusedHook = hook.calls.length - hookCallsBefore;
    expect(refusedPd).toBeLessThan(ALERTS);
    expect(refusedHook).toBeLessThan(ALERTS);
    expect(pd.incidents.size).toBe(incidentsBefore);
    expect(hook.deliveries.slice(deliveriesBefore)).toEqual([]);
    pd.setDown(false);
    hook.failNext(0, { status: 200 });
    const outageTo = Date.now();

    const rows = await waitForOutboxDrained(db, DRAIN_MS);
    const drained = Date.now();
    expect(rows.filter((r) => isDrillTitle(r.title))).toHaveLength(ALERTS * 2);
    expect(rows.filter((r) => r.possibly_duplicate)).toEqual([]);

    // PagerDuty: one incident per alert, triggered once
    const incidents = [...pd.incidents.values()].filter((i) => isDrillTitle(i.summary));
    expect(incidents).toHaveLength(ALERTS);
    expect(incidents.filter((i) => i.actions.join() !== 'trigger')).toEqual([]);
    const summaries = new Set(incidents.map((i) => i.summary));
    for (let i = 1; i <= ALERTS; i++) expect(summaries.has(drillTitle('rcv', i))).toBe(true);

    // webhooks: one verified delivery per row, each id once, each valid against the schema
    expect(hook.refusals).toEqual([]);
    const ids = hook.deliveries.map((d) => d.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(hook.deliveries.filter((d) => isDrillTitle(String(d.payload.title)))).toHaveLength(ALERTS);
    for (const d of hook.deliveries) expect(webhookSchemaErrors(d.payload)).toEqual([]);
    const titles = new Set(hook.deliveries.map((d) => d.payload.title));
    for (let i = 1; i <= ALERTS; i++) expect(titles.has(drillTitle('rcv', i))).toBe(true);

    // the webhook's Retry-After was honoured: no message was tried again sooner than it was told
    const tries = new Map<string, number[]>();
    for (const c of hook.calls) {
      const id = String(c.headers['webhook-id']);
      tries.set(id, [...(tries.get(id) ?? []), c.at]);
    }
    const gaps = [...tries.values()].flatMap((ats) => ats.slice(1).map((at, i) => at - ats[i]!));
    // a row late in a failing batch comes back up to that run's length early (as in drill 5)
    if (gaps.length > 0) expect(Math.min(...gaps)).toBeGreaterThanOrEqual(RETRY_AFTER_S * 1000 - 1_500);

    // the outage held each run's other messages behind its first: only the probes ran up attempts
    const pdProbes = rows.filter((r) => r.channel === 'pagerduty' && r.attempts > 1).length;
    const hookProbes = rows.filter((r) => r.channel === 'webhook' && r.attempts > 1).length;
    expect(pdProbes).toBeLessThan(ALERTS / 2);
    expect(hookProbes).toBeLessThan(ALERTS / 2);
    expect(worker.current.proc.exitCode).toBeNull();
    console.info(
      `receiver drill: ${Math.round((outageTo - outageFrom) / 1000)} s outage; ${refusedPd} PagerDuty calls reset, ` +
        `${refusedHook} webhook calls refused with 429; ${pdProbes} PagerDuty and ${hookProbes} webhook rows took ` +
        `more than one attempt; all ${rows.length} messages delivered ${Math.round((drained - outageTo) / 1000)} s ` +
        'after the outage ended',
    );
  });
});
