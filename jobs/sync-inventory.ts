import { z } from 'zod';
import { syncInventory as sync } from '../src/inventory/sync.ts';
import { defineJob } from '../src/queue/define.ts';

/**
 * Workspaces (archived too), users and API keys (every status) into Postgres, with every status change dated;
 * raises `key.orphaned` for active keys whose creator left, `key.identity` for keys whose identity is a risk
 * (personal keys with service traffic or a departed owner, legacy workspace keys, keys without expiry), and
 * `keywarden.policy_unmatched` for policy references that name no key or workspace.
 */
export const syncInventory = defineJob({
  name: 'sync-inventory',
  queue: 'ingest',
  schedule: '*/10 * * * *',
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    const summary = await sync(ctx);
    ctx.log.info(summary, 'inventory synced');
    return summary;
  },
});
