import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { groupMembers } from '../../src/actions/groups.ts';
import type { ActionContext } from '../../src/actions/handle.ts';
import { slackActionsEndpoint } from '../../src/actions/http.ts';
import { type SocketModeTransport, startSocketMode } from '../../src/actions/socket.ts';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { AdminClient } from '../../src/anthropic/client.ts';
import { fixedClock } from '../../src/clock.ts';
import { Secret } from '../../src/config/secret.ts';
import { createDb, type Db, migrateToLatest } from '../../src/db/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { STANDIN_APP_TOKEN } from '../../src/notify/dev/slack-standin.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
import { runawayObservation } from '../support/alerts.ts';
import { captureLog } from '../support/context.ts';
import { createTestDatabase, redisUrl, type TestDatabase } from '../support/db.ts';
import { PRESS_SIGNING_SECRET, pressConfig, pressRoutes } from '../support/slack-press.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * Two organizations, each in its own schema (so their alerts' ids repeat: both start at 1), behind one Slack app:
 * a button's value names its organization, and a press acts in that organization's schema only, under its own
 * slack_actions. A value naming no organization, or a bare row id while there are several, names nothing.
 */

const routes = pressRoutes([{ match: { kind: 'usage.*' }, slack: ['#ai-alerts'], repeat_every: '1h' }]);

let t: TestDatabase;
let slack: SlackServer;
let redis: Redis;
let server: Server;
let socket: SocketModeTransport;
let url: string;
const pools: Db[] = [];
const clock = fixedClock(new Date());
const captured = captureLog();
const orgs = new Map<string, ActionContext & { db: Db }>();

