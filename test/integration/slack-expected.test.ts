import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { raiseAlerts } from '../../src/alerts/store.ts';
import type { Db } from '../../src/db/index.ts';
import type { HealthServer } from '../../src/http/server.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { runawayObservation } from '../support/alerts.ts';
import {
  type HealthPresses,
  pressConfig,
  pressRoutes,
  PRESS_SIGNING_SECRET as SIGNING_SECRET,
  startHealthPresses,
} from '../support/slack-press.ts';
import type { SlackServer } from '../support/slack-server.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * Mark as expected, the press: through both transports against the Slack stand-in, a mark in Postgres covering the
 * rate the runaway alert reported, once per button, audited. What the detector does with the mark is in
 * detect-anomalies-expected.test.ts.
 */

const HOUR = 3_600_000;

const routes = pressRoutes([{ match: { kind: 'usage.*' }, slack: ['#ai-alerts'], repeat_every: '1h' }]);

let presses: HealthPresses;
let db: Db;
let slack: SlackServer;
let http: HealthServer;
let clock: HealthPresses['clock'];
let ctx: HealthPresses['ctx'];

beforeAll(async () => {
  presses = await startHealthPresses({ usergroups: {}, config: pressConfig({ allow: { mark_expected: ['U0ANA'] } }) });
  ({ db, slack, http, clock, ctx } = presses);
});

afterAll(async () => {
  await presses?.close();
});

beforeEach(async () => {
  await db.deleteFrom('anomaly_marks').execute();
  await db.deleteFrom('slack_buttons').execute();
  await db.deleteFrom('notifications').execute();
  await db.deleteFrom('alerts').execute();
  slack.reset();
  clock.set(new Date());
  ctx.config = pressConfig({ allow: { mark_expected: ['U0ANA'] } });
});

const seconds = () => Math.floor(clock.now().getTime() / 1000);
const pressOverHttp = (press: Parameters<SlackServer['pressOverHttp']>[2]) =>
  slack.pressOverHttp(`http://127.0.0.1:${http.port}/slack/actions`, SIGNING_SECRET, press, { timestamp: seconds() });
const posts = () => slack.calls.filter((c) => c.method === 'chat.postMessage' && c.response?.ok);
const updates = () => slack.calls.filter((c) => c.method === 'chat.update');
const marks = () => db.selectFrom('anomaly_marks').selectAll().orderBy('created_at').execute();
const auditRows = () =>
  db.selectFrom('audit_log').selectAll().where('action', '=', 'slack.expected').orderBy('id').execute();

/** A runaway alert on `keyId` reporting `rate` $/h, raised and sent: the Mark as expected menu's values and the message. */
async function firingRunaway(
  keyId: string,
  rate: number | null,
): Promise<{ options: Record<string, string>; message: string }> {
  const observation = { ...runawayObservation(keyId), details: rate === null ? {} : { currentHourlyUsd: rate } };
  await raiseAlerts(ctx, { kinds: ['usage.runaway'], observations: [observation] }, routes, clock.now());
  await deliverNotifications({ ...ctx, clock }, { buttons: true });
  type Blocks = Array<{
    elements?: Array<{ action_id?: string; options?: Array<{ text: { text: string }; value: string }> }>;
  }>;
  const menuOf = (p: ReturnType<typeof posts>[number]) =>
    (p.args.blocks as Blocks | undefined)?.flatMap((b) => b.elements ?? []).find((e) => e.action_id === 'expected');
  // the newest post with the menu (a resolve of another alert may have gone out with it)
  const post = posts().findLast((p) => menuOf(p) !== undefined);
  const menu = post === undefined ? undefined : menuOf(post);
  if (menu === undefined || post?.response?.channel === undefined) throw new Error('no Mark as expected menu');
  return {
    options: Object.fromEntries((menu.options ?? []).map((o) => [o.text.text, o.value])),
    message: `${post.response.channel}:${post.response.ts}`,
  };
}

