import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { enforceRotation } from '../../src/rotation/enforce.ts';
import { PRICE_TABLE } from '../../src/usage/core/prices.ts';
import { pollUsage } from '../../src/usage/ingest.ts';
import { testJobContext, usageContext } from '../support/context.ts';
import { DEMO_ADMIN_KEY, keyIdByName, keyNameById, useDemoOrg } from '../support/demo-org.ts';

const dir = mkdtempSync(join(tmpdir(), 'kw-rotation-'));

function policy(name: string, enforce: boolean): Config {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    `rotation: { enforce: ${enforce}, grace_days: 0 }
routes:
  - { match: { kind: "rotation.*" }, slack: ["#security"], email: ["key_owner", "security@acme.example"] }
`,
  );
  return loadConfig({ env: { KEYWARDEN_CONFIG: path } });
}

const org = useDemoOrg();
const clock = org.clock;

/** A job context on the demo organization with the given policy. */
const contextWith = (config: Config) =>
  testJobContext({ db: org.t.db, emulatorUrl: org.emulator.url, adminKey: DEMO_ADMIN_KEY, clock, config });

/** One poll of the usage, as poll-usage runs it, to the clock's now. */
const pollOnce = (ctx: ReturnType<typeof testJobContext>['ctx']) =>
  pollUsage(usageContext(org.t.db, ctx.admin, clock), {
    overlapMinutes: 15,
    freshnessMinutes: 1,
    firstPollHours: 48,
    table: PRICE_TABLE,
  });

async function emulatorStatuses(ctx: ReturnType<typeof testJobContext>['ctx']) {
  return Object.fromEntries((await ctx.admin.listApiKeys({}).toArray()).map((k) => [k.name, k.status]));
}

