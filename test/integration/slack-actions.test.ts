import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { alertsCommand } from '../../src/cli/alerts.ts';
import { silenceCommand } from '../../src/cli/silence.ts';
import { Secret } from '../../src/config/secret.ts';
import type { Db } from '../../src/db/index.ts';
import type { HealthServer } from '../../src/http/server.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
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

const HOUR = 3_600_000;

const routes = pressRoutes([{ match: { kind: 'usage.*' }, slack: ['#ai-alerts'], repeat_every: '1h' }]);

let presses: HealthPresses;
let db: Db;
let slack: SlackServer;
let http: HealthServer;
let clock: HealthPresses['clock'];
let ctx: HealthPresses['ctx'];
let logLines: string[];

beforeAll(async () => {
  presses = await startHealthPresses({ usergroups: { S0ONCALL: ['U0ONCALL'] }, config: pressConfig() });
  ({ db, slack, http, clock, ctx, logLines } = presses);
});

afterAll(async () => {
  await presses?.close();
});

beforeEach(async () => {
  await db.deleteFrom('silences').execute();
  await db.deleteFrom('slack_buttons').execute();
  await db.deleteFrom('notifications').execute();
  await db.deleteFrom('alerts').execute();
  slack.reset();
  clock.set(new Date());
  ctx.config = pressConfig();
});

const actionsUrl = () => `http://127.0.0.1:${http.port}/slack/actions`;
const seconds = () => Math.floor(clock.now().getTime() / 1000);
/**
 * A button press over HTTP, signed with the app's secret and stamped with the clock's time; `body` sends that raw
 * body instead of the press's own.
 */
const pressOverHttp = (press: Parameters<SlackServer['pressOverHttp']>[2], body?: string) =>
  slack.pressOverHttp(actionsUrl(), SIGNING_SECRET, press, { body, timestamp: seconds() });
const deliver = () => deliverNotifications({ ...ctx, clock }, { buttons: true });

/** A detection run at the clock that sees runaways on `keyIds` (none: they resolve), then a delivery run. */
async function raiseAndDeliver(keyIds: string[]): Promise<void> {
  const observations = keyIds.map((keyId) => runawayObservation(keyId));
  await raiseAlerts(ctx, { kinds: ['usage.runaway'], observations }, routes, clock.now());
  await deliver();
}
const posts = () => slack.calls.filter((c) => c.method === 'chat.postMessage' && c.response?.ok);
const updates = () => slack.calls.filter((c) => c.method === 'chat.update');

/** A runaway alert raised and sent: its button value and the message it is on (`channel:ts`). */
async function firingAlert(keyId = 'k1'): Promise<{ value: string; message: string }> {
  await raiseAndDeliver([keyId]);
  const post = posts().at(-1);
  const blocks = post?.args.blocks as Array<{ type: string; elements?: Array<{ action_id?: string; value?: string }> }>;
  const ack = blocks.flatMap((b) => b.elements ?? []).find((e) => e.action_id === 'ack');
  if (ack?.value === undefined || post?.response?.channel === undefined) throw new Error('no Acknowledge button');
  return { value: ack.value, message: `${post.response.channel}:${post.response.ts}` };
}

/** The Snooze menu's option values on the newest post, by label. */
function snoozeValues(): Record<string, string> {
  const blocks = posts().at(-1)?.args.blocks as Array<{
    elements?: Array<{ action_id?: string; options?: Array<{ text: { text: string }; value: string }> }>;
  }>;
  const menu = blocks.flatMap((b) => b.elements ?? []).find((e) => e.action_id === 'snooze');
  return Object.fromEntries((menu?.options ?? []).map((o) => [o.text.text, o.value]));
}

async function silenceRows() {
  return db.selectFrom('silences').selectAll().orderBy('created_at').execute();
}

async function alertRow() {
  return db.selectFrom('alerts').selectAll().executeTakeFirstOrThrow();
}

async function auditRows() {
  return db.selectFrom('audit_log').selectAll().where('action', 'like', 'slack.%').orderBy('id').execute();
}

