import { sql } from 'kysely';
import { isKeyIdReference } from '../../config/references.ts';
import { type DayActivity, type IdentityKey, type KeyIdentity, keyIdentity } from '../../inventory/core/identity.ts';
import { keyWorkspaceName } from '../../inventory/core/key-place.ts';
import type { InventoryChanges, InventorySnapshot, KnownInventory } from '../../inventory/core/plan.ts';
import type { KeyStage } from '../../rotation/core/describe.ts';
import type { KeyState, SentStages } from '../../rotation/core/types.ts';
import { KEY_STATUS_LOCK, organizationLock, withAdvisoryLock } from '../advisory-lock.ts';
import type { Db } from '../index.ts';
import type { AuditRow } from '../types.ts';
import { type AuditOutcomeStep, auditRepo } from './audit.ts';

/** The audit actions of a key status change. */
export const KEY_STATUS_ACTIONS = ['api_key.deactivate', 'api_key.reactivate'] as const;
export type KeyStatusAction = (typeof KEY_STATUS_ACTIONS)[number];

/** A key's identity, place and creator, as the rotation reads use them (`w` joined as the key's workspace). */
const KEY_PLACE_COLUMNS = [
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
] as const;

/** A reminder stage sent for a key (rotation_reminders: '14', '7', '1', 'overdue'), recorded once. */
export interface SentStage {
  keyId: string;
  stage: string;
  sentAt: Date;
}

/** What rotation_state keeps for one key after an enforce-rotation run. */
export type RotationStateRow = KeyStage & { keyId: string; deadline: Date | null; policySource: string };

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
 * The organization as keywarden stores it (organizations, workspaces, users, api_keys, api_key_status_changes)
 * and what rotation keeps per key (rotation_reminders, rotation_state); the key-status lock. `schema` is the schema
 * the organization's connections were opened on (`connectionSchema`): undefined for the one organization of a file
 * with `organization:`, whose connections keep the search_path the deployment gave them.
 */
