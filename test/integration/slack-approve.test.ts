import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { enforceRotation } from '../../src/rotation/enforce.ts';
import { PRICE_TABLE } from '../../src/usage/core/prices.ts';
import { pollUsage } from '../../src/usage/ingest.ts';
import { usageContext } from '../support/context.ts';
import { keyIdByName, useDemoOrg } from '../support/demo-org.ts';
import {
  type DemoPresses,
  newestButton,
  pressOutcomes as outcomesOf,
  pressConfig,
  pressRoutes,
  startDemoPresses,
} from '../support/slack-press.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { waitUntil } from '../support/wait.ts';

const SIGNING_SECRET = 'approve-signing-secret-0123456789';
const HOUR = 3_600_000;
const org = useDemoOrg();
const routes = pressRoutes([{ match: { kind: 'rotation.*' }, slack: ['#security'] }]);

let env: DemoPresses['env'];
let slack: SlackServer;
let presses: DemoPresses;
let ctx: DemoPresses['ctx'];
let url: string;

beforeAll(async () => {
  slack = await startSlackServer();
  const config = pressConfig({
    routes,
    rotation: { enforce: 'approve', grace_days: 1 },
    allow: { approve_deactivation: ['U0SEC', 'U0LEAD'] },
    standInSecrets: false,
  });
  presses = await startDemoPresses({ org, slack, config, signingSecret: SIGNING_SECRET });
  ({ env, ctx, url } = presses);
});

afterAll(async () => {
  await presses?.close();
  await slack?.close();
});

const pollOnce = () =>
  pollUsage(usageContext(org.t.db, env.ctx.admin, org.clock), {
    overlapMinutes: 15,
    freshnessMinutes: 1,
    firstPollHours: 48,
    table: PRICE_TABLE,
  });

/** The Admin API's status changes of one key: POST /v1/organizations/api_keys/{id}. */
const statusUpdates = (id: string) =>
  org.emulator.requestLog.filter((r) => r.method === 'POST' && r.path.startsWith(`/v1/organizations/api_keys/${id}`));

const seconds = () => Math.floor(org.clock.now().getTime() / 1000);

const buttonOf = (keyId: string, choice: string) => newestButton(org.t.db, keyId, choice);

const pressOutcomes = (action: string, actor: string) => outcomesOf(org.t.db, action, actor);