describe('Slack buttons: Acknowledge', () => {
  it('over HTTP: acknowledges once, updates the message in place, stops repeats, and the resolve still posts in the thread', async () => {
    const { value, message } = await firingAlert();
    // the button's value is a row id, not the alert's fingerprint or the key
    expect(value).toMatch(/^[0-9a-f-]{36}$/);
    expect(value).not.toContain('k1');

    const before = await auditRows();
    const r = await pressOverHttp({ actionId: 'ack', value, userId: 'U0ANA', userName: 'ana', message });
    expect(r.status).toBe(200);
    const row = await alertRow();
    expect(row.acknowledged_by).toBe('U0ANA');
    expect(row.acknowledged_at).not.toBeNull();
    expect(await alertsCommand(ctx, [])).toContain('(acknowledged by U0ANA)');
    expect(updates()).toHaveLength(1);
    const update = updates()[0]!;
    expect(`${String(update.args.channel)}:${String(update.args.ts)}`).toBe(message);
    expect(JSON.stringify(update.args.blocks)).toContain('Acknowledged by <@U0ANA> at');
    expect(JSON.stringify(update.args.blocks)).not.toContain('"action_id":"ack"');

    const audit = (await auditRows()).slice(before.length);
    expect(audit.map((a) => [a.action, a.step, a.actor])).toEqual([
      ['slack.ack', 'intent', 'slack:U0ANA'],
      ['slack.ack', 'done', 'slack:U0ANA'],
    ]);
    expect(audit[0]?.details).toMatchObject({ slackUserId: 'U0ANA', slackUserName: 'ana', transport: 'http' });
    expect(audit[1]?.details).toMatchObject({ outcome: 'acknowledged' });

    // a double click: audited, no second effect, answered with the current state
    const again = await pressOverHttp({ actionId: 'ack', value, userId: 'U0BEN', userName: 'ben', message });
    expect(again.status).toBe(200);
    expect(updates()).toHaveLength(1);
    expect((await alertRow()).acknowledged_by).toBe('U0ANA');
    expect(slack.responses.at(-1)?.body).toMatchObject({ response_type: 'ephemeral' });
    expect(String(slack.responses.at(-1)?.body.text)).toContain('Already acknowledged by <@U0ANA>');
    expect((await auditRows()).slice(before.length + 2).map((a) => a.details.outcome ?? null)).toEqual([
      null,
      'unchanged:acknowledged',
    ]);

    // two hours on, still firing: no repeat (the route repeats every hour)
    const postsBefore = posts().length;
    clock.advance(2 * HOUR);
    await raiseAndDeliver(['k1']);
    expect(posts()).toHaveLength(postsBefore);

    // resolves: said in the thread of the first post
    await raiseAndDeliver([]);
    const resolve = posts().at(-1);
    expect(posts()).toHaveLength(postsBefore + 1);
    expect(resolve?.args.thread_ts).toBe(message.split(':')[1]);
    expect(JSON.stringify(resolve?.args.blocks)).not.toContain('"action_id":"ack"');

    // a press on the resolved alert: nothing changes, the presser is told
    const late = await pressOverHttp({ actionId: 'ack', value, userId: 'U0ANA', message });
    expect(late.status).toBe(200);
    expect(String(slack.responses.at(-1)?.body.text)).toContain('resolved');
  });

  it('a new episode repeats again, and an old message cannot acknowledge it', async () => {
    const first = await firingAlert();
    await pressOverHttp({ actionId: 'ack', value: first.value, userId: 'U0ANA', message: first.message });
    await raiseAlerts(ctx, { kinds: ['usage.runaway'], observations: [] }, routes, clock.now());
    clock.advance(HOUR);
    await raiseAlerts(ctx, { kinds: ['usage.runaway'], observations: [runawayObservation('k1')] }, routes, clock.now());
    expect((await alertRow()).acknowledged_at).toBeNull();
    await deliver();
    const r = await pressOverHttp({ actionId: 'ack', value: first.value, userId: 'U0ANA', message: first.message });
    expect(r.status).toBe(200);
    expect((await alertRow()).acknowledged_at).toBeNull();
    expect(String(slack.responses.at(-1)?.body.text)).toContain('earlier episode');
  });

  it('over Socket Mode: acked at once, applied once per envelope, audited', async () => {
    const { value, message } = await firingAlert();
    const before = (await auditRows()).length;
    const envelopeId = await slack.pressOverSocket({
      actionId: 'ack',
      value,
      userId: 'U0ANA',
      userName: 'ana',
      message,
    });
    await waitUntil('acknowledged', async () => (await alertRow()).acknowledged_by === 'U0ANA', 20_000);
    await waitUntil('message updated', () => updates().length === 1, 20_000);
    // Slack redelivers an envelope it thinks was not acked: the same envelope changes nothing and is not re-audited
    await slack.pressOverSocket({ actionId: 'ack', value, userId: 'U0BEN', message }, { envelopeId });
    await new Promise((r) => setTimeout(r, 200));
    const audit = (await auditRows()).slice(before);
    expect(audit.map((a) => [a.action, a.step])).toEqual([
      ['slack.ack', 'intent'],
      ['slack.ack', 'done'],
    ]);
    expect(audit[0]?.details).toMatchObject({ slackUserId: 'U0ANA', transport: 'socket' });
    expect(updates()).toHaveLength(1);
  });
});

