import type { AlertObservation } from '../../alerts/core/lifecycle.ts';
import { CONSOLE_KEYS_URL } from '../../console.ts';
import { keyWorkspaceName } from './key-place.ts';
import type { InventoryChanges, InventorySnapshot } from './plan.ts';

/**
 * One `key.orphaned` observation per active key whose creator left the organization: nobody will get its rotation
 * reminders, so the security route must adopt it. The alert resolves by itself once the key is retired or the
 * creator is back (the next sync no longer observes it). Pure.
 */
export function orphanObservations(snapshot: InventorySnapshot, changes: InventoryChanges): AlertObservation[] {
  const keys = new Map(snapshot.keys.map((k) => [k.id, k]));
  const workspaces = new Map(snapshot.workspaces.map((w) => [w.id, w.name]));
  return changes.orphanedKeys.map(({ keyId, creatorId }) => {
    const key = keys.get(keyId)!;
    const workspaceName = keyWorkspaceName(
      key.scope,
      key.workspaceId,
      key.workspaceId === null ? null : workspaces.get(key.workspaceId),
    );
    return {
      kind: 'key.orphaned',
      severity: 'warning',
      scopeType: 'key',
      scopeId: keyId,
      workspaceId: key.workspaceId,
      period: '',
      title: `API key "${key.name}" has no owner`,
      summary: `The user who created this key (${creatorId}) is no longer in the organization. Its rotation reminders have nobody to go to: pick an owner, or retire the key.`,
      details: { keyId, creatorId, hint: key.partialKeyHint },
      fields: [
        { label: 'Key', value: `${key.name} (${key.partialKeyHint ?? keyId})` },
        { label: 'Workspace', value: workspaceName },
        { label: 'Created', value: key.createdAt.toISOString().slice(0, 10) },
        { label: 'Creator', value: `${creatorId} (left)` },
      ],
      links: [{ label: 'API keys in the Console', url: CONSOLE_KEYS_URL }],
      workspaceName,
      keyOwnerEmail: null,
    };
  });
}
