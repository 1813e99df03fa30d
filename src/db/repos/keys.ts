import type { Db } from '../index.ts';

/** The inventory's tables (organizations, workspaces, users, api_keys) and what is kept per key (rotation_state). */
export function keysRepo(db: Db) {
  return {
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
  };
}