beforeAll(async () => {
  [t, slack] = await Promise.all([createTestDatabase(), startSlackServer()]);
  redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const slackClient = createSlackClient({ token: new Secret(slack.token), apiUrl: slack.url, timeoutMs: 2000 });
  for (const [id, name] of [
    ['emea', 'EMEA'],
    ['apac', 'APAC'],
  ] as const) {
    const schema = `kw_${id}`;
    const owner = createDb(t.url, { max: 2, schema });
    const db = createDb(t.runtimeUrl, { max: 2, schema });
    pools.push(owner, db);
    await migrateToLatest(owner, schema);
    const log = captured.log.child({ org: id });
    orgs.set(id, {
      db,
      config: pressConfig(),
      repos: createRepos(db),
      admin: new AdminClient({
        baseUrl: 'http://127.0.0.1:9',
        adminKey: new Secret('sk-ant-admin01-unused-0000'),
        log,
        clock,
      }),
      notifier: { slack: slackClient, email: null, organizationTag: name, organizationId: id, close: async () => {} },
      clock,
      log,
      groups: groupMembers(slackClient, clock, log),
    });
  }
  const receiver = { targets: orgs, redis, clock, log: captured.log };
  const endpoint = slackActionsEndpoint(receiver, new Secret(PRESS_SIGNING_SECRET));
  server = createServer((req, res) => void endpoint(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/actions`;
  socket = startSocketMode(receiver, { appToken: new Secret(STANDIN_APP_TOKEN), apiUrl: slack.url });
  await socket.connected;
  await slack.socketConnected();
});

afterAll(async () => {
  await socket?.close();
  await new Promise((r) => server?.close(r));
  await redis?.quit();
  await Promise.all(pools.map((p) => p.destroy()));
  await Promise.all([t?.drop(), slack?.close()]);
});

const org = (id: string) => orgs.get(id)!;

beforeEach(async () => {
  for (const o of orgs.values()) {
    await o.db.deleteFrom('slack_buttons').execute();
    await o.db.deleteFrom('notifications').execute();
    await o.db.deleteFrom('alerts').execute();
    o.config = pressConfig();
  }
  slack.reset();
});

const seconds = () => Math.floor(clock.now().getTime() / 1000);
const pressOverHttp = (value: string, userId = 'U0ANA') =>
  slack.pressOverHttp(url, PRESS_SIGNING_SECRET, { actionId: 'ack', value, userId }, { timestamp: seconds() });

/** The same runaway raised and sent in each organization: the Acknowledge value on each one's message. */
async function firingInBoth(): Promise<Record<'emea' | 'apac', string>> {
  const values: Record<string, string> = {};
  for (const [id, o] of orgs) {
    await raiseAlerts(o, { kinds: ['usage.runaway'], observations: [runawayObservation('k1')] }, routes, clock.now());
    await deliverNotifications(o, { buttons: true });
    const blocks = slack.calls.filter((c) => c.method === 'chat.postMessage').at(-1)?.args.blocks as Array<{
      elements?: Array<{ action_id?: string; value?: string }>;
    }>;
    const ack = blocks.flatMap((b) => b.elements ?? []).find((e) => e.action_id === 'ack');
    if (ack?.value === undefined) throw new Error(`no Acknowledge button for ${id}`);
    values[id] = ack.value;
  }
  return values as Record<'emea' | 'apac', string>;
}

const acknowledgedBy = async (id: string) =>
  (await org(id).db.selectFrom('alerts').select(['id', 'acknowledged_by']).executeTakeFirstOrThrow()).acknowledged_by;

const slackAudit = (id: string) =>
  org(id)
    .db.selectFrom('audit_log')
    .select(['action', 'step', 'subject_id', 'details'])
    .where('action', 'like', 'slack.%')
    .orderBy('id')
    .execute();

describe('Slack buttons across several organizations', () => {
  it("a value names its organization; B's press acts on B's alert, not on A's alert of the same ids", async () => {
    const values = await firingInBoth();
    expect(values.emea).toMatch(/^emea\.[0-9a-f-]{36}$/);
    expect(values.apac).toMatch(/^apac\.[0-9a-f-]{36}$/);
    // each schema numbers its own alerts: the two alerts have the same id; now their buttons get one row id too
    const emeaAlert = await org('emea').db.selectFrom('alerts').select('id').executeTakeFirstOrThrow();
    const apacAlert = await org('apac').db.selectFrom('alerts').select('id').executeTakeFirstOrThrow();
    expect(apacAlert.id).toBe(emeaAlert.id);
    const shared = values.emea.slice('emea.'.length);
    await org('apac')
      .db.updateTable('slack_buttons')
      .set({ id: shared })
      .where('id', '=', values.apac.slice('apac.'.length))
      .execute();

    expect((await pressOverHttp(`apac.${shared}`)).status).toBe(200);
    expect(await acknowledgedBy('apac')).toBe('U0ANA');
    expect(await acknowledgedBy('emea')).toBeNull();
    expect((await slackAudit('apac')).map((a) => [a.action, a.step, a.details.outcome ?? null])).toEqual([
      ['slack.ack', 'intent', null],
      ['slack.ack', 'done', 'acknowledged'],
    ]);
    expect(await slackAudit('emea')).toEqual([]);
    const update = slack.calls.find((c) => c.method === 'chat.update');
    expect(JSON.stringify(update?.args.blocks)).toContain('[APAC]');

    // over Socket Mode too, for A's own value
    await slack.pressOverSocket({ actionId: 'ack', value: values.emea, userId: 'U0BEN' });
    await waitUntil('emea acknowledged', async () => (await acknowledgedBy('emea')) === 'U0BEN', 20_000);
    expect(await acknowledgedBy('apac')).toBe('U0ANA');
  });

  it('a bare row id, or one naming an unknown organization, names nothing: 400, audited in the first organization, nothing changed', async () => {
    const values = await firingInBoth();
    const row = values.emea.slice('emea.'.length);
    for (const value of [row, `nowhere.${row}`, `.${row}`, `apac.${row}`, 'emea.', 'emea']) {
      const r = await pressOverHttp(value);
      expect(r.status, value).toBe(400);
      expect(r.text).toBe('the button names nothing this keywarden knows\n');
    }
    expect(await acknowledgedBy('emea')).toBeNull();
    expect(await acknowledgedBy('apac')).toBeNull();
    const emea = await slackAudit('emea');
    const apac = await slackAudit('apac');
    // `apac.<emea's row>` went to apac and found nothing there; the rest name no organization: the first's log
    expect(apac.filter((a) => a.step === 'failed').map((a) => [a.subject_id, a.details.outcome])).toEqual([
      ['none', 'names_nothing'],
    ]);
    expect(emea.filter((a) => a.step === 'failed').map((a) => [a.subject_id, a.details.outcome])).toEqual(
      Array.from({ length: 5 }, () => ['none', 'names_nothing']),
    );
  });

  it("each organization's own slack_actions decides who may press", async () => {
    const values = await firingInBoth();
    org('emea').config = pressConfig({ allow: { acknowledge: ['U0BOSS'] } });
    expect((await pressOverHttp(values.emea)).status).toBe(200);
    expect(await acknowledgedBy('emea')).toBeNull();
    expect(String(slack.responses.at(-1)?.body.text)).toContain('not allowed');
    expect((await pressOverHttp(values.apac)).status).toBe(200);
    expect(await acknowledgedBy('apac')).toBe('U0ANA');
  });
});
