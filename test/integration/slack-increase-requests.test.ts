import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../src/anthropic/client.ts';
import { Secret } from '../../src/config/secret.ts';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { startEmulator } from '../../src/emulator/server.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { askAboutIncreaseRequests } from '../../src/spend/increase-requests.ts';
import { DEMO_ADMIN_KEY, DEMO_START } from '../support/demo-org.ts';
import {
  type IncreasePresses,
  newestButton,
  pressOutcomes as outcomesOf,
  startIncreasePresses,
} from '../support/slack-press.ts';
import type { SlackServer } from '../support/slack-server.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * Approve / Deny on a Claude Enterprise member's spend limit increase request, through both transports against the
 * Slack stand-in and the emulator: the question asked once per request, an allowed Approve that sets the proposed
 * limit with exactly one Admin API call (a double press over both transports included), Deny, a refused presser, a
 * request answered in the Console first, a press after the answer; a Console organization asks nothing.
 */

const SIGNING_SECRET = 'increase-signing-secret-0123456789';
const USD = 10n ** 12n;
// organization-controlled text: it must reach Slack as text, never as markup or a mention
const HOSTILE = 'Eve <!channel> *boss* <https://evil.example|click>';

const scenario = parseScenario({
  name: 'slack-increase-requests',
  seed: 16,
  admin_keys: [DEMO_ADMIN_KEY],
  users: [
    { name: 'Ana', email: 'ana@ent.example', role: 'developer' },
    { name: HOSTILE, email: 'eve@ent.example', role: 'developer' },
    { name: 'Bo', email: 'bo@ent.example', role: 'developer' },
    { name: 'Cy', email: 'cy@ent.example', role: 'developer' },
    { name: 'Fin', email: 'fin@ent.example', role: 'admin' },
  ],
  keys: [
    {
      name: 'ana-1',
      principal: 'ana@ent.example',
      created_by: 'ana@ent.example',
      traffic: { tokens_per_minute: 3_000, models: { 'claude-sonnet-4-5': 1 }, noise: 0.1 },
    },
  ],
  spend_limits: {
    organization_type: 'enterprise',
    members: [
      { user: 'ana@ent.example', period: 'monthly', amount_usd: 150 },
      { user: 'eve@ent.example', period: 'monthly', amount_usd: 75.5, source: 'rbac_group' },
      { user: 'bo@ent.example', period: 'weekly', amount_usd: null, source: 'organization' },
      { user: 'cy@ent.example', period: 'monthly', amount_usd: 10 },
      { user: 'fin@ent.example', period: 'monthly', amount_usd: 20 },
    ],
    increase_requests: [
      { user: 'ana@ent.example', period: 'monthly', age_days: 1 },
      { user: 'eve@ent.example', period: 'monthly', age_days: 2 },
      { user: 'bo@ent.example', period: 'weekly', age_days: 3 },
      { user: 'cy@ent.example', period: 'monthly', age_days: 4 },
      // asked twice: approving one raises the limit the other proposes to double
      { user: 'fin@ent.example', period: 'monthly', age_days: 5 },
      { user: 'fin@ent.example', period: 'monthly', age_days: 6 },
    ],
  },
});

let org: IncreasePresses['org'];
let slack: SlackServer;
let presses: IncreasePresses;
let ctx: IncreasePresses['ctx'];
let url: string;
const ids: Record<string, string> = {};
const users: Record<string, string> = {};

beforeAll(async () => {
  presses = await startIncreasePresses(
    scenario,
    // U0SEC may set keys inactive: that must not let it raise spend limits
    { approve_deactivation: ['U0SEC'], approve_spend_increase: ['U0FIN', 'U0LEAD'] },
    SIGNING_SECRET,
  );
  ({ org, slack, ctx, url } = presses);
  for (const r of presses.requests) {
    // Fin's older request as `fin-old`
    ids[r.email in ids ? `${r.email.split('@')[0]}-old` : r.email] = r.id;
    users[r.email] = r.userId;
  }
});

afterAll(async () => {
  await presses?.close();
});

const seconds = () => Math.floor(org.clock.now().getTime() / 1000);
/** The Admin API's answers to one request: POST …/{id}/approve and …/deny. */
const answerPosts = (email: string) =>
  org.emulator.requestLog.filter((r) => r.method === 'POST' && r.path.includes(`/${ids[email]}/`)).map((r) => r.path);