describe('rotation.enforce: approve', () => {
  it('asks instead of retiring; Deny records who and asks again after grace_days; Approve retires exactly once over both transports', async () => {
    const id = await keyIdByName(org.t.db, 'Production Backend');
    // the overdue notice, then 36 h later (its traffic moved to its successor a day ago) past grace and drained
    await enforceRotation(env.ctx);
    org.clock.advance(36 * HOUR);
    await pollOnce();
    const run = await enforceRotation(env.ctx);
    expect(run.deactivated).toEqual([]);
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
    expect(statusUpdates(id)).toHaveLength(0);
    const asked = await org.t.db
      .selectFrom('alerts')
      .select(['title', 'state'])
      .where('kind', '=', 'rotation.approval_requested')
      .execute();
    expect(asked).toEqual([{ title: 'Approve setting API key "Production Backend" inactive?', state: 'firing' }]);

    await deliverNotifications(ctx, { buttons: true });
    const post = slack.calls.find(
      (c) => c.method === 'chat.postMessage' && String(c.args.text).includes('Approve setting API key'),
    );
    const blocks = JSON.stringify(post?.args.blocks);
    expect(blocks).toContain('"action_id":"approve"');
    expect(blocks).toContain('"action_id":"deny"');
    expect(blocks).not.toContain('"action_id":"ack"');

    // not on the allow list: refused, nothing recorded, no Admin API call
    // Deny is a menu of reasons: each option is its own button row
    const deny = await buttonOf(id, 'deny:successor_not_ready');
    const refused = await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'deny', value: deny.value, userId: 'U0ANA', message: deny.message },
      { timestamp: seconds() },
    );
    expect(refused.status).toBe(200);
    expect(String(slack.responses.at(-1)?.body.text)).toContain('slack_actions.allow.approve_deactivation');

    // Deny, twice (a double click over the two transports): one denial, the second press told who denied
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'deny', value: deny.value, userId: 'U0SEC', userName: 'sec', message: deny.message },
      { timestamp: seconds() },
    );
    const answered = slack.responses.length;
    await slack.pressOverSocket({ actionId: 'deny', value: deny.value, userId: 'U0LEAD', message: deny.message });
    await waitUntil('the second Deny answered', () => slack.responses.length > answered, 20_000);
    expect(String(slack.responses.at(-1)?.body.text)).toContain(
      'Already denied by <@U0SEC> (its successor is not ready)',
    );
    const denials = await org.t.db.selectFrom('rotation_denials').selectAll().execute();
    expect(denials).toHaveLength(1);
    expect(denials[0]).toMatchObject({
      api_key_id: id,
      denied_by: 'slack:U0SEC',
      denied_by_name: 'sec',
      reason: 'its successor is not ready',
    });
    expect(JSON.stringify(slack.calls.filter((c) => c.method === 'chat.update').at(-1)?.args.blocks)).toMatch(
      /Denied by <@U0SEC> at \d\d:\d\d UTC \(its successor is not ready\): keywarden asks again from 2026-11-18/,
    );
    expect(statusUpdates(id)).toHaveLength(0);
    expect(await pressOutcomes('slack.deny', 'slack:U0ANA')).toEqual(['refused:not_allowed']);
    expect(await pressOutcomes('slack.deny', 'slack:U0SEC')).toEqual(['denied']);
    expect(await pressOutcomes('slack.deny', 'slack:U0LEAD')).toEqual(['unchanged:denied']);

    // the next run: denied, so not asked again; the question resolves and the overdue notice says who said no
    org.clock.advance(HOUR);
    await pollOnce();
    await enforceRotation(env.ctx);
    const afterDeny = await org.t.db
      .selectFrom('alerts')
      .select(['kind', 'state', 'details'])
      .where('scope_id', '=', id)
      .where('kind', 'in', ['rotation.approval_requested', 'rotation.overdue'])
      .orderBy('kind')
      .execute();
    expect(afterDeny.map((a) => `${a.kind} ${a.state}`)).toEqual([
      'rotation.approval_requested resolved',
      'rotation.overdue firing',
    ]);
    expect(JSON.stringify(afterDeny[1]?.details)).toContain(
      'denied from Slack by user U0SEC on 2026-11-17 (its successor is not ready)',
    );
    const stage = await org.t.db
      .selectFrom('rotation_state')
      .select('stage')
      .where('api_key_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(stage.stage).toBe('denied');

    // grace_days (1) later it is asked again: a new episode, new buttons
    org.clock.advance(24 * HOUR);
    await pollOnce();
    await enforceRotation(env.ctx);
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
    await deliverNotifications(ctx, { buttons: true });
    const approve = await buttonOf(id, 'approve');
    const again = await org.t.db
      .selectFrom('alerts')
      .select('state')
      .where('kind', '=', 'rotation.approval_requested')
      .where('scope_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(again.state).toBe('firing');

    // Approve from both transports at once: the key is set inactive once, the other press changes nothing
    await Promise.all([
      slack.pressOverHttp(
        url,
        SIGNING_SECRET,
        { actionId: 'approve', value: approve.value, userId: 'U0SEC', userName: 'sec', message: approve.message },
        { timestamp: seconds() },
      ),
      slack.pressOverSocket({ actionId: 'approve', value: approve.value, userId: 'U0LEAD', message: approve.message }),
    ]);
    await waitUntil(
      'both Approve presses settled',
      async () =>
        (await pressOutcomes('slack.approve', 'slack:U0SEC')).length +
          (await pressOutcomes('slack.approve', 'slack:U0LEAD')).length ===
        2,
      5_000,
    );
    expect(statusUpdates(id)).toHaveLength(1);
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('inactive');
    const outcomes = [
      ...(await pressOutcomes('slack.approve', 'slack:U0SEC')),
      ...(await pressOutcomes('slack.approve', 'slack:U0LEAD')),
    ];
    expect(outcomes.filter((o) => o === 'deactivated')).toHaveLength(1);
    expect(outcomes.filter((o) => o !== 'deactivated')).toEqual([
      expect.stringMatching(/^(busy|unchanged:not_active)$/),
    ]);
    // the status change is audited as the Slack user who approved it
    const changes = await org.t.db
      .selectFrom('audit_log')
      .select(['actor', 'step', 'details'])
      .where('action', '=', 'api_key.deactivate')
      .where('subject_id', '=', id)
      .orderBy('id')
      .execute();
    expect(changes.map((c) => c.step)).toEqual(['intent', 'done']);
    expect(changes[0]?.actor).toMatch(/^slack:U0(SEC|LEAD)$/);
    expect(JSON.stringify(changes[0]?.details)).toContain('approved from Slack by');
    expect(JSON.stringify(slack.calls.filter((c) => c.method === 'chat.update').at(-1)?.args.blocks)).toContain(
      'the key was set inactive',
    );

    // pressed again later: already inactive, still one Admin API call
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'approve', value: approve.value, userId: 'U0SEC', message: approve.message },
      { timestamp: seconds() },
    );
    expect(String(slack.responses.at(-1)?.body.text)).toContain('already inactive');
    expect(statusUpdates(id)).toHaveLength(1);

    // the next run sees the key inactive: the question resolves, and a Deny on it now changes nothing
    await enforceRotation(env.ctx);
    const deny2 = await buttonOf(id, 'deny:still_needed');
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'deny', value: deny2.value, userId: 'U0SEC', message: deny2.message },
      { timestamp: seconds() },
    );
    expect(String(slack.responses.at(-1)?.body.text)).toBe('This alert has resolved: nothing was changed.');
    expect(await org.t.db.selectFrom('rotation_denials').select('id').execute()).toHaveLength(1);
  });

  it('Approve re-checks the drain at the press: traffic came back → refused, said in the message and the answer, nothing changed', async () => {
    // asked about a key while it was quiet; it carries traffic again by the time someone presses
    const id = await keyIdByName(org.t.db, 'Legacy integration');
    await raiseAlerts(
      ctx,
      {
        kinds: ['rotation.approval_requested'],
        observations: [
          {
            kind: 'rotation.approval_requested',
            severity: 'warning',
            scopeType: 'key',
            scopeId: id,
            workspaceId: null,
            period: '',
            title: 'Approve setting API key "Legacy integration" inactive?',
            details: {},
          },
        ],
      },
      routes,
      org.clock.now(),
    );
    await deliverNotifications(ctx, { buttons: true });
    const approve = await buttonOf(id, 'approve');
    const before = statusUpdates(id).length;
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'approve', value: approve.value, userId: 'U0SEC', message: approve.message },
      { timestamp: seconds() },
    );
    expect(String(slack.responses.at(-1)?.body.text)).toMatch(/^Not set inactive: its traffic came back: \d+ tokens/);
    expect(JSON.stringify(slack.calls.filter((c) => c.method === 'chat.update').at(-1)?.args.blocks)).toContain(
      'not set inactive, its traffic came back',
    );
    expect(statusUpdates(id)).toHaveLength(before);
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
    expect((await pressOutcomes('slack.approve', 'slack:U0SEC')).at(-1)).toBe('refused:recheck');

    // stored usage that lost the traffic (a re-read that never came): the direct read from the Admin API refuses
    await org.t.db.deleteFrom('usage_buckets').where('api_key_id', '=', id).execute();
    const reads = org.emulator.requestLog.length;
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'approve', value: approve.value, userId: 'U0SEC', message: approve.message },
      { timestamp: seconds() },
    );
    expect(org.emulator.requestLog.slice(reads).some((r) => r.path.includes('usage_report'))).toBe(true);
    expect(String(slack.responses.at(-1)?.body.text)).toMatch(/^Not set inactive: its traffic came back/);
    expect(statusUpdates(id)).toHaveLength(before);
    expect((await pressOutcomes('slack.approve', 'slack:U0SEC')).at(-1)).toBe('refused:recheck');
  });

  it('two questions raised in one run are two messages, each with its own Approve and Deny acting on its own key', async () => {
    const keys = await org.t.db
      .selectFrom('api_keys')
      .select(['id', 'name'])
      .where('status', '=', 'active')
      .where('name', 'not in', ['Production Backend', 'Legacy integration'])
      .orderBy('name')
      .limit(2)
      .execute();
    expect(keys).toHaveLength(2);
    const posted = slack.calls.length;
    await raiseAlerts(
      ctx,
      {
        kinds: ['rotation.approval_requested'],
        observations: keys.map((k) => ({
          kind: 'rotation.approval_requested' as const,
          severity: 'warning' as const,
          scopeType: 'key' as const,
          scopeId: k.id,
          workspaceId: null,
          period: '',
          title: `Approve setting API key "${k.name}" inactive?`,
          details: {},
        })),
      },
      routes,
      org.clock.now(),
    );
    await deliverNotifications(ctx, { buttons: true });
    const posts = slack.calls.slice(posted).filter((c) => c.method === 'chat.postMessage');
    expect(posts.map((p) => String(p.args.text)).filter((t) => t.includes('alerts:'))).toEqual([]);
    for (const k of keys) {
      const own = posts.filter((p) => String(p.args.text).includes(`"${k.name}"`));
      expect(own).toHaveLength(1);
      const blocks = JSON.stringify(own[0]?.args.blocks);
      expect(blocks).toContain('"action_id":"approve"');
      expect(blocks).toContain('"action_id":"deny"');
    }

    // each message's Deny answers for its own key only
    const [first, second] = keys as [(typeof keys)[0], (typeof keys)[0]];
    const denied = async () =>
      (await org.t.db.selectFrom('rotation_denials').select('api_key_id').execute()).map((r) => r.api_key_id);
    const before = await denied();
    const denyFirst = await buttonOf(first.id, 'deny:owner_away');
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'deny', value: denyFirst.value, userId: 'U0SEC', message: denyFirst.message },
      { timestamp: seconds() },
    );
    expect(await denied()).toEqual([...before, first.id]);
    const denySecond = await buttonOf(second.id, 'deny:still_needed');
    expect(denySecond.message).not.toBe(denyFirst.message);
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'deny', value: denySecond.value, userId: 'U0LEAD', message: denySecond.message },
      { timestamp: seconds() },
    );
    expect((await denied()).toSorted()).toEqual([...before, first.id, second.id].toSorted());
    expect(statusUpdates(first.id)).toHaveLength(0);
    expect(statusUpdates(second.id)).toHaveLength(0);
  });
});