describe('Slack buttons: Snooze', () => {
  it('over HTTP: one silence per option pressed; while it lasts the alert fires and resolves in the record, silently', async () => {
    const { message } = await firingAlert();
    const options = snoozeValues();
    expect(Object.keys(options)).toEqual(['1 hour', '4 hours', '24 hours']);
    const pressedAt = clock.now();
    const audited = (await auditRows()).length;
    const press = () =>
      pressOverHttp({ actionId: 'snooze', value: options['4 hours']!, userId: 'U0ANA', userName: 'ana', message });
    expect((await press()).status).toBe(200);
    expect((await press()).status).toBe(200);
    const silences = await silenceRows();
    expect(silences).toHaveLength(1);
    const alert = await alertRow();
    expect(silences[0]).toMatchObject({ matchers: { fingerprint: alert.fingerprint }, created_by: 'slack:U0ANA' });
    expect(new Date(silences[0]!.ends_at).getTime() - pressedAt.getTime()).toBe(4 * HOUR);
    expect(updates()).toHaveLength(1);
    expect(JSON.stringify(updates()[0]?.args.blocks)).toContain('Snoozed for 4 h by <@U0ANA>');
    expect(String(slack.responses.at(-1)?.body.text)).toContain('Already snoozed');
    const audit = (await auditRows()).slice(audited);
    expect(audit.filter((a) => a.step === 'done').map((a) => a.details.outcome)).toEqual([
      'snoozed',
      'unchanged:snoozed',
    ]);

    // two hours on: still firing, repeat due (every hour), silenced: recorded, not sent
    const postsBefore = posts().length;
    clock.advance(2 * HOUR);
    await raiseAndDeliver(['k1']);
    expect(posts()).toHaveLength(postsBefore);
    expect((await alertRow()).last_seen_at).toEqual(clock.now());
    // resolves while silenced: resolved in the record, nothing said
    await raiseAndDeliver([]);
    expect(posts()).toHaveLength(postsBefore);
    expect((await alertRow()).state).toBe('resolved');
  });

  it('over Socket Mode; when the silence ends, the normal repeat resumes', async () => {
    const { message } = await firingAlert();
    await slack.pressOverSocket({ actionId: 'snooze', value: snoozeValues()['1 hour']!, userId: 'U0ANA', message });
    await waitUntil('silence made', async () => (await silenceRows()).length === 1, 20_000);
    const postsBefore = posts().length;
    clock.advance(HOUR - 60_000);
    await raiseAndDeliver(['k1']);
    expect(posts()).toHaveLength(postsBefore);
    clock.advance(2 * 60_000);
    await raiseAndDeliver(['k1']);
    expect(posts()).toHaveLength(postsBefore + 1);
    expect(posts().at(-1)?.args.thread_ts).toBe(message.split(':')[1]);
    const audit = await auditRows();
    expect(audit.at(-2)?.details).toMatchObject({ transport: 'socket', slackUserId: 'U0ANA' });
  });

  it('an Acknowledge value sent as a Snooze names nothing: 400', async () => {
    const { value } = await firingAlert();
    const r = await pressOverHttp({ actionId: 'snooze', value, userId: 'U0ANA' });
    expect(r.status).toBe(400);
    expect(await silenceRows()).toHaveLength(0);
  });
});