describe('enforce-rotation against the emulator', () => {
  it('reminds once per stage across re-runs, and with enforce: false changes nothing in the organization', async () => {
    const env = contextWith(policy('dry', false));
    try {
      await syncInventory.handler(env.ctx, {});
      const before = await emulatorStatuses(env.ctx);
      const first = await enforceRotation(env.ctx);
      expect(first.reminders).toBeGreaterThan(0);
      const notificationsAfterFirst = await org.t.db
        .selectFrom('notifications')
        .select(['fingerprint', 'event', 'target'])
        .execute();
      expect(notificationsAfterFirst.length).toBeGreaterThan(0);

      // a re-run, and a run the next day ("after a restart"): no stage is sent again
      const again = await enforceRotation(env.ctx);
      expect(again.reminders).toBe(0);
      clock.advance(86_400_000);
      await enforceRotation(env.ctx);
      const stages = await org.t.db.selectFrom('rotation_reminders').select(['api_key_id', 'stage']).execute();
      expect(new Set(stages.map((s) => `${s.api_key_id}/${s.stage}`)).size).toBe(stages.length);
      const firings = await org.t.db
        .selectFrom('notifications')
        .select(['fingerprint', 'target'])
        .where('event', '=', 'firing')
        .execute();
      expect(new Set(firings.map((n) => `${n.fingerprint}/${n.target}`)).size).toBe(firings.length);

      // the overdue keys of the demo were reported, and an overdue key whose owner left went to security with that fact
      const overdue = await org.t.db
        .selectFrom('alerts')
        .select(['title', 'details'])
        .where('kind', '=', 'rotation.overdue')
        .execute();
      expect(overdue.map((a) => a.title)).toContain('API key "Research notebook" is past its rotation deadline');
      const messages = await org.t.db.selectFrom('notifications').select('payload').execute();
      const overdueText = JSON.stringify(
        messages.filter((m) => JSON.stringify(m.payload).includes('rotation.overdue')),
      );
      expect(overdueText).toMatch(/enforcement is off \(rotation\.enforce: false\), so keywarden will only report/);
      expect(overdueText).toMatch(/security, please find it an owner/); // Research notebook's creator left
      // with enforce: false: nothing was set inactive, and every message says what would be done
      expect(await emulatorStatuses(env.ctx)).toEqual(before);
      expect(await org.t.db.selectFrom('audit_log').selectAll().execute()).toEqual([]);
    } finally {
      await env.close();
    }
  });

  it('with enforce: true, holds while usage is unknown, then retires only drained keys and reports the busy ones', async () => {
    const env = contextWith(policy('enforce', true));
    try {
      const before = await emulatorStatuses(env.ctx);
      const held = await enforceRotation(env.ctx);
      expect(held.deactivated).toEqual([]); // no usage data yet: nothing can be judged drained
      expect(await emulatorStatuses(env.ctx)).toEqual(before);

      await pollOnce(env.ctx);
      // a day after the start the migration to "Production Backend v2" is done, but the old key was used within 24 h
      const busy = await enforceRotation(env.ctx);
      expect(busy.deactivated).toEqual([]);
      const blocked = await org.t.db
        .selectFrom('alerts')
        .select(['title', 'details'])
        .where('kind', '=', 'rotation.blocked')
        .execute();
      expect(blocked.map((b) => b.title)).toContain('Overdue API key "Production Backend" still carries traffic');
      expect(await emulatorStatuses(env.ctx)).toEqual(before);

      // 36 h after the start its traffic has been zero for a whole drain window: it is retired, the others are not
      clock.advance(12 * 3_600_000);
      await pollOnce(env.ctx);
      const run = await enforceRotation(env.ctx);
      const after = await emulatorStatuses(env.ctx);
      const names = await Promise.all(run.deactivated.map(async (id) => keyNameById(org.t.db, id)));
      expect(names).toEqual(['Production Backend']);
      expect(after).toEqual({ ...before, 'Production Backend': 'inactive' });
      const windowStart = new Date(clock.now().getTime() - 24 * 3_600_000);
      const used = await org.t.db
        .selectFrom('usage_buckets')
        .select('api_key_id')
        .where('api_key_id', '=', run.deactivated[0]!)
        .where('starting_at', '>=', windowStart)
        .execute();
      expect(used).toEqual([]);
      const deactivatedAlert = await org.t.db
        .selectFrom('alerts')
        .select('title')
        .where('kind', '=', 'rotation.deactivated')
        .execute();
      expect(deactivatedAlert.map((a) => a.title)).toEqual(['API key "Production Backend" was set inactive']);
      // every deactivation is bracketed in the audit log
      const steps = await org.t.db.selectFrom('audit_log').select(['subject_id', 'step']).orderBy('id').execute();
      expect(steps.filter((s) => s.step === 'intent').length).toBe(run.deactivated.length);
      expect(steps.filter((s) => s.step === 'done').length).toBe(run.deactivated.length);
    } finally {
      await env.close();
    }
  });

  it('two enforcement runs at once (the worker and an operator): one runs, the other says so and changes nothing', async () => {
    const worker = contextWith(policy('enforce', true));
    const operator = contextWith(policy('enforce', true));
    try {
      // the drained key back in service (an outside change), overdue and drained again
      const id = await keyIdByName(org.t.db, 'Production Backend');
      await worker.ctx.admin.updateApiKey(id, { status: 'active' });
      await syncInventory.handler(worker.ctx, {});
      const auditBefore = (await org.t.db.selectFrom('audit_log').select('id').execute()).length;

      const runs = await Promise.all([enforceRotation(worker.ctx), enforceRotation(operator.ctx)]);
      const steps = (
        await org.t.db.selectFrom('audit_log').select(['subject_id', 'step']).orderBy('id').execute()
      ).slice(auditBefore);
      expect(steps.filter((s) => s.subject_id === id && s.step === 'intent')).toHaveLength(1);
      expect(runs.flatMap((r) => r.deactivated)).toEqual([id]);
      expect(runs.map((r) => r.skipped ?? 'ran').sort()).toEqual([
        'another enforce-rotation run is changing key statuses (advisory lock keywarden.key-status); nothing done',
        'ran',
      ]);
      expect((await worker.ctx.admin.getApiKey(id)).status).toBe('inactive');
    } finally {
      await worker.close();
      await operator.close();
    }
  });

  it('right before a deactivation, the key is read from the Admin API: traffic the stored usage lacks blocks it', async () => {
    const env = contextWith(policy('enforce', true));
    try {
      await pollOnce(env.ctx);
      // the stored usage of a busy overdue key is missing (a re-read that never came, a report that dropped it)
      const id = await keyIdByName(org.t.db, 'Legacy integration');
      await org.t.db.deleteFrom('usage_buckets').where('api_key_id', '=', id).execute();
      const run = await enforceRotation(env.ctx);
      expect(run.deactivated).not.toContain(id);
      expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
      const blocked = await org.t.db
        .selectFrom('alerts')
        .select(['title', 'state'])
        .where('kind', '=', 'rotation.blocked')
        .where('scope_id', '=', id)
        .execute();
      expect(blocked).toEqual([
        { title: 'Overdue API key "Legacy integration" still carries traffic', state: 'firing' },
      ]);
      const intents = await org.t.db.selectFrom('audit_log').select('id').where('subject_id', '=', id).execute();
      expect(intents).toEqual([]);
    } finally {
      await env.close();
    }
  });
});
