import { sql } from 'kysely';
import type { AlertKind, AlertSubject } from '../../kinds.ts';
import { organizationLock } from '../advisory-lock.ts';
import type { Db } from '../index.ts';
import type { AlertsTable } from '../types.ts';
import { type OutboxRepo, outboxRepo } from './outbox.ts';

/** An alert as the `alerts` table keeps it: its identity, its state, and what its messages need. */
export interface AlertRecord extends AlertSubject {
  id: string;
  fingerprint: string;
  state: AlertsTable['state'];
  /** What the raise stored beyond the columns (summary, fields, links, routing facts): its own shape, as JSON. */
  details: Record<string, unknown>;
  startedAt: Date;
  lastSeenAt: Date;
  lastNotifiedAt: Date | null;
  resolvedAt: Date | null;
  inhibitedBy: string | null;
  acknowledgedAt: Date | null;
  /** The Slack user id of who acknowledged this episode. */
  acknowledgedBy: string | null;
}

/** The columns of an alert a raise sees firing (alerts/core/plan.ts decides them). */
type FiringAlert = AlertSubject & Pick<AlertRecord, 'fingerprint' | 'inhibitedBy'> & { details: object };

type AlertRow = Awaited<ReturnType<ReturnType<typeof selectAlerts>['executeTakeFirstOrThrow']>>;

function selectAlerts(db: Db) {
  return db.selectFrom('alerts').selectAll();
}

function record(r: AlertRow): AlertRecord {
  return {
    id: r.id,
    fingerprint: r.fingerprint,
    kind: r.kind,
    severity: r.severity,
    scopeType: r.scope_type,
    scopeId: r.scope_id,
    workspaceId: r.workspace_id,
    period: r.period,
    state: r.state,
    title: r.title,
    details: r.details,
    startedAt: new Date(r.started_at),
    lastSeenAt: new Date(r.last_seen_at),
    lastNotifiedAt: r.last_notified_at === null ? null : new Date(r.last_notified_at),
    resolvedAt: r.resolved_at === null ? null : new Date(r.resolved_at),
    inhibitedBy: r.inhibited_by,
    acknowledgedAt: r.acknowledged_at === null ? null : new Date(r.acknowledged_at),
    acknowledgedBy: r.acknowledged_by,
  };
}

/**
 * The `alerts` table: one row per alert fingerprint, firing or resolved. `schema`: the organization's configured
 * schema, which names its locks (see organizationLock).
 */
export function alertsRepo(db: Db, schema?: string) {
  // per organization: each has its own alerts table, and a raise of thousands yields between its steps
  const raiseLock = organizationLock('keywarden.raise-alerts', schema);
  return {
    ...alertRows(db),
    /**
     * Acknowledges the episode (as `acknowledge` does) and, in the same transaction, queues an `acknowledged` event
     * for each PagerDuty target its firing went to: a crash between the two would leave the on-call's incident open
     * while Slack says acknowledged.
     */
    async acknowledgeEverywhere(
      alert: { id: string; fingerprint: string },
      episodeStartedAt: Date,
      by: string,
      now: Date,
    ): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        const done = await alertRows(trx).acknowledge(alert.id, episodeStartedAt, by, now);
        if (done) await outboxRepo(trx).acknowledgeOnPagerDuty(alert.fingerprint, episodeStartedAt, now);
        return done;
      });
    },

    /**
     * Runs `raise` in one transaction that holds the raise lock, with the alerts and the outbox bound to it: an
     * alert's state change and its messages are both recorded or neither is. Row locks cannot cover alerts that do
     * not exist yet, so one advisory lock serialises every raise across replicas (runs are seconds apart): two runs
     * that both saw "not firing yet" would otherwise both write a firing message.
     */
    async raising<T>(raise: (tx: RaiseTransaction) => Promise<T>): Promise<T> {
      return db.transaction().execute(async (trx) => {
        await sql`SELECT pg_advisory_xact_lock(hashtext(${raiseLock}))`.execute(trx);
        return raise({ alerts: alertRows(trx), outbox: outboxRepo(trx) });
      });
    },
  };
}

/** The repositories a raise writes through, bound to its transaction. */
export interface RaiseTransaction {
  alerts: ReturnType<typeof alertRows>;
  outbox: OutboxRepo;
}

