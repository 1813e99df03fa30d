import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { fixedClock } from '../../src/clock.ts';
import { DEFAULT_EMULATOR_ADMIN_KEY, loadScenario, parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { DEMO_ADMIN_KEY, DEMO_START, useDemoOrg } from '../support/demo-org.ts';

// The API answering in classic shapes whatever the version: keys whose identity is not reported (the orphan path)
const org = useDemoOrg('classic');
const clock = org.clock;
// examples/keywarden.yaml also names keys the demo organization lacks (keywarden.policy_unmatched, tested below)
const notificationsOf = (kind: string) =>
  org.t.db.selectFrom('notifications').where(sql<string>`payload->'notification'->>'kind'`, '=', kind);
const orphanNotifications = () => notificationsOf('key.orphaned');

describe('sync-inventory against the emulator', () => {
  it('stores workspaces (archived too), users and keys of every status, and notices what changed', async () => {
    const { ctx, close } = testJobContext({
      db: org.t.db,
      emulatorUrl: org.emulator.url,
      adminKey: DEMO_ADMIN_KEY,
      clock,
    });
    try {
      const first = (await syncInventory.handler(ctx, {})) as Record<string, unknown>;
      const keys = await org.t.db.selectFrom('api_keys').selectAll().execute();
      const workspaces = await org.t.db.selectFrom('workspaces').selectAll().execute();
      expect(keys.length).toBe(first.keys);
      expect(new Set(keys.map((k) => k.status))).toEqual(new Set(['active', 'inactive', 'expired', 'archived']));
      expect(workspaces.some((w) => w.archived_at !== null)).toBe(true);
      // classic shapes carry no principal: who is behind the keys is unknown, not "nobody" (no legacy findings)
      expect(new Set(keys.map((k) => k.identity))).toEqual(new Set(['unknown']));
      // the demo's orphan: "Research notebook", made by a user removed before the start
      const orphan = keys.find((k) => k.name === 'Research notebook')!;
      expect(first.orphanedKeys).toContain(orphan.id);
      // …and raised as key.orphaned, once, with one outbox row for its route (examples/keywarden.yaml: "*" → #ai-alerts)
      const orphanAlerts = await org.t.db.selectFrom('alerts').selectAll().where('kind', '=', 'key.orphaned').execute();
      expect(orphanAlerts.map((a) => [a.scope_id, a.state])).toEqual([[orphan.id, 'firing']]);
      expect(await orphanNotifications().select(['event', 'channel', 'target']).execute()).toEqual([
        { event: 'firing', channel: 'slack', target: '#ai-alerts' },
      ]);
      // every key's first sighting is recorded once
      const firstSeen = await org.t.db.selectFrom('api_key_status_changes').selectAll().execute();
      expect(firstSeen).toHaveLength(keys.length);

      // a second sync with nothing changed records nothing new
      await syncInventory.handler(ctx, {});
      expect(await org.t.db.selectFrom('api_key_status_changes').selectAll().execute()).toHaveLength(keys.length);

      // a key set inactive outside keywarden (in the Console) is recorded as an outside change
      const target = keys.find((k) => k.name === 'Support bot')!;
      await ctx.admin.updateApiKey(target.id, { status: 'inactive' });
      clock.advance(60_000);
      const third = (await syncInventory.handler(ctx, {})) as Record<string, unknown>;
      expect(third.statusChanges).toBe(1);
      const change = await org.t.db
        .selectFrom('api_key_status_changes')
        .selectAll()
        .where('api_key_id', '=', target.id)
        .where('from_status', '=', 'active')
        .executeTakeFirstOrThrow();
      expect(change).toMatchObject({ to_status: 'inactive', source: 'outside' });
      const stored = await org.t.db
        .selectFrom('api_keys')
        .selectAll()
        .where('id', '=', target.id)
        .executeTakeFirstOrThrow();
      expect(stored.status).toBe('inactive');
      expect(stored.status_changed_at?.getTime()).toBe(clock.now().getTime());
      // nothing new was said about the orphan across the re-syncs; retiring it resolves the alert, said once
      expect(await orphanNotifications().selectAll().execute()).toHaveLength(1);
      await ctx.admin.updateApiKey(orphan.id, { status: 'inactive' });
      clock.advance(60_000);
      await syncInventory.handler(ctx, {});
      await syncInventory.handler(ctx, {});
      const resolved = await org.t.db
        .selectFrom('alerts')
        .selectAll()
        .where('kind', '=', 'key.orphaned')
        .executeTakeFirstOrThrow();
      expect(resolved.state).toBe('resolved');
      expect((await orphanNotifications().select('event').orderBy('id').execute()).map((n) => n.event)).toEqual([
        'firing',
        'resolved',
      ]);
    } finally {
      await close();
    }
  });

  it('raises keywarden.policy_unmatched for each policy reference that names nothing, and when a rename breaks one', async () => {
    const { ctx, close } = testJobContext({
      db: org.t.db,
      emulatorUrl: org.emulator.url,
      adminKey: DEMO_ADMIN_KEY,
      clock,
    });
    const unmatched = async () =>
      (
        await org.t.db
          .selectFrom('alerts')
          .select(['scope_id', 'state'])
          .where('kind', '=', 'keywarden.policy_unmatched')
          .orderBy('scope_id')
          .execute()
      ).map((a) => `${a.scope_id} ${a.state}`);
    const chatbot = org.emulator.state.workspaces.find((w) => w.name === 'Customer chatbot')!;
    try {
      clock.advance(60_000);
      await syncInventory.handler(ctx, {});
      // examples/keywarden.yaml: no demo key matches ci-* (the demo's is "CI runner") or the exemption's id
      expect(await unmatched()).toEqual(['rotation.exemptions[0].key firing', 'rotation.overrides[1].key firing']);
      // the workspace is renamed in the Console: its spend limit names nothing any more, and that is said
      chatbot.name = 'Chatbot';
      clock.advance(60_000);
      await syncInventory.handler(ctx, {});
      expect(await unmatched()).toEqual([
        'rotation.exemptions[0].key firing',
        'rotation.overrides[1].key firing',
        'spend.limits.workspaces["Customer chatbot"] firing',
      ]);
      const sent = await notificationsOf('keywarden.policy_unmatched').select(['event', 'target']).execute();
      expect(sent.filter((n) => n.target === '#ops').map((n) => n.event)).toEqual(['firing', 'firing']);
      // renamed back: resolved
      chatbot.name = 'Customer chatbot';
      clock.advance(60_000);
      await syncInventory.handler(ctx, {});
      expect(await unmatched()).toContain('spend.limits.workspaces["Customer chatbot"] resolved');
    } finally {
      chatbot.name = 'Customer chatbot';
      await close();
    }
  });
});

describe('sync-inventory through the default client, the demo served by version', () => {
  const clock = fixedClock(DEMO_START);
  let t: TestDatabase;
  let emulator: Emulator;
  beforeAll(async () => {
    t = await createTestDatabase();
    emulator = await startEmulator({ scenario: loadScenario('demo'), clock, startAt: DEMO_START });
  });
  afterAll(async () => {
    await emulator.close();
    await t.drop();
  });

  it('reads the keys in the shapes that carry their principal: a personal key is classified personal', async () => {
    const { ctx, close } = testJobContext({ db: t.db, emulatorUrl: emulator.url, adminKey: DEMO_ADMIN_KEY, clock });
    try {
      await syncInventory.handler(ctx, {});
      const stored = await t.db.selectFrom('api_keys').select(['name', 'identity', 'workspace_id']).execute();
      const byName = Object.fromEntries(stored.map((k) => [k.name, k]));
      expect(byName['Data labeling batch']?.identity).toBe('personal');
      expect(byName['Research notebook']?.identity).toBe('personal');
      expect(byName['Production Backend']?.identity).toBe('service_account');
      expect(byName['Legacy integration']?.identity).toBe('legacy');
      // the Default Workspace's real id from the 2026 `scope` is still kept as null
      expect(byName['Legacy integration']?.workspace_id).toBeNull();
    } finally {
      await close();
    }
  });
});

describe('sync-inventory with a NUL byte in organization-controlled names', () => {
  // Postgres refuses U+0000 in text and jsonb; the Admin API lets a name hold one.
  const scenario = parseScenario({
    name: 'nul-names',
    organization: { name: 'Acme\u0000 AI' },
    workspaces: [{ name: 'Re\u0000search' }],
    users: [{ name: 'Ana\u0000', email: 'ana@acme.example', role: 'developer' }],
    keys: [
      { name: 'ci-\u0000runner', workspace: 'Re\u0000search', created_by: 'ana@acme.example' },
      { name: 'plain key', workspace: 'Re\u0000search', created_by: 'ana@acme.example' },
    ],
  });
  const clock = fixedClock(DEMO_START);
  let t: TestDatabase;
  let emulator: Emulator;
  beforeAll(async () => {
    t = await createTestDatabase();
    emulator = await startEmulator({ scenario, clock, startAt: DEMO_START });
  });
  afterAll(async () => {
    await emulator.close();
    await t.drop();
  });

  it('stores the names with U+FFFD in place of the NUL, and the sync succeeds', async () => {
    const { ctx, close } = testJobContext({
      db: t.db,
      emulatorUrl: emulator.url,
      adminKey: DEFAULT_EMULATOR_ADMIN_KEY,
      clock,
    });
    try {
      const summary = (await syncInventory.handler(ctx, {})) as Record<string, unknown>;
      expect(summary.keys).toBe(2);
      const keys = await t.db.selectFrom('api_keys').select('name').orderBy('name').execute();
      expect(keys.map((k) => k.name)).toEqual(['ci-\uFFFDrunner', 'plain key']);
      const workspaces = await t.db.selectFrom('workspaces').select('name').execute();
      expect(workspaces.map((w) => w.name)).toEqual(['Re\uFFFDsearch']);
      const users = await t.db.selectFrom('users').select('name').execute();
      expect(users.map((u) => u.name)).toEqual(['Ana\uFFFD']);
      const org = await t.db.selectFrom('organizations').select('name').executeTakeFirstOrThrow();
      expect(org.name).toBe('Acme\uFFFD AI');
    } finally {
      await close();
    }
  });
});
