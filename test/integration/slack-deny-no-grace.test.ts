import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { enforceRotation } from '../../src/rotation/enforce.ts';
import { PRICE_TABLE } from '../../src/usage/core/prices.ts';
import { pollUsage } from '../../src/usage/ingest.ts';
import { usageContext } from '../support/context.ts';
import { keyIdByName, useDemoOrg } from '../support/demo-org.ts';
import { type DemoPresses, newestButton, pressConfig, pressRoutes, startDemoPresses } from '../support/slack-press.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';

const SIGNING_SECRET = 'deny-no-grace-signing-secret-0123456789';
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
    rotation: { enforce: 'approve', grace_days: 0 },
    allow: { approve_deactivation: ['U0SEC'] },
    standInSecrets: false,
  });
  presses = await startDemoPresses({ org, slack, config, signingSecret: SIGNING_SECRET, socket: false });
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

const buttonOf = (keyId: string, choice: string) => newestButton(org.t.db, keyId, choice);

describe('rotation.enforce: approve with grace_days 0', () => {
  it('a Deny still waits a day, and the next ask is a new message with its own buttons', async () => {
    const id = await keyIdByName(org.t.db, 'Production Backend');
    const questions = async () =>
      (
        await org.t.db
          .selectFrom('alerts')
          .select(['state', 'started_at'])
          .where('kind', '=', 'rotation.approval_requested')
          .where('scope_id', '=', id)
          .orderBy('started_at', 'desc')
          .orderBy('id', 'desc')
          .execute()
      ).map((q) => `${q.state} from ${new Date(q.started_at).toISOString().slice(0, 13)}`);
    // the overdue notice, then 36 h later (its traffic moved to its successor a day ago) drained: asked at once
    await enforceRotation(env.ctx);
    org.clock.advance(36 * HOUR);
    await pollOnce();
    await enforceRotation(env.ctx);
    expect(await questions()).toEqual(['firing from 2026-11-17T22']);
    await deliverNotifications(ctx, { buttons: true });
    const deny = await buttonOf(id, 'deny:owner_away');
    await slack.pressOverHttp(
      url,
      SIGNING_SECRET,
      { actionId: 'deny', value: deny.value, userId: 'U0SEC', message: deny.message },
      { timestamp: Math.floor(org.clock.now().getTime() / 1000) },
    );
    const denial = await org.t.db
      .selectFrom('rotation_denials')
      .select(['denied_at', 'ask_again_at'])
      .where('api_key_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(new Date(denial.ask_again_at).getTime() - new Date(denial.denied_at).getTime()).toBe(24 * HOUR);
    expect(JSON.stringify(slack.calls.filter((c) => c.method === 'chat.update').at(-1)?.args.blocks)).toContain(
      'keywarden asks again from 2026-11-18',
    );

    // the next run: not asked again yet, so the answered question resolves
    org.clock.advance(HOUR);
    await pollOnce();
    await enforceRotation(env.ctx);
    expect(await questions()).toEqual(['resolved from 2026-11-17T22']);

    // a day after the Deny: asked again, a new question with its own message and buttons
    org.clock.advance(24 * HOUR);
    await pollOnce();
    await enforceRotation(env.ctx);
    expect((await questions()).at(0)).toBe('firing from 2026-11-18T23');
    await deliverNotifications(ctx, { buttons: true });
    const approve = await buttonOf(id, 'approve');
    expect(approve.message).not.toBe(deny.message);
    expect((await buttonOf(id, 'deny:owner_away')).value).not.toBe(deny.value);
  });
});