export function keysRepo(db: Db, schema?: string) {
  // One lock per organization: its keys are its schema's rows, and every organization's runs start on the same
  // tick, so one lock for all would skip all but one of them each time. Named from the configured schema, never
  // from what the connection resolves at run time: public (or no schema of its own) keeps the name every version
  // before took, so an older replica and this one exclude each other.
  const statusLock = organizationLock(KEY_STATUS_LOCK, schema);
  return {
    /**
     * Runs `fn` holding this organization's key-status lock; returns null at once, without running it, when another
     * session holds it (enforce-rotation, the kill switch, `keys reactivate` of the same organization).
     */
    async withStatusLock<T>(fn: () => Promise<T>): Promise<{ value: T } | null> {
      return withAdvisoryLock(db, statusLock, fn);
    },

    /**
     * The stored keys a person's reference names: by id when it reads `apikey_…`, else by exact name. Never both:
     * a key may be named like another key's id, and an id given on the command line must name that key only.
     */
    async findByReference(ref: string): Promise<{ id: string; name: string; status: string }[]> {
      return db
        .selectFrom('api_keys')
        .select(['id', 'name', 'status'])
        .where(isKeyIdReference(ref) ? 'id' : 'name', '=', ref)
        .execute();
    },

    /** A key's stored status, name and hint, for the intent row of a status change; null for a key never synced. */
    async statusOf(
      keyId: string,
    ): Promise<{ status: string; name: string; hint: string | null; workspaceId: string | null } | null> {
      const row = await db
        .selectFrom('api_keys')
        .select(['status', 'name', 'partial_key_hint', 'workspace_id'])
        .where('id', '=', keyId)
        .executeTakeFirst();
      return row
        ? { status: row.status, name: row.name, hint: row.partial_key_hint, workspaceId: row.workspace_id }
        : null;
    },

    /**
     * Records a status change keywarden made, in one transaction with the audit outcome row that proves it: the
     * outcome, the dated change, and the key's stored status.
     */
    async recordStatusChange(
      intent: AuditRow,
      outcome: { step: Exclude<AuditOutcomeStep, 'failed'>; details: Record<string, unknown> },
      change: { from: string | null; to: string; at: Date },
    ): Promise<void> {
      await db.transaction().execute(async (tx) => {
        await auditRepo(tx).recordOutcome(intent, outcome.step, outcome.details);
        await tx
          .insertInto('api_key_status_changes')
          .values({
            api_key_id: intent.subject_id,
            from_status: change.from,
            to_status: change.to,
            changed_at: change.at,
            source: 'keywarden',
            reason: String((intent.details as { reason?: string }).reason ?? ''),
          })
          .execute();
        await tx
          .updateTable('api_keys')
          .set({ status: change.to, status_changed_at: change.at })
          .where('id', '=', intent.subject_id)
          .execute();
      });
    },

    /** Every key still listed by the API, oldest first, with its workspace's name and its owner while they stay. */
    async rotationKeys(): Promise<KeyState[]> {
      const rows = await db
        .selectFrom('api_keys as k')
        .leftJoin('workspaces as w', 'w.id', 'k.workspace_id')
        .leftJoin('users as u', (join) => join.onRef('u.id', '=', 'k.created_by_id').on('u.left_at', 'is', null))
        .select([...KEY_PLACE_COLUMNS, 'k.status', 'u.email as owner_email'])
        .where('k.gone_at', 'is', null)
        .orderBy('k.created_at')
        .execute();
      return rows.map((r) => ({
        id: r.id,
        name: r.name,
        status: r.status,
        workspaceId: r.workspace_id,
        scope: r.scope_type,
        workspaceName: keyWorkspaceName(r.scope_type, r.workspace_id, r.workspace_name),
        createdAt: r.created_at,
        expiresAt: r.expires_at,
        createdByUserId: r.created_by_type === 'user' ? r.created_by_id : null,
        ownerEmail: r.owner_email ?? null,
        partialKeyHint: r.partial_key_hint,
      }));
    },

    /** The reminder stages sent, per key id: stage → when. */
    async sentStages(): Promise<SentStages> {
      const rows = await db.selectFrom('rotation_reminders').selectAll().execute();
      const sent = new Map<string, Map<string, Date>>();
      for (const r of rows) {
        const stages = sent.get(r.api_key_id) ?? new Map<string, Date>();
        stages.set(r.stage, r.sent_at);
        sent.set(r.api_key_id, stages);
      }
      return sent;
    },

    /**
     * Saves what an enforce-rotation run decided, in one transaction: the reminder stages it sent (a stage already
     * recorded stays as it was) and every key's stage.
     */
    async saveRotationRun(sent: readonly SentStage[], states: readonly RotationStateRow[], now: Date): Promise<void> {
      await db.transaction().execute(async (tx) => {
        if (sent.length > 0) {
          await tx
            .insertInto('rotation_reminders')
            .values(sent.map((s) => ({ api_key_id: s.keyId, stage: s.stage, sent_at: s.sentAt })))
            .onConflict((oc) => oc.doNothing())
            .execute();
        }
        for (const s of states) {
          const state = {
            deadline: s.deadline,
            policy_source: s.policySource,
            stage: s.stage,
            reminder_days: s.reminderDays,
            evaluated_at: now,
          };
          await tx
            .insertInto('rotation_state')
            .values({ api_key_id: s.keyId, ...state })
            .onConflict((oc) => oc.column('api_key_id').doUpdateSet(state))
            .execute();
        }
      });
    },

    /** What the last inventory sync stored: each key's status and each user's departure. */
    async knownInventory(): Promise<KnownInventory> {
      const [keys, users] = await Promise.all([
        db.selectFrom('api_keys').select(['id', 'status', 'gone_at']).execute(),
        db.selectFrom('users').select(['id', 'left_at']).execute(),
      ]);
      return {
        keys: new Map(keys.map((k) => [k.id, { status: k.status, goneAt: k.gone_at }])),
        users: new Map(users.map((u) => [u.id, { leftAt: u.left_at }])),
      };
    },

    /**
     * Writes a snapshot and its changes in one transaction: a sync that dies midway leaves the previous state whole,
     * and the next sync finds the same changes again (so no status change is lost or recorded twice).
     */
    async saveInventory(snapshot: InventorySnapshot, changes: InventoryChanges, now: Date): Promise<void> {
      await db.transaction().execute(async (tx) => {
        const org = snapshot.organization;
        await tx
          .insertInto('organizations')
          .values({ id: org.id, name: org.name, first_seen_at: now, last_seen_at: now })
          .onConflict((oc) => oc.column('id').doUpdateSet({ name: org.name, last_seen_at: now }))
          .execute();
        for (const w of snapshot.workspaces) {
          const row = {
            name: w.name,
            display_color: w.displayColor,
            created_at: w.createdAt,
            archived_at: w.archivedAt,
          };
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
            identity: keyIdentity(k),
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
                identity: eb.ref('excluded.identity'),
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
    },

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
          ...KEY_PLACE_COLUMNS,
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
        .execute();
    },

    /** The email address of every member still in the organization, by user id. */
    async userEmails(): Promise<Map<string, string>> {
      const rows = await db.selectFrom('users').select(['id', 'email']).where('left_at', 'is', null).execute();
      return new Map(rows.map((u) => [u.id, u.email]));
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

    /**
     * Every active key still listed, with who is behind it, for the identity findings (the caller adds each
     * personal key's usage): a personal key's user while they stay, or when keywarden saw them leave.
     */
    async identityKeys(): Promise<Array<Omit<IdentityKey, 'activity' | 'lastUsageAt'>>> {
      const rows = await db
        .selectFrom('api_keys as k')
        .leftJoin('workspaces as w', 'w.id', 'k.workspace_id')
        .leftJoin('users as u', (join) => join.onRef('u.id', '=', 'k.principal_id').on('k.identity', '=', 'personal'))
        .select([
          'k.id',
          'k.name',
          'k.partial_key_hint',
          'k.workspace_id',
          'k.scope_type',
          'w.name as workspace_name',
          'k.identity',
          'k.expires_at',
          'k.principal_id',
          'u.email as principal_email',
          'u.left_at as principal_left_at',
        ])
        .where('k.status', '=', 'active')
        .where('k.gone_at', 'is', null)
        .orderBy('k.created_at')
        .execute();
      return rows.map((r) => {
        const personal = r.identity === 'personal';
        const present = personal && r.principal_email !== null && r.principal_left_at === null;
        return {
          id: r.id,
          name: r.name,
          hint: r.partial_key_hint,
          workspaceId: r.workspace_id,
          workspaceName: keyWorkspaceName(r.scope_type, r.workspace_id, r.workspace_name),
          identity: r.identity,
          expiresAt: r.expires_at,
          owner: present ? { id: r.principal_id!, email: r.principal_email! } : null,
          principalUserId: personal ? r.principal_id : null,
          principalEmail: personal ? r.principal_email : null,
          ownerLeftAt: personal ? r.principal_left_at : null,
        };
      });
    },

    /** Each key's identity, by id (every stored key). */
    async identities(): Promise<Map<string, KeyIdentity>> {
      const rows = await db.selectFrom('api_keys').select(['id', 'identity']).execute();
      return new Map(rows.map((r) => [r.id, r.identity]));
    },

    /**
     * Per key of `keyIds`, the local hours (0–23, in `timezone`) with any tokens, per local day of the `days`
     * complete local days before the one holding `now`; days without traffic are absent. Minute and hour rows both
     * count, so the hours that retention rolled up still show.
     */
    async hourlyActivity(
      keyIds: readonly string[],
      now: Date,
      timezone: string,
      days: number,
    ): Promise<Map<string, DayActivity[]>> {
      const out = new Map<string, DayActivity[]>();
      if (keyIds.length === 0) return out;
      const local = sql`(starting_at AT TIME ZONE ${timezone})`;
      const today = sql`(${now}::timestamptz AT TIME ZONE ${timezone})::date`;
      const { rows } = await sql<{ api_key_id: string; date: string; hours: number[] }>`
        SELECT api_key_id, to_char(${local}, 'YYYY-MM-DD') AS date,
          array_agg(DISTINCT extract(hour FROM ${local})::int) AS hours
        FROM usage_buckets
        WHERE bucket_width IN ('1m', '1h')
          AND starting_at >= ((${today} - ${days}::int)::timestamp AT TIME ZONE ${timezone})
          AND starting_at < (${today}::timestamp AT TIME ZONE ${timezone})
          AND api_key_id IN (${sql.join(keyIds.map((k) => sql`${k}`))})
          AND uncached_input_tokens + cache_read_input_tokens + cache_creation_5m_input_tokens
            + cache_creation_1h_input_tokens + output_tokens > 0
        GROUP BY 1, 2
        ORDER BY 1, 2`.execute(db);
      for (const r of rows) {
        const keyDays = out.get(r.api_key_id) ?? [];
        keyDays.push({ date: r.date, hours: r.hours });
        out.set(r.api_key_id, keyDays);
      }
      return out;
    },

    /** The last usage bucket of each key of `keyIds` that has one. */
    async lastUsage(keyIds: readonly string[]): Promise<Map<string, Date>> {
      if (keyIds.length === 0) return new Map();
      const rows = await db
        .selectFrom('usage_buckets')
        .select(['api_key_id', sql<Date>`max(starting_at)`.as('last')])
        .where('api_key_id', 'in', [...keyIds])
        .groupBy('api_key_id')
        .execute();
      return new Map(rows.map((r) => [r.api_key_id!, new Date(r.last)]));
    },

    /**
     * Spend (exact USD string) and tokens from `from` to `until` by who is behind the traffic: the identity of its
     * key, `no_key` for usage without one (Console, Workbench), `unknown` for a key the inventory never stored.
     */
    async trafficByIdentity(
      from: Date,
      until: Date,
    ): Promise<Array<{ identity: KeyIdentity | 'no_key'; keys: number; usd: string; tokens: string }>> {
      const { rows } = await sql<{ identity: KeyIdentity | 'no_key'; keys: string; usd: string; tokens: string }>`
        SELECT CASE WHEN b.api_key_id IS NULL THEN 'no_key' ELSE coalesce(k.identity, 'unknown') END AS identity,
          count(DISTINCT b.api_key_id) AS keys,
          coalesce(sum(b.cost_usd), 0)::text AS usd,
          coalesce(sum(b.uncached_input_tokens + b.cache_read_input_tokens + b.cache_creation_5m_input_tokens
            + b.cache_creation_1h_input_tokens + b.output_tokens), 0)::text AS tokens
        FROM usage_buckets b
        LEFT JOIN api_keys k ON k.id = b.api_key_id
        WHERE b.bucket_width IN ('1m', '1h') AND b.starting_at >= ${from} AND b.starting_at < ${until}
        GROUP BY 1`.execute(db);
      return rows.map((r) => ({ identity: r.identity, keys: Number(r.keys), usd: r.usd, tokens: r.tokens }));
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
