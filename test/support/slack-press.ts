import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { z } from 'zod';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { groupMembers } from '../../src/actions/groups.ts';
import type { ActionContext, PressReceiver } from '../../src/actions/handle.ts';
import { slackActionsEndpoint } from '../../src/actions/http.ts';
import { type SocketModeTransport, startSocketMode } from '../../src/actions/socket.ts';
import { AdminClient } from '../../src/anthropic/client.ts';
import { fixedClock } from '../../src/clock.ts';
import {
  type Config,
  DEFAULT_ORGANIZATION_ID,
  loadConfig,
  type RotationPolicy,
  type Route,
  type SlackActionsPolicy,
} from '../../src/config/index.ts';
import { policySchema } from '../../src/config/policy.ts';
import { Secret } from '../../src/config/secret.ts';
import type { Db } from '../../src/db/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import type { Scenario } from '../../src/emulator/scenario.ts';
import { startEmulator } from '../../src/emulator/server.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { type HealthServer, startHealthServer } from '../../src/http/server.ts';
import { STANDIN_APP_TOKEN } from '../../src/notify/dev/slack-standin.ts';
import type { PagerDutyClient } from '../../src/notify/pagerduty.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
import { captureLog, testJobContext } from './context.ts';
import { createTestDatabase, redisUrl } from './db.ts';
import { DEMO_ADMIN_KEY, DEMO_START, type useDemoOrg } from './demo-org.ts';
import type { SlackServer } from './slack-server.ts';
import { startSlackServer } from './slack-server.ts';

/**
 * The Slack button presses' test harnesses: the action context, the HTTP endpoint a press is signed for, and Socket
 * Mode against the Slack stand-in, built one way for every press test so that the tests differ only in what they press.
 */

/** The transports' view of one organization's action context: today's bare button values, all to `ctx`. */
export const oneOrganization = (ctx: ActionContext & { redis: Redis }): PressReceiver => ({
  targets: new Map([[DEFAULT_ORGANIZATION_ID, ctx]]),
  redis: ctx.redis,
  clock: ctx.clock,
  log: ctx.log,
});

const slackClientOf = (slack: SlackServer) =>
  createSlackClient({ token: new Secret(slack.token), apiUrl: slack.url, timeoutMs: 2000 });

/** Presses against the emulator's demo organization: what `startDemoPresses` returns. */
export interface DemoPresses {
  env: ReturnType<typeof testJobContext>;
  ctx: ActionContext & { redis: ReturnType<typeof testJobContext>['redis'] };
  /** The endpoint's address, for `slack.pressOverHttp`. */
  url: string;
  /** Stops the transports and the job context; the Slack stand-in is the caller's. */
  close(): Promise<void>;
}

/**
 * The action context over the demo organization (`org`, from useDemoOrg) with `config` and Slack (and PagerDuty
 * where given) as its notifier; the inventory synced unless `syncInventory` is false; the actions endpoint alone on
 * an ephemeral port, and Socket Mode connected unless `socket` is false. Call in beforeAll, close in afterAll.
 */
