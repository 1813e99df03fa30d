import type { Insertable } from 'kysely';
import type { AlertObservation } from '../../src/alerts/core/lifecycle.ts';
import type { Db } from '../../src/db/index.ts';
import type { AlertsTable } from '../../src/db/types.ts';

/** A runaway-spend observation on key `keyId` (shown as `name`), as the delivery tests raise it. */
export function runawayObservation(keyId: string, name = keyId): AlertObservation {
  return {
    kind: 'usage.runaway',
    severity: 'critical',
    scopeType: 'key',
    scopeId: keyId,
    workspaceId: 'wrkspc_1',
    period: '',
    title: `Runaway spend on key ${name}`,
    summary: 'The key spent $412.50 in the last 10 minutes.',
    fields: [{ label: 'Key', value: name }],
    links: [{ label: 'Open in Console', url: 'https://console.anthropic.com/settings/keys' }],
    details: {},
  };
}

/** A rotation-overdue observation on key `keyId` (shown as `name`), owned by `owner` (null: nobody known). */
export function overdueObservation(keyId: string, name: string, owner: string | null): AlertObservation {
  return {
    kind: 'rotation.overdue',
    severity: 'warning',
    scopeType: 'key',
    scopeId: keyId,
    workspaceId: null,
    period: '',
    title: `Key ${name} is overdue for rotation`,
    fields: [{ label: 'Key', value: name }],
    keyOwnerEmail: owner,
    details: {},
  };
}

/** The columns of a stored alert a test chooses; the rest make it firing, never notified and not inhibited. */
type FiringAlertRow = Omit<
  Insertable<AlertsTable>,
  'state' | 'started_at' | 'last_seen_at' | 'last_notified_at' | 'resolved_at' | 'inhibited_by'
>;

/** Stores an alert firing since `since`, last seen at `seenAt`; returns its id. */
export async function insertFiringAlert(db: Db, alert: FiringAlertRow, since: Date, seenAt = since): Promise<string> {
  const row = await db
    .insertInto('alerts')
    .values({
      ...alert,
      state: 'firing',
      started_at: since,
      last_seen_at: seenAt,
      last_notified_at: null,
      resolved_at: null,
      inhibited_by: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}