function alertRows(db: Db) {
  return {
    /**
     * The stored alerts of these kinds, and those with these fingerprints: what a raise plans against. Read in pages
     * of `pageSize` rows (by id), so parsing ten thousand rows' details is several short tasks, not one long one.
     */
    async forRaise(
      kinds: readonly AlertKind[],
      fingerprints: readonly string[],
      pageSize = 2000,
    ): Promise<AlertRecord[]> {
      if (kinds.length === 0 && fingerprints.length === 0) return [];
      const out: AlertRecord[] = [];
      for (let after: string | null = null; ; ) {
        const rows: AlertRow[] = await selectAlerts(db)
          .where((eb) => {
            const ors = [];
            if (kinds.length > 0) ors.push(eb('kind', 'in', [...kinds]));
            // one array parameter, however many fingerprints (a sync observes thousands)
            if (fingerprints.length > 0)
              ors.push(eb('fingerprint', '=', sql<string>`any(${[...fingerprints]}::text[])`));
            const matching = eb.or(ors);
            return after === null ? matching : eb.and([matching, eb('id', '>', after)]);
          })
          .orderBy('id')
          .limit(pageSize)
          .execute();
        for (const r of rows) out.push(record(r));
        if (rows.length < pageSize) return out;
        after = rows.at(-1)!.id;
      }
    },

    /** Marks an alert resolved; `notified` when its resolve is said (moves `last_notified_at`). */
    async resolve(id: string, now: Date, notified: boolean): Promise<void> {
      await db
        .updateTable('alerts')
        .set({ state: 'resolved', resolved_at: now, ...(notified ? { last_notified_at: now } : {}) })
        .where('id', '=', id)
        .execute();
    },

    /** Marks alerts still firing as stored seen at `now`: one statement, the ids as one array parameter. */
    async seen(ids: readonly string[], now: Date): Promise<void> {
      if (ids.length === 0) return;
      await db
        .updateTable('alerts')
        .set({ last_seen_at: now })
        .where('id', '=', sql<string>`any(${[...ids]}::bigint[])`)
        .execute();
    },

    /**
     * Records an alert seen firing at `now` (inserted, or its row updated); returns its id. `notified` moves
     * `last_notified_at`; `newEpisode` restarts `started_at`.
     */
    async fire(alert: FiringAlert, now: Date, opts: { notified: boolean; newEpisode: boolean }): Promise<string> {
      const columns = {
        kind: alert.kind,
        severity: alert.severity,
        scope_type: alert.scopeType,
        scope_id: alert.scopeId,
        workspace_id: alert.workspaceId,
        period: alert.period,
        state: 'firing' as const,
        // a once-per-period alert that lapsed and holds again is firing again, silently (alerts/core/lifecycle.ts)
        resolved_at: null,
        title: alert.title,
        details: JSON.stringify(alert.details),
        last_seen_at: now,
        inhibited_by: alert.inhibitedBy,
        ...(opts.notified ? { last_notified_at: now } : {}),
        // an acknowledgement is of one episode: a new one repeats again until someone acknowledges it
        ...(opts.newEpisode ? { started_at: now, acknowledged_at: null, acknowledged_by: null } : {}),
      };
      const row = await db
        .insertInto('alerts')
        .values({ fingerprint: alert.fingerprint, started_at: now, ...columns })
        .onConflict((oc) => oc.column('fingerprint').doUpdateSet(columns))
        .returning('id')
        .executeTakeFirstOrThrow();
      return row.id;
    },

    /** One alert by its row id, or null. */
    async byId(id: string): Promise<AlertRecord | null> {
      const row = await selectAlerts(db).where('id', '=', id).executeTakeFirst();
      return row === undefined ? null : record(row);
    },

    /**
     * Acknowledges the episode that started at `episodeStartedAt`, if it is still firing and nobody has yet: true
     * when this call did it. One conditional UPDATE, so a double click or two replicas acknowledge once.
     */
    async acknowledge(id: string, episodeStartedAt: Date, by: string, now: Date): Promise<boolean> {
      const row = await db
        .updateTable('alerts')
        .set({ acknowledged_at: now, acknowledged_by: by })
        .where('id', '=', id)
        .where('state', '=', 'firing')
        .where('started_at', '=', episodeStartedAt)
        .where('acknowledged_at', 'is', null)
        .returning('id')
        .executeTakeFirst();
      return row !== undefined;
    },

    /**
     * The alerts for `keywarden alerts` and the status page, newest first: the firing ones (and those resolved since
     * `resolvedSince`), or every one with `all`.
     */
    async list(opts: { all: boolean; resolvedSince?: Date }): Promise<AlertRecord[]> {
      let query = selectAlerts(db).orderBy('started_at', 'desc').orderBy('id');
      const since = opts.resolvedSince;
      if (!opts.all && since === undefined) query = query.where('state', '=', 'firing');
      // the status page: what fires, and what resolved lately
      else if (!opts.all && since !== undefined)
        query = query.where((eb) => eb.or([eb('state', '=', 'firing'), eb('resolved_at', '>=', since)]));
      return (await query.execute()).map(record);
    },

    /** The scope ids of the firing alerts of `kinds`: scopes a rule must judge again even when their data stopped. */
    async firingScopeIds(kinds: readonly AlertKind[]): Promise<string[]> {
      const rows = await db
        .selectFrom('alerts')
        .select('scope_id')
        .where('kind', 'in', [...kinds])
        .where('state', '=', 'firing')
        .execute();
      return rows.map((r) => r.scope_id);
    },

    /** How many alerts of each kind exist (ever fired), or are firing now. */
    async countByKind(opts: { firingOnly: boolean }): Promise<Array<{ kind: AlertKind; count: number }>> {
      let query = db.selectFrom('alerts').select(['kind', sql<string>`count(*)`.as('n')]);
      if (opts.firingOnly) query = query.where('state', '=', 'firing');
      const rows = await query.groupBy('kind').execute();
      return rows.map((r) => ({ kind: r.kind, count: Number(r.n) }));
    },

    /** Used ÷ limit of each rate limit a firing `ratelimit.headroom` alert names (its details), for /metrics. */
    async headroomAtRisk(): Promise<Array<{ workspaceId: string; limit: string; utilization: number }>> {
      const rows = await db
        .selectFrom('alerts')
        .select(['scope_id', 'period', sql<number | null>`(details->>'utilization')::float8`.as('utilization')])
        .where('kind', '=', 'ratelimit.headroom')
        .where('state', '=', 'firing')
        .execute();
      return rows.flatMap((r) =>
        r.utilization === null
          ? []
          : [{ workspaceId: r.scope_id, limit: r.period, utilization: Number(r.utilization) }],
      );
    },
  };
}
