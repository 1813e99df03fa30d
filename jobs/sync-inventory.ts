import { z } from 'zod';
import { planInventory } from '../src/inventory/plan.ts';
import { readInventory } from '../src/inventory/read.ts';
import { applyInventory, loadKnownInventory } from '../src/inventory/store.ts';
import { defineJob } from './define.ts';

/** Workspaces (archived too), users and API keys (every status) into Postgres, with every status change dated. */
export const syncInventory = defineJob({
  name: 'sync-inventory',
  queue: 'ingest',
  schedule: '*/10 * * * *',
  payload: z.object({}),
  async handler(ctx) {
    const snapshot = await readInventory(ctx.admin, ctx.signal);
    const known = await loadKnownInventory(ctx.db);
    const changes = planInventory(known, snapshot);
    await applyInventory(ctx.db, snapshot, changes, ctx.clock.now());
    const summary = {
      workspaces: snapshot.workspaces.length,
      users: snapshot.users.length,
      keys: snapshot.keys.length,
      statusChanges: changes.statusChanges.length,
      usersLeft: changes.usersLeft,
      keysGone: changes.keysGone,
      orphanedKeys: changes.orphanedKeys.map((o) => o.keyId),
    };
    ctx.log.info(summary, 'inventory synced');
    return summary;
  },
});
