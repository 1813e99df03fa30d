import type { ApiKey, Organization, User, Workspace } from '../../anthropic/types.ts';
import { type KeyIdentity, keyIdentity } from './identity.ts';

/** The keys `key.orphaned` speaks of: those no user or service account stands behind. */
const ORPHAN_IDENTITIES: ReadonlySet<KeyIdentity> = new Set<KeyIdentity>(['legacy', 'unknown']);

/** Everything one sync read from the Admin API. */
export interface InventorySnapshot {
  organization: Organization;
  workspaces: Workspace[];
  users: User[];
  keys: ApiKey[];
}

/** What Postgres knew before this sync. */
export interface KnownInventory {
  keys: ReadonlyMap<string, { status: string; goneAt: Date | null }>;
  users: ReadonlyMap<string, { leftAt: Date | null }>;
}

export interface InventoryChanges {
  /** `from: null` for a key seen for the first time. Keywarden's own changes are recorded when it makes them, so
   *  anything found here was done outside keywarden (in the Console, by the API's expiry, by another tool). */
  statusChanges: { keyId: string; from: string | null; to: string }[];
  /** Users no longer listed: they left the organization. */
  usersLeft: string[];
  /** Users listed again after having left (re-invited). */
  usersReturned: string[];
  /** Keys no longer listed at all. */
  keysGone: string[];
  /**
   * Active keys that act as nobody (legacy workspace keys, or keys whose response did not say) and whose creating
   * user is no longer in the organization: nobody owns their rotation. A personal key whose user left is dead, not
   * orphaned, and a service-account key belongs to its service account (identity.ts says both).
   */
  orphanedKeys: { keyId: string; creatorId: string }[];
}

/** Compares a fresh snapshot with what was stored. Pure. */
export function planInventory(known: KnownInventory, snapshot: InventorySnapshot): InventoryChanges {
  const userIds = new Set(snapshot.users.map((u) => u.id));
  const keyIds = new Set(snapshot.keys.map((k) => k.id));
  const statusChanges: InventoryChanges['statusChanges'] = [];
  for (const key of snapshot.keys) {
    const before = known.keys.get(key.id);
    if (!before) statusChanges.push({ keyId: key.id, from: null, to: key.status });
    else if (before.status !== key.status) statusChanges.push({ keyId: key.id, from: before.status, to: key.status });
  }
  const usersLeft: string[] = [];
  const usersReturned: string[] = [];
  for (const [id, user] of known.users) {
    if (!userIds.has(id) && user.leftAt === null) usersLeft.push(id);
    if (userIds.has(id) && user.leftAt !== null) usersReturned.push(id);
  }
  const keysGone = [...known.keys].filter(([id, k]) => !keyIds.has(id) && k.goneAt === null).map(([id]) => id);
  const orphanedKeys = snapshot.keys
    .filter((k) => k.status === 'active' && k.createdBy?.type === 'user' && !userIds.has(k.createdBy.id))
    .filter((k) => ORPHAN_IDENTITIES.has(keyIdentity(k)))
    .map((k) => ({ keyId: k.id, creatorId: k.createdBy!.id }));
  return { statusChanges, usersLeft, usersReturned, keysGone, orphanedKeys };
}
