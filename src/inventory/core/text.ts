import type { InventorySnapshot } from './plan.ts';

/**
 * Postgres refuses U+0000 in `text` and `jsonb` ("invalid byte sequence for encoding UTF8: 0x00"), and the Admin
 * API lets a name hold one: left in, one such name fails every sync, forever. It becomes U+FFFD rather than
 * nothing so that the stored name still differs from the name without it (a key named "prod\0" must not become a
 * second "prod" that an exact-name policy reference would match) and the mark stays visible wherever it is shown.
 */
function storableText(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;
}

function storableOrNull(text: string | null): string | null {
  return text === null ? null : storableText(text);
}

/**
 * The snapshot with every organization-controlled text made storable. Ids are left as the API sent them: they are
 * the API's own (`apikey_01…`) and a changed id would name another key, or none, in the calls made with it.
 */
export function storableSnapshot(snapshot: InventorySnapshot): InventorySnapshot {
  return {
    organization: { ...snapshot.organization, name: storableText(snapshot.organization.name) },
    workspaces: snapshot.workspaces.map((w) => ({
      ...w,
      name: storableText(w.name),
      displayColor: storableOrNull(w.displayColor),
    })),
    users: snapshot.users.map((u) => ({
      ...u,
      name: storableText(u.name),
      email: storableText(u.email),
      role: storableText(u.role),
    })),
    keys: snapshot.keys.map((k) => ({
      ...k,
      name: storableText(k.name),
      status: storableText(k.status),
      partialKeyHint: storableOrNull(k.partialKeyHint),
      createdBy: k.createdBy === null ? null : { ...k.createdBy, type: storableText(k.createdBy.type) },
    })),
  };
}
