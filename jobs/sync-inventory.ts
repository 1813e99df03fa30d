import { z } from 'zod';
import { raiseAlerts } from '../src/alerts/store.ts';
import { orphanObservations } from '../src/inventory/core/orphans.ts';
import { planInventory } from '../src/inventory/core/plan.ts';
import { POLICY_UNMATCHED_KIND, policyReferenceObservations } from '../src/inventory/core/references.ts';
import { readInventory } from '../src/inventory/read.ts';
import { applyInventory, loadKnownInventory } from '../src/inventory/store.ts';
import { defineJob } from '../src/queue/define.ts';

/**
 * Workspaces (archived too), users and API keys (every status) into Postgres, with every status change dated;
 * raises `key.orphaned` for active keys whose creator left, and `keywarden.policy_unmatched` for policy references
 * that name no key or workspace.
 */
export const syncInventory = defineJob({
  name: 'sync-inventory',
  queue: 'ingest',
  schedule: '*/10 * * * *',
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    const snapshot = await readInventory(ctx.admin, ctx.signal);
    const known = await loadKnownInventory(ctx.db);
    const changes = planInventory(known, snapshot);
    await applyInventory(ctx.db, snapshot, changes, ctx.clock.now());
    const alerts = await raiseAlerts(
      ctx.db,
      {
        kinds: ['key.orphaned', POLICY_UNMATCHED_KIND],
        observations: [
          ...orphanObservations(snapshot, changes),
          ...policyReferenceObservations(ctx.config.policy, snapshot),
        ],
      },
      ctx.config.policy.routes,
      ctx.clock.now(),
    );
    const summary = {
      workspaces: snapshot.workspaces.length,
      users: snapshot.users.length,
      keys: snapshot.keys.length,
      statusChanges: changes.statusChanges.length,
      usersLeft: changes.usersLeft,
      keysGone: changes.keysGone,
      orphanedKeys: changes.orphanedKeys.map((o) => o.keyId),
      alerts: { fired: alerts.fired, resolved: alerts.resolved, notifications: alerts.notifications },
    };
    ctx.log.info(summary, 'inventory synced');
    return summary;
  },
});