describe('keywarden silence', () => {
  it('add, list, expire: a matching alert is recorded (keywarden alerts) but not sent until the silence ends', async () => {
    const added = await silenceCommand(
      ctx,
      ['add', '--kind', 'usage.*', '--workspace', 'wrkspc_*', '--for', '2h', '--comment', 'load test until 16:00'],
      clock.now(),
      'cli:ana',
    );
    const id = /^silence (\S+) until/.exec(added)?.[1];
    expect(id).toBeDefined();
    expect(await silenceCommand(ctx, ['list'], clock.now(), 'cli:ana')).toContain('kind=usage.* workspace=wrkspc_*');

    await raiseAndDeliver(['k1']);
    expect(posts()).toHaveLength(0);
    expect(await alertsCommand(ctx, [])).toContain('Runaway spend on key k1');

    expect(await silenceCommand(ctx, ['expire', id!], clock.now(), 'cli:ana')).toContain('expired');
    await expect(silenceCommand(ctx, ['expire', id!], clock.now(), 'cli:ana')).rejects.toThrow(/no silence in force/);
    expect(await silenceCommand(ctx, ['list'], clock.now(), 'cli:ana')).toBe('No silences in force.');
    clock.advance(60_000);
    await raiseAndDeliver(['k1']);
    // never said while silenced, so it is said now as it starts: a firing post, with its buttons
    expect(posts()).toHaveLength(1);
    expect(JSON.stringify(posts()[0]?.args.blocks)).toContain('"action_id":"ack"');
  });

  it.each([
    [['add', '--for', '1h', '--comment', 'x'], /at least one/],
    [['add', '--kind', '*', '--comment', 'x'], /--for/],
    [['add', '--kind', '*', '--for', '1h'], /--comment/],
    [['mute'], /add, list or expire/],
  ])('refuses %j', async (args, message) => {
    await expect(silenceCommand(ctx, args, clock.now(), 'cli:ana')).rejects.toThrow(message);
  });
});

describe('Slack buttons: when Slack fails the answer', () => {
  it('a press is applied and audited even when chat.update fails; the failure is logged without secrets', async () => {
    const { value, message } = await firingAlert();
    slack.failNext(1, { error: 'internal_error' });
    const r = await pressOverHttp({ actionId: 'ack', value, userId: 'U0ANA', message });
    expect(r.status).toBe(200);
    expect((await alertRow()).acknowledged_by).toBe('U0ANA');
    expect((await auditRows()).at(-1)?.details).toMatchObject({ outcome: 'acknowledged' });
    expect(logLines.join('')).toContain('could not update an alert message after a press');
    expect(logLines.join('')).not.toContain(slack.token);
  });

  it('posts answers only to Slack response URLs, never where a payload points', async () => {
    const client = createSlackClient({ token: new Secret(slack.token), apiUrl: slack.url, timeoutMs: 2000 });
    const r = await client.respond('https://attacker.example/collect', { text: 'x', response_type: 'ephemeral' });
    expect(r).toMatchObject({ ok: false, failure: { kind: 'permanent' } });
    expect(
      await client.respond(`${slack.url.replace('/api/', '')}/response/1`, { text: 'x', response_type: 'ephemeral' }),
    ).toEqual({
      ok: true,
    });
  });
});

describe('Slack buttons: who may press', () => {
  it('refuses a user the allow list does not name: ephemeral answer, nothing changed, audited', async () => {
    ctx.config = pressConfig({ allow: { acknowledge: ['U0BOSS'] } });
    const { value, message } = await firingAlert();
    const before = (await auditRows()).length;
    const r = await pressOverHttp({ actionId: 'ack', value, userId: 'U0ANA', message });
    expect(r.status).toBe(200);
    expect((await alertRow()).acknowledged_at).toBeNull();
    expect(updates()).toHaveLength(0);
    expect(String(slack.responses.at(-1)?.body.text)).toContain('not allowed');
    const audit = (await auditRows()).slice(before);
    expect(audit.map((a) => [a.step, a.details.outcome ?? null])).toEqual([
      ['intent', null],
      ['failed', 'refused:not_allowed'],
    ]);
  });

  it('lets in a member of an allowed user group (usergroups.users.list)', async () => {
    ctx.config = pressConfig({ allow: { acknowledge: ['S0ONCALL'] } });
    const { value, message } = await firingAlert();
    const r = await slack.pressOverSocket({ actionId: 'ack', value, userId: 'U0ONCALL', message });
    expect(r).toBeTruthy();
    await waitUntil('acknowledged', async () => (await alertRow()).acknowledged_by === 'U0ONCALL', 20_000);
    expect(slack.calls.some((c) => c.method === 'usergroups.users.list')).toBe(true);
  });

  it('puts no buttons on messages while slack_actions is off', async () => {
    ctx.config = pressConfig({ enabled: false });
    await raiseAlerts(ctx, { kinds: ['usage.runaway'], observations: [runawayObservation('k1')] }, routes, clock.now());
    await deliverNotifications({ ...ctx, clock }, { buttons: false });
    expect(JSON.stringify(posts()[0]?.args.blocks)).not.toContain('"action_id":"ack"');
    expect(JSON.stringify(posts()[0]?.args.blocks)).toContain('open-link-0');
  });
});