const buttonOf = (email: string, choice: string) => newestButton(org.t.db, users[email]!, choice);
const updates = () => slack.calls.filter((c) => c.method === 'chat.update').map((c) => JSON.stringify(c.args.blocks));
const memberLimit = async (email: string, period: string) => {
  const rows = await ctx.admin.listMemberSpend().toArray();
  const row = rows.find((r) => r.actor.type === 'user' && r.actor.email === email && r.period === period);
  return row?.limit ?? null;
};

const pressOutcomes = (action: string, actor: string) => outcomesOf(org.t.db, action, actor);

describe('Enterprise spend limit increase requests in Slack', () => {
  it('asks once per pending request, with Approve (twice the limit) and Deny; names as text; Deny only without a limit', async () => {
    const first = await askAboutIncreaseRequests(presses.env.ctx);
    expect(first).toMatchObject({ fired: 6, notifications: 6 });
    await deliverNotifications(ctx, { buttons: true });
    const posts = slack.calls.filter((c) => c.method === 'chat.postMessage');
    expect(posts).toHaveLength(6);
    const post = (name: string) => posts.find((p) => String(p.args.text).includes(name))!;
    const ana = JSON.stringify(post('"Ana" asks').args);
    expect(ana).toContain('Member \\"Ana\\" asks for a higher monthly spend limit');
    expect(ana).toContain('$300.00 per month');
    expect(ana).toContain('"action_id":"approve"');
    expect(ana).toContain('"action_id":"deny"');
    expect(ana).not.toContain('"action_id":"ack"');
    const bo = JSON.stringify(post('"Bo" asks').args);
    expect(bo).toContain('"action_id":"deny"');
    expect(bo).not.toContain('"action_id":"approve"');
    // mrkdwn (the fallback text and every mrkdwn block) carries the name escaped; plain_text is never parsed
    const eve = posts.find((p) => String(p.args.text).includes('Eve'))!.args;
    const mrkdwn = [String(eve.text)];
    JSON.stringify(eve.blocks, (_key, v) => {
      if (v?.type === 'mrkdwn') mrkdwn.push(String(v.text));
      return v;
    });
    expect(mrkdwn.join('\n')).toContain('Eve &lt;!channel&gt;');
    for (const text of mrkdwn) {
      expect(text).not.toContain('<!channel>');
      expect(text).not.toContain('<https://evil.example');
    }
    const rows = await org.t.db
      .selectFrom('increase_requests')
      .select(['request_id', 'amount_minor', 'limit_minor', 'state'])
      .orderBy('requested_at', 'desc')
      .execute();
    expect(rows).toEqual([
      { request_id: ids['ana@ent.example'], amount_minor: '30000', limit_minor: '15000', state: 'pending' },
      { request_id: ids['eve@ent.example'], amount_minor: '15100', limit_minor: '7550', state: 'pending' },
      { request_id: ids['bo@ent.example'], amount_minor: null, limit_minor: null, state: 'pending' },
      { request_id: ids['cy@ent.example'], amount_minor: '2000', limit_minor: '1000', state: 'pending' },
      { request_id: ids['fin@ent.example'], amount_minor: '4000', limit_minor: '2000', state: 'pending' },
      { request_id: ids['fin-old'], amount_minor: '4000', limit_minor: '2000', state: 'pending' },
    ]);
    // the next run: the same requests, nothing asked again
    await askAboutIncreaseRequests(presses.env.ctx);
    await deliverNotifications(ctx, { buttons: true });
    expect(slack.calls.filter((c) => c.method === 'chat.postMessage')).toHaveLength(6);
  });

  it('a presser not on the allow list is refused over both transports: nothing changed, audited', async () => {
    const approve = await buttonOf('ana@ent.example', 'increase:approve');
    const r = await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'approve', value: approve.value, userId: 'U0ANA', message: approve.message },
      { timestamp: seconds() },
    );
    expect(r.status).toBe(200);
    expect(String(slack.responses.at(-1)?.body.text)).toContain('slack_actions.allow.approve_spend_increase');
    // allowed to approve deactivations only: still refused here
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'approve', value: approve.value, userId: 'U0SEC', message: approve.message },
      { timestamp: seconds() },
    );
    expect(String(slack.responses.at(-1)?.body.text)).toContain('slack_actions.allow.approve_spend_increase');
    expect(await pressOutcomes('slack.approve', 'slack:U0SEC')).toEqual(['refused:not_allowed']);
    const deny = await buttonOf('ana@ent.example', 'increase:deny');
    const told = slack.responses.length;
    await slack.pressOverSocket({ actionId: 'deny', value: deny.value, userId: 'U0ANA', message: deny.message });
    await waitUntil('the refused Deny answered', () => slack.responses.length > told, 20_000);
    expect(answerPosts('ana@ent.example')).toEqual([]);
    expect(await pressOutcomes('slack.approve', 'slack:U0ANA')).toEqual(['refused:not_allowed']);
    expect(await pressOutcomes('slack.deny', 'slack:U0ANA')).toEqual(['refused:not_allowed']);
    expect(await memberLimit('ana@ent.example', 'monthly')).toBe(150n * 10n ** 12n);
  });

  it('Approve pressed twice at once over both transports: one POST approve, the limit set, the message rewritten', async () => {
    const approve = await buttonOf('ana@ent.example', 'increase:approve');
    // the first press's read of the request is slowed, so the second arrives while the first holds the claim (a
    // Socket Mode press is handled after its ack: without this the second could simply find the request approved)
    const requestPath = `/v1/organizations/spend_limit_increase_requests/${ids['ana@ent.example']}`;
    org.emulator.setFaults({ script: [{ path: requestPath, delayMs: 1_500 }] });
    await Promise.all([
      slack.pressOverHttp(
        url,
        SIGNING_SECRET,
        { actionId: 'approve', value: approve.value, userId: 'U0FIN', userName: 'fin', message: approve.message },
        { timestamp: seconds() },
      ),
      slack.pressOverSocket({ actionId: 'approve', value: approve.value, userId: 'U0LEAD', message: approve.message }),
    ]);
    await waitUntil(
      'both Approve presses settled',
      async () =>
        (await pressOutcomes('slack.approve', 'slack:U0FIN')).length +
          (await pressOutcomes('slack.approve', 'slack:U0LEAD')).length ===
        2,
      20_000,
    );
    expect(answerPosts('ana@ent.example')).toEqual([
      `/v1/organizations/spend_limit_increase_requests/${ids['ana@ent.example']}/approve`,
    ]);
    expect(await memberLimit('ana@ent.example', 'monthly')).toBe(300n * 10n ** 12n);
    const outcomes = [
      ...(await pressOutcomes('slack.approve', 'slack:U0FIN')),
      ...(await pressOutcomes('slack.approve', 'slack:U0LEAD')),
    ];
    expect(outcomes.filter((o) => o === 'approved')).toHaveLength(1);
    expect(outcomes.filter((o) => o.startsWith('unchanged:'))).toHaveLength(1);
    // a real race: the second press found the claim held, never read the request, and its audit says so
    expect(outcomes.toSorted()).toEqual(['approved', 'unchanged:in_progress']);
    expect(org.emulator.requestLog.filter((r) => r.method === 'GET' && r.path === requestPath)).toHaveLength(1);
    org.emulator.setFaults({});
    expect(
      updates().some((u) => /Approved by <@U0(FIN|LEAD)> at \d\d:\d\d UTC: the monthly limit is now \$300\.00/.test(u)),
    ).toBe(true);
    const row = await org.t.db
      .selectFrom('increase_requests')
      .select(['state', 'answered_by', 'limit_after_minor', 'notification_id'])
      .where('request_id', '=', ids['ana@ent.example']!)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ state: 'approved', limit_after_minor: '30000' });
    expect(row.notification_id).not.toBeNull();

    // a press after the answer (a replay of the old message): told who answered, nothing sent
    const told = slack.responses.length;
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      {
        actionId: 'deny',
        value: (await buttonOf('ana@ent.example', 'increase:deny')).value,
        userId: 'U0LEAD',
        message: approve.message,
      },
      { timestamp: seconds() },
    );
    await waitUntil('the late Deny answered', () => slack.responses.length > told, 20_000);
    expect(String(slack.responses.at(-1)?.body.text)).toMatch(
      /Already approved by <@U0(FIN|LEAD)> at \d\d:\d\d UTC: nothing was changed/,
    );
    expect(answerPosts('ana@ent.example')).toHaveLength(1);
    expect(await pressOutcomes('slack.deny', 'slack:U0LEAD')).toEqual(['unchanged:approved']);
  });

  it('Deny over Socket Mode: one POST deny, the limit kept, the message says so', async () => {
    const deny = await buttonOf('eve@ent.example', 'increase:deny');
    const before = updates().length;
    await slack.pressOverSocket({ actionId: 'deny', value: deny.value, userId: 'U0FIN', message: deny.message });
    await waitUntil('the Deny applied', () => updates().length > before, 20_000);
    expect(answerPosts('eve@ent.example')).toEqual([
      `/v1/organizations/spend_limit_increase_requests/${ids['eve@ent.example']}/deny`,
    ]);
    expect(updates().at(-1)).toMatch(/Denied by <@U0FIN> at \d\d:\d\d UTC: the monthly limit stays \$75\.50/);
    expect(await memberLimit('eve@ent.example', 'monthly')).toBe(75_500_000_000_000n);
    expect((await ctx.admin.increaseRequests.get(ids['eve@ent.example']!)).status).toBe('denied');
    expect(await pressOutcomes('slack.deny', 'slack:U0FIN')).toEqual(['denied']);

    // over HTTP, on the request without a limit to double (its message offers Deny only)
    const boDeny = await buttonOf('bo@ent.example', 'increase:deny');
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'deny', value: boDeny.value, userId: 'U0LEAD', message: boDeny.message },
      { timestamp: seconds() },
    );
    expect(answerPosts('bo@ent.example')).toEqual([
      `/v1/organizations/spend_limit_increase_requests/${ids['bo@ent.example']}/deny`,
    ]);
    expect(updates().at(-1)).toMatch(/Denied by <@U0LEAD> at \d\d:\d\d UTC: the weekly limit stays as it is/);
    expect(await pressOutcomes('slack.deny', 'slack:U0LEAD')).toEqual(['unchanged:approved', 'denied']);
  });

  it('a request approved in the Console first: the press changes nothing and says so, in the message too', async () => {
    const consoleAnswer = await fetch(
      `${org.emulator.url}/v1/organizations/spend_limit_increase_requests/${ids['cy@ent.example']}/approve`,
      {
        method: 'POST',
        headers: { 'x-api-key': DEMO_ADMIN_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify({ amount: '5000' }),
      },
    );
    expect(consoleAnswer.status).toBe(200);
    const approve = await buttonOf('cy@ent.example', 'increase:approve');
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'approve', value: approve.value, userId: 'U0FIN', message: approve.message },
      { timestamp: seconds() },
    );
    await waitUntil(
      'the press answered',
      async () => (await pressOutcomes('slack.approve', 'slack:U0FIN')).length === 2,
      20_000,
    );
    expect((await pressOutcomes('slack.approve', 'slack:U0FIN')).at(-1)).toBe('unchanged:answered_elsewhere:approved');
    // the Console's approval only
    expect(answerPosts('cy@ent.example')).toHaveLength(1);
    expect(await memberLimit('cy@ent.example', 'monthly')).toBe(50n * 10n ** 12n);
    expect(updates().at(-1)).toContain('Approved outside keywarden (the Console or another admin key)');
    expect(String(slack.responses.at(-1)?.body.text)).toContain('nothing was changed');
    const row = await org.t.db
      .selectFrom('increase_requests')
      .select(['state', 'answered_by'])
      .where('request_id', '=', ids['cy@ent.example']!)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ state: 'approved', answered_by: 'console' });
  });

  it('a limit raised meanwhile to the proposed amount: Approve refuses rather than lower it', async () => {
    const newer = (await ctx.admin.listIncreaseRequests({ actorIds: [users['fin@ent.example']!] }).toArray())[0]!;
    const approveNewer = await org.t.db
      .selectFrom('slack_buttons')
      .innerJoin('alerts', 'alerts.id', 'slack_buttons.alert_id')
      .innerJoin('notifications', 'notifications.id', 'slack_buttons.notification_id')
      .select(['slack_buttons.id', 'notifications.provider_id', 'alerts.period'])
      .where('slack_buttons.choice', '=', 'increase:approve')
      .where('alerts.scope_id', '=', users['fin@ent.example']!)
      .execute();
    const button = (id: string) => approveNewer.find((b) => b.period === `increase:${id}`)!;
    const press = (id: string) =>
      slack.pressOverHttp(
        url,
        SIGNING_SECRET,
        { actionId: 'approve', value: button(id).id, userId: 'U0FIN', message: String(button(id).provider_id) },
        { timestamp: seconds() },
      );
    await press(newer.id);
    expect(await memberLimit('fin@ent.example', 'monthly')).toBe(40n * USD);
    const older = ids['fin-old']!;
    await press(older);
    expect(String(slack.responses.at(-1)?.body.text)).toContain(
      "The member's monthly limit is already $40.00, not below the $40.00 this message proposes: nothing was changed",
    );
    expect(org.emulator.requestLog.filter((r) => r.method === 'POST' && r.path.includes(`/${older}/`))).toEqual([]);
    expect((await pressOutcomes('slack.approve', 'slack:U0FIN')).slice(-2)).toEqual([
      'approved',
      'refused:limit_already_higher',
    ]);
    const row = await org.t.db
      .selectFrom('increase_requests')
      .select(['state', 'answered_by'])
      .where('request_id', '=', older)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ state: 'pending', answered_by: null });
  });

  it('a claim: one press at a time; a claim left by a crash is taken over once stale; an ended request stays ended', async () => {
    const repo = ctx.repos.increaseRequests;
    const now = org.clock.now();
    const later = new Date(now.getTime() + 1);
    const seen = {
      requestId: 'splir_01claim',
      userId: 'user_01claim',
      period: 'monthly' as const,
      currency: 'USD',
      limitMinor: 100n,
      amountMinor: 200n,
      requestedAt: now,
    };
    await repo.recordSeen([seen]);
    expect(await repo.byRequestId('splir_01claim')).toMatchObject({ state: 'pending', amountMinor: 200n });
    // seen again with other figures: the first sight stands (the message proposed its amount)
    await repo.recordSeen([{ ...seen, amountMinor: 999n }]);
    expect(await repo.byRequestId('splir_01claim')).toMatchObject({ amountMinor: 200n });
    const first = await repo.claim('splir_01claim', 'approving', 'slack:U0A', now, now);
    expect(first).toEqual({ requestId: 'splir_01claim', at: now, by: 'slack:U0A' });
    expect(await repo.byRequestId('splir_01claim')).toMatchObject({ state: 'approving' });
    expect(await repo.claim('splir_01claim', 'denying', 'slack:U0B', now, now)).toBeNull();
    const takeover = await repo.claim('splir_01claim', 'denying', 'slack:U0B', later, later);
    expect(takeover).not.toBeNull();
    expect(await repo.byRequestId('splir_01claim')).toMatchObject({
      state: 'denying',
      answeredBy: 'slack:U0B',
      amountMinor: 200n,
    });
    // the press whose claim was taken over changes nothing: neither its release nor its settle
    expect(await repo.release(first!)).toBe(false);
    expect(await repo.settle(first!, { state: 'approved', answeredBy: 'slack:U0A', answeredAt: now })).toBe(false);
    expect(await repo.byRequestId('splir_01claim')).toMatchObject({ state: 'denying', answeredBy: 'slack:U0B' });
    // the same press at the same instant, by someone else, is not the holder either
    expect(await repo.release({ ...takeover!, by: 'slack:U0A' })).toBe(false);
    expect(await repo.release(takeover!)).toBe(true);
    expect(await repo.byRequestId('splir_01claim')).toMatchObject({ state: 'pending', answeredBy: null });
    const third = await repo.claim('splir_01claim', 'denying', 'slack:U0C', later, later);
    expect(await repo.settle(third!, { state: 'denied', answeredBy: 'console', answeredAt: now })).toBe(true);
    expect(
      await repo.claim('splir_01claim', 'approving', 'slack:U0A', later, new Date(later.getTime() + 1)),
    ).toBeNull();
    expect(await repo.settle(third!, { state: 'approved', answeredBy: 'slack:U0A', answeredAt: now })).toBe(false);
    expect(await repo.byRequestId('splir_01claim')).toMatchObject({ state: 'denied', answeredBy: 'console' });
  });

  it('a Console organization: nothing asked, no message, nothing logged above info', async () => {
    const consoleOrg = await startEmulator({
      scenario: {
        ...scenario,
        spend_limits: { ...scenario.spend_limits, organization_type: 'console', members: [], increase_requests: [] },
      },
      clock: org.clock,
      startAt: DEMO_START,
    });
    try {
      const before = await org.t.db.selectFrom('notifications').select('id').execute();
      const linesBefore = presses.env.lines.length;
      const admin = new AdminClient({
        baseUrl: consoleOrg.url,
        adminKey: new Secret(DEMO_ADMIN_KEY),
        clock: org.clock,
      });
      expect(await askAboutIncreaseRequests({ ...presses.env.ctx, admin })).toBeNull();
      expect(await org.t.db.selectFrom('notifications').select('id').execute()).toHaveLength(before.length);
      expect(presses.env.lines.slice(linesBefore).filter((l) => /"level":(40|50)/.test(l))).toEqual([]);
    } finally {
      await consoleOrg.close();
    }
  });
});
