import type { Db } from '../db/index.ts';
import { keyWorkspaceName } from '../inventory/core/key-place.ts';
import type { RotationStage } from '../kinds.ts';

/**
 * Reads what the weekly security digest shows: every active key with its rotation stage (kept by
 * enforce-rotation in rotation_state), its owner and whether that owner is still in the organization, its expiry;
 * and the members who hold the organization's admin role.
 */

export interface SecurityKey {
  id: string;
  name: string;
  hint: string | null;
  workspaceName: string;
  createdAt: Date;
  expiresAt: Date | null;
  /** null: enforce-rotation has not evaluated the key yet. */
  stage: RotationStage | null;
  /** The reminder stage (days before the deadline) of a `due_soon` key; null otherwise. */
  reminderDays: number | null;
  deadline: Date | null;
  policySource: string | null;
  /** The creator's email while they are in the organization. */
  ownerEmail: string | null;
  /** The creating user's id when that user is no longer in the organization (the key is orphaned). */
  departedCreatorId: string | null;
  /** Name or email of a creator who left, when keywarden saw them before they did. */
  departedCreatorName: string | null;
}

export interface SecurityData {
  organizationName: string;
  timezone: string;
  asOf: Date;
  keys: SecurityKey[];
  admins: { name: string; email: string }[];
  /** When enforce-rotation last evaluated any key: stages older than a day or two are stale. */
  rotationEvaluatedAt: Date | null;
}

export async function loadSecurityData(
  db: Db,
  now: Date,
  opts: { organizationName: string; timezone: string },
): Promise<SecurityData> {
  const [keys, admins] = await Promise.all([
    db
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
        'r.reminder_days',
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
      .execute(),
    db
      .selectFrom('users')
      .select(['name', 'email'])
      .where('role', '=', 'admin')
      .where('left_at', 'is', null)
      .orderBy('name')
      .execute(),
  ]);
  let rotationEvaluatedAt: Date | null = null;
  for (const k of keys) {
    if (k.evaluated_at !== null && (rotationEvaluatedAt === null || k.evaluated_at > rotationEvaluatedAt)) {
      rotationEvaluatedAt = k.evaluated_at;
    }
  }
  return {
    organizationName: opts.organizationName,
    timezone: opts.timezone,
    asOf: now,
    admins,
    rotationEvaluatedAt,
    keys: keys.map((k) => {
      const byUser = k.created_by_type === 'user' && k.created_by_id !== null;
      // a creator keywarden never saw (left before the first sync) is as gone as one marked left
      const departed = byUser && (k.creator_email === null || k.creator_left_at !== null);
      return {
        id: k.id,
        name: k.name,
        hint: k.partial_key_hint,
        workspaceName: keyWorkspaceName(k.scope_type, k.workspace_id, k.workspace_name),
        createdAt: k.created_at,
        expiresAt: k.expires_at,
        stage: k.stage,
        reminderDays: k.reminder_days,
        deadline: k.deadline,
        policySource: k.policy_source,
        ownerEmail: byUser && !departed ? k.creator_email : null,
        departedCreatorId: departed ? k.created_by_id : null,
        departedCreatorName: departed ? (k.creator_email ?? k.creator_name) : null,
      };
    }),
  };
}