describe('Slack buttons: refused requests change nothing and echo nothing', () => {
  async function unchanged(run: () => Promise<{ status: number; text: string }>, status: number) {
    const { value } = await firingAlert();
    const before = await auditRows();
    const r = await run();
    expect(r.status).toBe(status);
    expect(r.text).not.toContain(SIGNING_SECRET);
    expect(r.text).not.toContain(value);
    expect((await alertRow()).acknowledged_at).toBeNull();
    expect(updates()).toHaveLength(0);
    expect(logLines.join('')).not.toContain(SIGNING_SECRET);
    return { before, after: await auditRows() };
  }
  const buttonValue = async () => (await db.selectFrom('slack_buttons').select('id').executeTakeFirstOrThrow()).id;

  it('a forged signature: 401, not audited', async () => {
    const { before, after } = await unchanged(
      async () =>
        slack.pressOverHttp(
          actionsUrl(),
          'not-the-secret',
          { actionId: 'ack', value: await buttonValue() },
          { timestamp: seconds() },
        ),
      401,
    );
    expect(after).toEqual(before);
  });

  it('a stale timestamp (over 5 minutes old): 401', async () => {
    await unchanged(
      async () =>
        slack.pressOverHttp(
          actionsUrl(),
          SIGNING_SECRET,
          { actionId: 'ack', value: await buttonValue() },
          { timestamp: seconds() - 301 },
        ),
      401,
    );
  });

  it('a replay of a request already handled: 401, no second audit row', async () => {
    const { value, message } = await firingAlert();
    ctx.config = pressConfig({ allow: { acknowledge: ['U0BOSS'] } }); // so the first press changes nothing either
    const body = new URLSearchParams({
      payload: JSON.stringify(slack.blockActions({ actionId: 'ack', value, userId: 'U0ANA', message })),
    }).toString();
    // the very same request, signature and timestamp included, sent twice
    const send = () => pressOverHttp({ actionId: 'ack', value }, body);
    const first = await send();
    expect(first.status).toBe(200);
    const audited = (await auditRows()).length;
    const replay = await send();
    expect(replay.status).toBe(401);
    expect(await auditRows()).toHaveLength(audited);
  });

  it('an unknown action_id: 400, audited as refused', async () => {
    const { before, after } = await unchanged(
      async () => pressOverHttp({ actionId: 'delete_everything', value: await buttonValue(), userId: 'U0ANA' }),
      400,
    );
    expect(after.slice(before.length).map((a) => [a.action, a.step, a.details.outcome ?? null])).toEqual([
      ['slack.unknown', 'intent', null],
      ['slack.unknown', 'failed', 'unknown_action'],
    ]);
  });

  it.each([
    ['a random id', () => randomUUID()],
    ['not an id at all', () => '1; DROP TABLE alerts; --'],
  ])('a value that names nothing (%s): 400', async (_name, value) => {
    const { before, after } = await unchanged(() => pressOverHttp({ actionId: 'ack', value: value() }), 400);
    expect(after.slice(before.length).map((a) => a.details.outcome ?? null)).toEqual([null, 'names_nothing']);
  });

  it('malformed JSON in the payload: 400', async () => {
    await unchanged(
      () => pressOverHttp({ actionId: 'ack', value: '' }, 'payload=%7B%22type%22%3A%22block_actions%22%2C'),
      400,
    );
  });

  it('a huge body: 413, refused before the signature is even checked', async () => {
    await unchanged(() => pressOverHttp({ actionId: 'ack', value: '' }, `payload=${'x'.repeat(400 * 1024)}`), 413);
  });
});
