import type { Db } from '../index.ts';

/** A key as the inventory stores it, with its workspace's name (null: the Default Workspace, or no workspace). */
interface KeyWithWorkspace {
  id: string;
  name: string;
  status: string;
  partialKeyHint: string | null;
  workspaceId: string | null;
  workspaceName: string | null;
  scopeType: string;
  createdAt: Date;
}

/**
 * The inventory's tables (organizations, workspaces, users, api_keys) as sync-inventory stores them, and what is kept
 * per key (rotation_state).
 */
export function keysRepo(db: Db) {
  return {
    /** The keys among `ids` the inventory knows, with their workspace's name. */
    async withWorkspace(ids: readonly string[]): Promise<KeyWithWorkspace[]> {
      if (ids.length === 0) return [];
      const rows = await db
        .selectFrom('api_keys')
        .leftJoin('workspaces', 'workspaces.id', 'api_keys.workspace_id')
        .select([
          'api_keys.id',
          'api_keys.name',
          'api_keys.status',
          'api_keys.partial_key_hint',
          'api_keys.workspace_id',
          'api_keys.scope_type',
          'api_keys.created_at',
          'workspaces.name as workspace_name',
        ])
        .where('api_keys.id', 'in', [...ids])
        .execute();
      return rows.map((r) => ({
        id: r.id,
        name: r.name,
        status: r.status,
        partialKeyHint: r.partial_key_hint,
        workspaceId: r.workspace_id,
        workspaceName: r.workspace_name,
        scopeType: r.scope_type,
        createdAt: new Date(r.created_at),
      }));
    },

    /** Of `ids`, the keys whose stored status is active. */
    async activeAmong(ids: readonly string[]): Promise<Set<string>> {
      if (ids.length === 0) return new Set();
      const rows = await db
        .selectFrom('api_keys')
        .select('id')
        .where('id', 'in', [...ids])
        .where('status', '=', 'active')
        .execute();
      return new Set(rows.map((r) => r.id));
    },

    /** Every workspace the inventory knows (the Default Workspace is not one: the API does not list it). */
    async workspaces(): Promise<Array<{ id: string; name: string; createdAt: Date }>> {
      const rows = await db.selectFrom('workspaces').select(['id', 'name', 'created_at']).execute();
      return rows.map((r) => ({ id: r.id, name: r.name, createdAt: new Date(r.created_at) }));
    },

    /** The organization's name as the Admin API gave it last; null before the first sync. */
    async organizationName(): Promise<string | null> {
      const row = await db
        .selectFrom('organizations')
        .select('name')
        .orderBy('last_seen_at', 'desc')
        .executeTakeFirst();
      return row?.name ?? null;
    },

    /**
     * Every active key still in the organization, oldest first, with its workspace's name, its rotation state and
     * its creator as keywarden last saw them (null columns: never seen).
     */
    async activeKeysWithOwners() {
      return db
        .selectFrom('api_keys as k')
        .leftJoin('workspaces as w', 'w.id', 'k.workspace_id')
        .leftJoin('rotation_state as r', 'r.api_key_id', 'k.id')
        .leftJoin('users as u', 'u.id', 'k.created_by_id')
        .select([
          'k.id',
          'k.name',
          'k.partial_key_hint',
          'k.workspace_id',
          'k.scope_type',
          'w.name as workspace_name',
          'k.created_at',
          'k.expires_at',
          'k.created_by_id',
          'k.created_by_type',
          'r.stage',
          'r.deadline',
          'r.policy_source',
          'r.evaluated_at',
          'u.email as creator_email',
          'u.name as creator_name',
          'u.left_at as creator_left_at',
        ])
        .where('k.status', '=', 'active')
        .where('k.gone_at', 'is', null)
        .orderBy('k.created_at')
        .execute();
    },

    /** The members who hold the organization's admin role, by name. */
    async admins(): Promise<Array<{ name: string; email: string }>> {
      return db
        .selectFrom('users')
        .select(['name', 'email'])
        .where('role', '=', 'admin')
        .where('left_at', 'is', null)
        .orderBy('name')
        .execute();
    },

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
