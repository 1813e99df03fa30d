import type { JobContext } from '../context.ts';
import type { InventorySnapshot } from './core/plan.ts';
import { storableSnapshot } from './core/text.ts';

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/**
 * Reads the whole organization, every page, with its names made storable (text.ts). The four lists are independent,
 * so they are read in parallel.
 */
export async function readInventory(ctx: Pick<JobContext, 'admin' | 'signal'>): Promise<InventorySnapshot> {
  const { admin, signal } = ctx;
  const [organization, workspaces, users, keys] = await Promise.all([
    admin.getOrganization({ signal }),
    all(admin.listWorkspaces({ includeArchived: true }, { signal })),
    all(admin.listUsers({}, { signal })),
    all(admin.listApiKeys({}, { signal })),
  ]);
  return storableSnapshot({ organization, workspaces, users, keys });
}
