import type { Db } from '../db/index.ts';

/** The name digests call the organization by: the policy's `organization.name`, else the name the Admin API gives. */
export async function organizationName(db: Db, configured: string): Promise<string> {
  if (configured.trim()) return configured;
  const row = await db.selectFrom('organizations').select('name').orderBy('last_seen_at', 'desc').executeTakeFirst();
  return row?.name ?? 'Your organization';
}
