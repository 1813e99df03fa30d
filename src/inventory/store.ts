import type { Db } from '../db/index.ts';
import type { InventoryChanges, InventorySnapshot, KnownInventory } from './core/plan.ts';

export async function loadKnownInventory(db: Db): Promise<KnownInventory> {
  const [keys, users] = await Promise.all([
    db.selectFrom('api_keys').select(['id', 'status', 'gone_at']).execute(),
    db.selectFrom('users').select(['id', 'left_at']).execute(),
  ]);
  return {
    keys: new Map(keys.map((k) => [k.id, { status: k.status, goneAt: k.gone_at }])),
    users: new Map(users.map((u) => [u.id, { leftAt: u.left_at }])),
  };
}

/**
 * Writes a snapshot and its changes in one transaction: a sync that dies midway leaves the previous state whole,
 * and the next sync finds the same changes again (so no status change is lost or recorded twice).
 */
export async function applyInventory(
  db: Db,
  snapshot: InventorySnapshot,
  changes: InventoryChanges,
  now: Date,
): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const org = snapshot.organization;
    await tx
      .insertInto('organizations')
      .values({ id: org.id, name: org.name, first_seen_at: now, last_seen_at: now })
      .onConflict((oc) => oc.column('id').doUpdateSet({ name: org.name, last_seen_at: now }))
      .execute();
    for (const w of snapshot.workspaces) {
      const row = { name: w.name, display_color: w.displayColor, created_at: w.createdAt, archived_at: w.archivedAt };
      await tx
        .insertInto('workspaces')
        .values({ id: w.id, ...row, first_seen_at: now, last_seen_at: now })
        .onConflict((oc) => oc.column('id').doUpdateSet({ ...row, last_seen_at: now }))
        .execute();
    }
    for (const u of snapshot.users) {
      const row = { email: u.email, name: u.name, role: u.role, added_at: u.addedAt };
      await tx
        .insertInto('users')
        .values({ id: u.id, ...row, first_seen_at: now, last_seen_at: now, left_at: null })
        .onConflict((oc) => oc.column('id').doUpdateSet({ ...row, last_seen_at: now, left_at: null }))
        .execute();
    }
    if (changes.usersLeft.length > 0) {
      await tx.updateTable('users').set({ left_at: now }).where('id', 'in', changes.usersLeft).execute();
    }
    // Keys come in thousands (a 5,000-key organization): multi-row upserts in chunks, not a statement per key.
    const changed = new Set(changes.statusChanges.map((c) => c.keyId));
    for (let i = 0; i < snapshot.keys.length; i += 500) {
      const rows = snapshot.keys.slice(i, i + 500).map((k) => ({
        id: k.id,
        name: k.name,
        status: k.status,
        workspace_id: k.workspaceId,
        partial_key_hint: k.partialKeyHint,
        created_at: k.createdAt,
        created_by_id: k.createdBy?.id ?? null,
        created_by_type: k.createdBy?.type ?? null,
        expires_at: k.expiresAt,
        scope_type: k.scope,
        principal_type: k.principal?.type ?? null,
        principal_id: k.principal?.userId ?? k.principal?.serviceAccountId ?? null,
        status_changed_at: changed.has(k.id) ? now : null,
        first_seen_at: now,
        last_seen_at: now,
        gone_at: null,
      }));
      await tx
        .insertInto('api_keys')
        .values(rows)
        .onConflict((oc) =>
          oc.column('id').doUpdateSet((eb) => ({
            name: eb.ref('excluded.name'),
            status: eb.ref('excluded.status'),
            workspace_id: eb.ref('excluded.workspace_id'),
            partial_key_hint: eb.ref('excluded.partial_key_hint'),
            created_by_id: eb.ref('excluded.created_by_id'),
            created_by_type: eb.ref('excluded.created_by_type'),
            expires_at: eb.ref('excluded.expires_at'),
            scope_type: eb.ref('excluded.scope_type'),
            principal_type: eb.ref('excluded.principal_type'),
            principal_id: eb.ref('excluded.principal_id'),
            // keep the time of the last change unless this sync saw a new one
            status_changed_at: eb.fn.coalesce('excluded.status_changed_at', 'api_keys.status_changed_at'),
            last_seen_at: eb.ref('excluded.last_seen_at'),
            gone_at: null,
          })),
        )
        .execute();
    }
    if (changes.statusChanges.length > 0) {
      await tx
        .insertInto('api_key_status_changes')
        .values(
          changes.statusChanges.map((c) => ({
            api_key_id: c.keyId,
            from_status: c.from,
            to_status: c.to,
            changed_at: now,
            source: 'outside' as const,
            reason: c.from === null ? 'first seen' : null,
          })),
        )
        .execute();
    }
    if (changes.keysGone.length > 0) {
      await tx.updateTable('api_keys').set({ gone_at: now }).where('id', 'in', changes.keysGone).execute();
    }
  });
}