describe('Slack buttons: Mark as expected', () => {
  it('over HTTP: one mark covering the reported rate until then, the message updated in place, audited; a double click changes nothing', async () => {
    const { options, message } = await firingRunaway('k1', 120);
    expect(Object.keys(options)).toEqual(['for 4 hours', 'for 24 hours', 'for 72 hours']);
    expect(Object.values(options).join()).not.toContain('k1');
    const pressedAt = clock.now();
    const press = () =>
      pressOverHttp({
        actionId: 'expected',
        value: options['for 4 hours']!,
        userId: 'U0ANA',
        userName: 'ana',
        message,
      });
    const audited = (await auditRows()).length;
    expect((await press()).status).toBe(200);
    expect((await press()).status).toBe(200);

    const rows = await marks();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      scope_type: 'key',
      scope_id: 'k1',
      covered_hourly_usd: 120,
      marked_by: 'slack:U0ANA',
    });
    expect(new Date(rows[0]!.starts_at)).toEqual(pressedAt);
    expect(new Date(rows[0]!.until).getTime() - pressedAt.getTime()).toBe(4 * HOUR);
    expect(updates()).toHaveLength(1);
    expect(JSON.stringify(updates()[0]?.args.blocks)).toContain('Marked as expected for 4 h by <@U0ANA>');
    expect(JSON.stringify(updates()[0]?.args.blocks)).toContain('$120.00/h');
    expect(String(slack.responses.at(-1)?.body.text)).toContain('Already marked as expected');
    const audit = (await auditRows()).slice(audited);
    expect(audit.map((a) => [a.step, a.actor])).toEqual([
      ['intent', 'slack:U0ANA'],
      ['done', 'slack:U0ANA'],
      ['intent', 'slack:U0ANA'],
      ['done', 'slack:U0ANA'],
    ]);
    expect(audit.filter((a) => a.step === 'done').map((a) => a.details.outcome)).toEqual([
      'marked_expected',
      'unchanged:expected',
    ]);
    expect(audit[0]?.details).toMatchObject({ slackUserId: 'U0ANA', slackUserName: 'ana', transport: 'http' });
  });

  it('over Socket Mode: the same mark, audited with its transport', async () => {
    const { options, message } = await firingRunaway('k2', 40);
    const audited = (await auditRows()).length;
    await slack.pressOverSocket({ actionId: 'expected', value: options['for 72 hours']!, userId: 'U0ANA', message });
    await waitUntil('mark made', async () => (await marks()).length === 1, 20_000);
    const [row] = await marks();
    expect(row).toMatchObject({ scope_id: 'k2', covered_hourly_usd: 40 });
    expect(new Date(row!.until).getTime() - new Date(row!.starts_at).getTime()).toBe(72 * HOUR);
    await waitUntil('audited', async () => (await auditRows()).length === audited + 2, 20_000);
    expect((await auditRows())[audited]?.details).toMatchObject({ transport: 'socket', slackUserId: 'U0ANA' });
  });

  it('refuses who the allow list does not name (it is empty by default): nothing marked, audited', async () => {
    const { options, message } = await firingRunaway('k1', 120);
    const r = await pressOverHttp({ actionId: 'expected', value: options['for 4 hours']!, userId: 'U0BEN', message });
    expect(r.status).toBe(200);
    expect(await marks()).toHaveLength(0);
    expect(String(slack.responses.at(-1)?.body.text)).toContain('slack_actions.allow.mark_expected');
    expect((await auditRows()).at(-1)?.details).toMatchObject({ outcome: 'refused:not_allowed' });
  });

  it('an alert that reports no rate has nothing to mark; a resolved one neither', async () => {
    const bare = await firingRunaway('k1', null);
    await pressOverHttp({ actionId: 'expected', value: bare.options['for 4 hours']!, userId: 'U0ANA' });
    expect(await marks()).toHaveLength(0);
    expect((await auditRows()).at(-1)?.details).toMatchObject({ outcome: 'refused:not_offered' });

    const { options } = await firingRunaway('k3', 90);
    await raiseAlerts(ctx, { kinds: ['usage.runaway'], observations: [] }, routes, clock.now());
    await pressOverHttp({ actionId: 'expected', value: options['for 24 hours']!, userId: 'U0ANA' });
    expect(await marks()).toHaveLength(0);
    expect((await auditRows()).at(-1)?.details).toMatchObject({ outcome: 'unchanged:resolved' });
  });
});