export async function startDemoPresses(opts: {
  org: ReturnType<typeof useDemoOrg>;
  slack: SlackServer;
  config: Config;
  signingSecret: string;
  pagerduty?: PagerDutyClient;
  syncInventory?: boolean;
  socket?: boolean;
}): Promise<DemoPresses> {
  const { org, slack } = opts;
  const slackClient = slackClientOf(slack);
  const env = testJobContext({
    db: org.t.db,
    emulatorUrl: org.emulator.url,
    adminKey: DEMO_ADMIN_KEY,
    clock: org.clock,
    config: opts.config,
    notifier: { slack: slackClient, email: null, pagerduty: opts.pagerduty, close: async () => {} },
  });
  if (opts.syncInventory !== false) await syncInventory.handler(env.ctx, {});
  const ctx = { ...env.ctx, redis: env.redis, groups: groupMembers(slackClient, org.clock, env.ctx.log) };
  const endpoint = slackActionsEndpoint(oneOrganization(ctx), new Secret(opts.signingSecret));
  const server = createServer((req, res) => void endpoint(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/actions`;
  let socket: SocketModeTransport | undefined;
  if (opts.socket !== false) {
    socket = startSocketMode(oneOrganization(ctx), { appToken: new Secret(STANDIN_APP_TOKEN), apiUrl: slack.url });
    await socket.connected;
  }
  return {
    env,
    ctx,
    url,
    close: async () => {
      await socket?.close();
      await new Promise((r) => server.close(r));
      await env.close();
    },
  };
}

/** Presses on a Claude Enterprise organization's increase requests: what `startIncreasePresses` returns. */
export interface IncreasePresses extends DemoPresses {
  org: ReturnType<typeof useDemoOrg>;
  slack: SlackServer;
  /** The scenario's increase requests as the Admin API lists them, with the member who asked. */
  requests: Array<{ email: string; id: string; userId: string }>;
}

/**
 * The presses harness over `scenario` (an Enterprise one, on the emulator at the demo's start, its own database and
 * Slack stand-in), `spend.*` routed to #finance, Slack actions enabled for `allow`. Call in beforeAll; `close()`
 * stops and drops everything it started.
 */
export async function startIncreasePresses(
  scenario: Scenario,
  allow: Partial<SlackActionsPolicy['allow']>,
  signingSecret: string,
): Promise<IncreasePresses> {
  const clock = fixedClock(DEMO_START);
  const org = {
    clock,
    t: await createTestDatabase(),
    emulator: await startEmulator({ scenario, clock, startAt: DEMO_START }),
  } satisfies ReturnType<typeof useDemoOrg>;
  const slack = await startSlackServer();
  const config = pressConfig({
    routes: pressRoutes([{ match: { kind: 'spend.*' }, slack: ['#finance'] }]),
    allow,
    standInSecrets: false,
  });
  const presses = await startDemoPresses({ org, slack, config, signingSecret });
  const requests = (await presses.ctx.admin.listIncreaseRequests().toArray()).map((r) => ({
    email: r.requester.type === 'user' ? String(r.requester.email) : '',
    id: r.id,
    userId: r.requester.type === 'user' ? r.requester.userId : '',
  }));
  return {
    ...presses,
    org,
    slack,
    requests,
    close: async () => {
      await presses.close();
      await slack.close();
      await org.emulator.close();
      await org.t.drop();
    },
  };
}

/** The audited outcomes of the presses of `action` by `actor` (`slack:U…`), oldest first. */
export async function pressOutcomes(db: Db, action: string, actor: string): Promise<string[]> {
  const rows = await db
    .selectFrom('audit_log')
    .select('details')
    .where('action', '=', action)
    .where('actor', '=', actor)
    .where('step', '!=', 'intent')
    .orderBy('id')
    .execute();
  return rows.map((r) => String((r.details as { outcome?: string }).outcome));
}

/** The newest button row of `choice` on the newest message about the key, and that message's channel:ts. */
export async function newestButton(db: Db, keyId: string, choice: string): Promise<{ value: string; message: string }> {
  const row = await db
    .selectFrom('slack_buttons')
    .innerJoin('alerts', 'alerts.id', 'slack_buttons.alert_id')
    .innerJoin('notifications', 'notifications.id', 'slack_buttons.notification_id')
    .select(['slack_buttons.id', 'notifications.provider_id'])
    .where('alerts.scope_id', '=', keyId)
    .where('slack_buttons.choice', '=', choice)
    .orderBy('slack_buttons.created_at', 'desc')
    .orderBy('notifications.id', 'desc')
    .executeTakeFirstOrThrow();
  return { value: row.id, message: String(row.provider_id) };
}

/** The signing secret the health-server presses are signed with. */
export const PRESS_SIGNING_SECRET = 'standin-signing-secret-0123456789abcdef';

const exampleConfig = loadConfig({ env: { KEYWARDEN_CONFIG: 'examples/keywarden.yaml' } });

/** The policy's `routes` from their YAML shape, parsed (defaults filled in) as the policy file's would be. */
export const pressRoutes = (routes: NonNullable<z.input<typeof policySchema>>['routes']): Route[] =>
  policySchema.parse({ routes }).routes;

/**
 * examples/keywarden.yaml as a press test runs it: Slack actions `enabled` (default true) for `allow` over the
 * example's allow-list; `routes` and the `rotation` fields given in place of the example's; and, unless
 * `standInSecrets` is false, the stand-in's signing secret and app token in the environment (the transports and the
 * buttons read them there; the demo harnesses are handed their signing secret instead).
 */
export function pressConfig(
  opts: {
    allow?: Partial<SlackActionsPolicy['allow']>;
    enabled?: boolean;
    routes?: Route[];
    rotation?: Partial<RotationPolicy>;
    standInSecrets?: boolean;
  } = {},
): Config {
  const { policy, env } = exampleConfig;
  return {
    ...exampleConfig,
    env:
      opts.standInSecrets === false
        ? env
        : {
            ...env,
            slackSigningSecret: new Secret(PRESS_SIGNING_SECRET),
            slackAppToken: new Secret(STANDIN_APP_TOKEN),
          },
    policy: {
      ...policy,
      rotation: { ...policy.rotation, ...opts.rotation },
      routes: opts.routes ?? policy.routes,
      slack_actions: { enabled: opts.enabled ?? true, allow: { ...policy.slack_actions.allow, ...opts.allow } },
    },
  };
}

/** Presses on the worker's own health server, without an Admin API: what `startHealthPresses` returns. */
export interface HealthPresses {
  db: Db;
  slack: SlackServer;
  redis: Redis;
  http: HealthServer;
  clock: ReturnType<typeof fixedClock>;
  /** One object: the endpoint and the socket read its config at each press, so a test may replace it. */
  ctx: ActionContext & { redis: Redis };
  logLines: string[];
  close(): Promise<void>;
}

/**
 * A fresh database, the Slack stand-in with `usergroups`, Redis, a fixed clock at now, and the action context with
 * `config`; the presses arrive on the health server's /slack/actions and over Socket Mode, both connected. The
 * Admin API is an address nothing listens on: nothing these presses do calls it.
 */
export async function startHealthPresses(opts: {
  usergroups: Record<string, string[]>;
  config: Config;
}): Promise<HealthPresses> {
  const [tdb, slack] = await Promise.all([createTestDatabase(), startSlackServer({ usergroups: opts.usergroups })]);
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const clock = fixedClock(new Date());
  const captured = captureLog();
  const slackClient = slackClientOf(slack);
  const ctx = {
    config: opts.config,
    repos: createRepos(tdb.db),
    admin: new AdminClient({
      baseUrl: 'http://127.0.0.1:9',
      adminKey: new Secret('sk-ant-admin01-unused-0000'),
      log: captured.log,
      clock,
    }),
    redis,
    notifier: { slack: slackClient, email: null, close: async () => {} },
    clock,
    log: captured.log,
    groups: groupMembers(slackClient, clock, captured.log),
  };
  const http = await startHealthServer({
    port: 0,
    host: '127.0.0.1',
    db: tdb.db,
    redis,
    metrics: createMetrics(createRepos(tdb.db)),
    log: captured.log,
    slackActions: slackActionsEndpoint(oneOrganization(ctx), new Secret(PRESS_SIGNING_SECRET)),
  });
  const socket = startSocketMode(oneOrganization(ctx), { appToken: new Secret(STANDIN_APP_TOKEN), apiUrl: slack.url });
  await socket.connected;
  await slack.socketConnected();
  return {
    db: tdb.db,
    slack,
    redis,
    http,
    clock,
    ctx,
    logLines: captured.lines,
    close: async () => {
      await socket.close();
      await http.close();
      await redis.quit();
      await Promise.all([tdb.drop(), slack.close()]);
    },
  };
}
