import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handlePress } from '../../src/actions/handle.ts';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { askAboutIncreaseRequests } from '../../src/spend/increase-requests.ts';
import { MINUTE_MS } from '../../src/time.ts';
import { DEMO_ADMIN_KEY } from '../support/demo-org.ts';
import { type IncreasePresses, newestButton, pressOutcomes, startIncreasePresses } from '../support/slack-press.ts';
import type { SlackServer } from '../support/slack-server.ts';

/**
 * Approve / Deny on an increase request when the Admin API misbehaves: an answer whose outcome was lost (a cut
 * body, a 5xx) is read back before anything is said, so a press the API applied is recorded as that press, one it
 * did not is given back, and one nobody can tell about keeps its claim; a failed read before the answer is said as
 * the read's failure. Real parts: the emulator (its faults API), Postgres, the Slack stand-in.
 */

const SIGNING_SECRET = 'increase-faults-signing-secret-0123';
const USD = 10n ** 12n;

const scenario = parseScenario({
  name: 'slack-increase-faults',
  seed: 17,
  admin_keys: [DEMO_ADMIN_KEY],
  users: [
    { name: 'Ana', email: 'ana@ent.example', role: 'developer' },
    { name: 'Bo', email: 'bo@ent.example', role: 'developer' },
    { name: 'Cy', email: 'cy@ent.example', role: 'developer' },
    { name: 'Di', email: 'di@ent.example', role: 'developer' },
    { name: 'Ed', email: 'ed@ent.example', role: 'developer' },
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
      { user: 'bo@ent.example', period: 'monthly', amount_usd: 100 },
      { user: 'cy@ent.example', period: 'monthly', amount_usd: 10 },
      { user: 'di@ent.example', period: 'monthly', amount_usd: 20 },
      { user: 'ed@ent.example', period: 'monthly', amount_usd: 30 },
    ],
    increase_requests: [
      { user: 'ana@ent.example', period: 'monthly', age_days: 1 },
      { user: 'bo@ent.example', period: 'monthly', age_days: 2 },
      { user: 'cy@ent.example', period: 'monthly', age_days: 3 },
      { user: 'di@ent.example', period: 'monthly', age_days: 4 },
      { user: 'ed@ent.example', period: 'monthly', age_days: 5 },
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
  presses = await startIncreasePresses(scenario, { approve_spend_increase: ['U0FIN', 'U0LEAD'] }, SIGNING_SECRET);
  ({ org, slack, ctx, url } = presses);
  for (const r of presses.requests) {
    ids[r.email] = r.id;
    users[r.email] = r.userId;
  }
  await askAboutIncreaseRequests(presses.env.ctx);
  await deliverNotifications(ctx, { buttons: true });
});

afterAll(async () => {
  await presses?.close();
});

const requestPath = (email: string) => `/v1/organizations/spend_limit_increase_requests/${ids[email]}`;
const posts = (email: string) =>
  org.emulator.requestLog.filter((r) => r.method === 'POST' && r.path.startsWith(`${requestPath(email)}/`));
const updates = () => slack.calls.filter((c) => c.method === 'chat.update').map((c) => JSON.stringify(c.args.blocks));
const lastTold = () => String(slack.responses.at(-1)?.body.text);
const row = (email: string) =>
  org.t.db
    .selectFrom('increase_requests')
    .select(['state', 'answered_by', 'limit_after_minor'])
    .where('request_id', '=', ids[email]!)
    .executeTakeFirstOrThrow();
const memberLimit = async (email: string) => {
  const rows = await ctx.admin.listMemberSpend({ periods: ['monthly'] }).toArray();
  return rows.find((r) => r.actor.type === 'user' && r.actor.email === email)?.limit ?? null;
};

/** Presses `choice` on the member's message over HTTP as `userId` (handled before the HTTP answer). */
async function press(email: string, choice: 'increase:approve' | 'increase:deny', userId = 'U0FIN') {
  const button = await newestButton(org.t.db, users[email]!, choice);
  const r = await slack.pressOverHttp(
    url,
    SIGNING_SECRET,
    {
      actionId: choice === 'increase:approve' ? 'approve' : 'deny',
      value: button.value,
      userId,
      message: button.message,
    },
    { timestamp: Math.floor(org.clock.now().getTime() / 1000) },
  );
  expect(r.status).toBe(200);
}

/** The outcome of the newest press of `action` by `actor`. */
async function lastOutcome(action: string, actor = 'slack:U0FIN'): Promise<string> {
  return String((await pressOutcomes(org.t.db, action, actor)).at(-1));
}

describe('increase request answers when the Admin API misbehaves', () => {
  it('a Deny applied but its answer cut short: read back, recorded as this press, the message says so', async () => {
    org.emulator.setFaults({ script: [{ path: `${requestPath('ana@ent.example')}/deny`, truncateAt: 5 }] });
    const before = updates().length;
    await press('ana@ent.example', 'increase:deny');
    expect((await ctx.admin.increaseRequests.get(ids['ana@ent.example']!)).status).toBe('denied');
    expect(posts('ana@ent.example').map((r) => r.path)).toEqual([`${requestPath('ana@ent.example')}/deny`]);
    expect(await lastOutcome('slack.deny')).toBe('denied');
    expect(await row('ana@ent.example')).toMatchObject({ state: 'denied', answered_by: 'slack:U0FIN' });
    expect(updates().length).toBeGreaterThan(before);
    expect(updates().at(-1)).toMatch(/Denied by <@U0FIN> at \d\d:\d\d UTC: the monthly limit stays \$150\.00/);
    expect(updates().at(-1)).toContain('answer was lost');
    // the next press is told who answered: the presser, not "outside keywarden"
    await press('ana@ent.example', 'increase:deny', 'U0LEAD');
    expect(lastTold()).toMatch(/Already denied by <@U0FIN> at \d\d:\d\d UTC: nothing was changed/);
    expect(posts('ana@ent.example')).toHaveLength(1);
  });

  it('an Approve answered 500 and still pending when read back: nothing changed, the next press approves', async () => {
    org.emulator.setFaults({ script: [{ path: `${requestPath('bo@ent.example')}/approve`, status: 500 }] });
    await press('bo@ent.example', 'increase:approve');
    expect(await lastOutcome('slack.approve')).toBe('api_unavailable');
    expect(lastTold()).toContain('The Admin API answered 500 api_error when asked to approve the request');
    expect(lastTold()).toContain('still pending: nothing was changed');
    expect(lastTold()).not.toContain('could not be reached');
    expect(await row('bo@ent.example')).toMatchObject({ state: 'pending', answered_by: null });
    expect(await memberLimit('bo@ent.example')).toBe(100n * USD);
    await press('bo@ent.example', 'increase:approve');
    expect(await lastOutcome('slack.approve')).toBe('approved');
    expect(await memberLimit('bo@ent.example')).toBe(200n * USD);
    expect(posts('bo@ent.example').map((r) => r.status)).toEqual([500, 200]);
  });

  it('an Approve whose 200 body is unusable and whose read back fails: outcome unknown, named, the claim kept', async () => {
    const path = requestPath('cy@ent.example');
    org.emulator.setFaults({
      script: [
        { path }, // the read before the answer: normal
        { path: `${path}/approve`, truncateAt: 12 },
        { path, status: 503, shouldRetry: false },
      ],
    });
    await press('cy@ent.example', 'increase:approve');
    expect(await lastOutcome('slack.approve')).toBe('unknown');
    const told = lastTold();
    expect(told).toContain('The Admin API answered 200 with a body keywarden could not use');
    expect(told).toContain('not valid JSON');
    expect(told).toContain('whether it was approved is not known');
    expect(told).not.toContain('could not be reached');
    expect(told).not.toContain('nothing was changed');
    // applied by the API; keywarden holds the claim until it is stale: another press sends nothing
    expect(await memberLimit('cy@ent.example')).toBe(20n * USD);
    expect(await row('cy@ent.example')).toMatchObject({ state: 'approving', answered_by: 'slack:U0FIN' });
    await press('cy@ent.example', 'increase:deny', 'U0LEAD');
    expect(await lastOutcome('slack.deny', 'slack:U0LEAD')).toBe('unchanged:in_progress');
    expect(lastTold()).toContain('<@U0FIN> is answering this request right now');
    expect(posts('cy@ent.example')).toHaveLength(1);

    // once the claim is stale, a press reads the request: the approval is U0FIN's, applied with its reply lost
    org.clock.advance(Math.max(5 * MINUTE_MS, 2 * ctx.admin.retryBudgetMs) + 1);
    await press('cy@ent.example', 'increase:approve', 'U0LEAD');
    expect(await lastOutcome('slack.approve', 'slack:U0LEAD')).toBe('unchanged:answered_by_earlier_press:approved');
    expect(lastTold()).toMatch(
      /^Approved by <@U0FIN> at \d\d:\d\d UTC \(that press's reply from the Admin API was lost\)/,
    );
    expect(await row('cy@ent.example')).toMatchObject({ state: 'approved', answered_by: 'slack:U0FIN' });
    expect(posts('cy@ent.example')).toHaveLength(1);
  });

  it('the read before the answer refused (404): said as the read, not as a refused approval', async () => {
    org.emulator.setFaults({ script: [{ path: requestPath('di@ent.example'), status: 404 }] });
    await press('di@ent.example', 'increase:approve');
    expect(await lastOutcome('slack.approve')).toBe('read_failed');
    expect(lastTold()).toContain('could not read the request from the Admin API before answering it');
    expect(lastTold()).toContain('answered 404');
    expect(lastTold()).not.toContain('refused to approve');
    expect(posts('di@ent.example')).toEqual([]);
    expect(await row('di@ent.example')).toMatchObject({ state: 'pending', answered_by: null });
  });

  it('Postgres failing to record an applied Approve keeps the claim: never pending again for a second POST', async () => {
    const id = ids['ed@ent.example']!;
    // the real database refuses the write that records the answer (the disk full, a failover)
    await sql`
      CREATE FUNCTION refuse_settle() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'the database is unavailable'; END $$;
      CREATE TRIGGER refuse_settle BEFORE UPDATE ON increase_requests
        FOR EACH ROW WHEN (NEW.state = 'approved' AND NEW.request_id = ${sql.lit(id)}) EXECUTE FUNCTION refuse_settle();
    `.execute(org.t.db);
    try {
      const button = await newestButton(org.t.db, users['ed@ent.example']!, 'increase:approve');
      const pressed = handlePress(ctx, {
        actionId: 'approve',
        value: button.value,
        userId: 'U0FIN',
        userName: 'fin',
        teamId: null,
        responseUrl: null,
        transport: 'http',
      });
      await expect(pressed).rejects.toThrow('the database is unavailable');
    } finally {
      await sql`DROP TRIGGER refuse_settle ON increase_requests; DROP FUNCTION refuse_settle();`.execute(org.t.db);
    }
    expect(await memberLimit('ed@ent.example')).toBe(60n * USD);
    expect(posts('ed@ent.example')).toHaveLength(1);
    expect(await row('ed@ent.example')).toMatchObject({ state: 'approving', answered_by: 'slack:U0FIN' });
    await press('ed@ent.example', 'increase:approve', 'U0LEAD');
    expect(await lastOutcome('slack.approve', 'slack:U0LEAD')).toBe('unchanged:in_progress');
    expect(posts('ed@ent.example')).toHaveLength(1);
  });
});
