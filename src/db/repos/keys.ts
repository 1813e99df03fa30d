import type { Db } from '../index.ts';

/** `api_keys` and `workspaces` as the inventory stored them. */
export function keysRepo(db: Db) {
  return {
    /** Every stored workspace's name, by id. */
    async workspaceNames(): Promise<Map<string, string>> {
      const rows = await db.selectFrom('workspaces').select(['id', 'name']).execute();
      return new Map(rows.map((w) => [w.id, w.name]));
    },

    /**
     * Every stored key's name and place, by id: `scope` is `organization` for a key in no workspace (its usage rows
     * say no workspace, as the Default Workspace's do) and `workspace` otherwise.
     */
    async keyPlaces(): Promise<Map<string, { name: string; workspaceId: string | null; scope: string }>> {
      const rows = await db.selectFrom('api_keys').select(['id', 'name', 'workspace_id', 'scope_type']).execute();
      return new Map(rows.map((k) => [k.id, { name: k.name, workspaceId: k.workspace_id, scope: k.scope_type }]));
    },
  };
}
