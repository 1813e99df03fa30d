import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { setKeyStatus } from '../../src/rotation/set-status.ts';
import { keyIdByName, useDemoOrg } from '../support/demo-org.ts';
import { type DemoPresses, pressConfig, pressRoutes, startDemoPresses } from '../support/slack-press.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { waitUntil } from '../support/wait.ts';

const SIGNING_SECRET = 'reactivate-signing-secret-0123456789';
const org = useDemoOrg();
const routes = pressRoutes([{ match: { kind: 'rotation.*' }, slack: ['#security'] }]);

let env: DemoPresses['env'];
let slack: SlackServer;
let presses: DemoPresses;
let ctx: DemoPresses['ctx'];
let url: string;

beforeAll(async () => {
  slack = await startSlackServer();
  const config = pressConfig({ allow: { reactivate: ['U0SEC'] }, standInSecrets: false });
  presses = await startDemoPresses({ org, slack, config, signingSecret: SIGNING_SECRET });
  ({ env, ctx, url } = presses);
});

afterAll(async () => {
  await presses?.close();
  await slack?.close();
});

const statusUpdates = (id: string) =>
  org.emulator.requestLog.filter((r) => r.method === 'POST' && r.path.startsWith(`/v1/organizations/api_keys/${id}`));

describe('Reactivate, from a deactivation notice', () => {
  it('only for allowed users, once, through the Admin API and the audit log; over both transports', async () => {
    const id = await keyIdByName(org.t.db, 'Legacy integration');
    const deps = env.ctx;
    await setKeyStatus(deps, {
      keyId: id,
      to: 'inactive',
      action: 'api_key.deactivate',
      actor: 'keywarden:rotation',
      reason: 'overdue',
    });
    await raiseAlerts(
      ctx,
      {
        kinds: ['rotation.deactivated'],
        observations: [
          {
            kind: 'rotation.deactivated',
            severity: 'warning',
            scopeType: 'key',
            scopeId: id,
            workspaceId: null,
            period: '',
            title: 'Key "Legacy integration" was deactivated',
            details: {},
          },
        ],
      },
      routes,
      org.clock.now(),
    );
    await deliverNotifications(ctx, { buttons: true });
    // sync-inventory raised alerts of its own: the notice is the post that names the deactivation
    const post = slack.calls.find(
      (c) => c.method === 'chat.postMessage' && c.response?.ok && String(c.args.text).includes('was deactivated'),
    );
    const blocks = JSON.stringify(post?.args.blocks);
    expect(blocks).toContain('"action_id":"reactivate"');
    expect(blocks).not.toContain('"action_id":"ack"');
    const value = (
      await org.t.db
        .selectFrom('slack_buttons')
        .select('id')
        .where('choice', '=', 'reactivate')
        .executeTakeFirstOrThrow()
    ).id;
    const message = `${post?.response?.channel}:${post?.response?.ts}`;
    const updatesBefore = statusUpdates(id).length;
    const seconds = () => Math.floor(org.clock.now().getTime() / 1000);

    // not on the allow list (reactivate allows nobody by default): refused, no Admin API call
    const refused = await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'reactivate', value, userId: 'U0ANA', message },
      { timestamp: seconds() },
    );
    expect(refused.status).toBe(200);
    expect(String(slack.responses.at(-1)?.body.text)).toContain('slack_actions.allow.reactivate');
    expect(statusUpdates(id)).toHaveLength(updatesBefore);

    const pressed = await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'reactivate', value, userId: 'U0SEC', userName: 'sec', message },
      { timestamp: seconds() },
    );
    expect(pressed.status).toBe(200);
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
    expect(statusUpdates(id)).toHaveLength(updatesBefore + 1);
    const update = slack.calls.find((c) => c.method === 'chat.update');
    expect(JSON.stringify(update?.args.blocks)).toContain('Reactivated by <@U0SEC>');
    const audit = await org.t.db
      .selectFrom('audit_log')
      .select(['action', 'step', 'actor'])
      .where('actor', '=', 'slack:U0SEC')
      .orderBy('id')
      .execute();
    expect(audit.map((a) => `${a.action} ${a.step}`)).toEqual([
      'slack.reactivate intent',
      'api_key.reactivate intent',
      'api_key.reactivate done',
      'slack.reactivate done',
    ]);

    // pressed again over Socket Mode: the key is active, nothing more is asked of the API
    const responses = slack.responses.length;
    await slack.pressOverSocket({ actionId: 'reactivate', value, userId: 'U0SEC', message });
    await waitUntil('answered', () => slack.responses.length > responses, 20_000);
    expect(String(slack.responses.at(-1)?.body.text)).toContain('already active');
    expect(statusUpdates(id)).toHaveLength(updatesBefore + 1);
  });
});
