import { sql } from 'kysely';
import type { Db } from '../index.ts';
import type { NotificationsTable } from '../types.ts';

type Channel = NotificationsTable['channel'];
type Status = 'pending' | 'sending' | 'sent' | 'failed';

/** A digest for one target, as the outbox keeps it. */
interface DigestRow {
  channel: Channel;
  target: string;
}

/** One alert message for one target; `alertId` is set when the message speaks for a single alert. */
interface AlertMessageRow {
  alertId: string | null;
  fingerprint: string;
  event: 'firing' | 'repeat' | 'resolved';
  channel: Channel;
  target: string;
  /** The message as JSON; its shape is the outbox's (notify/outbox.ts). */
  payload: object;
}

/** A row this run leased: `attempts` counts this one, and only the run holding that count may record the outcome. */
export interface LeasedDelivery {
  id: string;
  fingerprint: string;
  event: NotificationsTable['event'];
  channel: Channel;
  target: string;
  attempts: number;
  /** As stored: alerts write the alert payload, digests the digest payload (notify/outbox.ts). */
  payload: Record<string, unknown>;
}

/** What a turn leaves in its row (notify/delivery.ts decides it). */
type DeliveryRecord =
  | { status: 'sent'; providerId: string; threadTs: string | null; sentAt: Date }
  | { status: 'pending'; nextAttemptAt: Date; untried: true }
  | { status: 'pending'; nextAttemptAt: Date; untried: false; lastError: string }
  | { status: 'failed'; lastError: string };

/** One delivery of an alert's messages, for `keywarden alerts`. */
interface DeliveryListing {
  id: string;
  event: NotificationsTable['event'];
  channel: Channel;
  target: string;
  status: Status;
  attempts: number;
  possiblyDuplicate: boolean;
  lastError: string | null;
  sentAt: Date | null;
  nextAttemptAt: Date;
  /** The alerts the message speaks for. */
  fingerprints: string[];
}

/** The payload's `fingerprints` (the alerts an alert message speaks for) overlaps these. */
function speaksFor(fingerprints: readonly string[]) {
  return sql<boolean>`payload->'fingerprints' ?| ${sql.val([...fingerprints])}::text[]`;
}

/**
 * The outbox (`notifications`): every message keywarden sends, one row per target, written in the transaction that
 * decides it and delivered by deliver-notifications. The only code that writes the table.
 */
export function outboxRepo(db: Db) {
  /** Only the claimant of this attempt changes the row: a run that took it over after the lease wins. */
  const mine = (row: Pick<LeasedDelivery, 'id' | 'attempts'>, status: Status) =>
    db
      .updateTable('notifications')
      .where('id', '=', row.id)
      .where('status', '=', status)
      .where('attempts', '=', row.attempts);

  return {
    /**
     * An alert acknowledged in Slack: an `acknowledged` message to each PagerDuty target its firing of this episode
     * (from `episodeStartedAt`) went to, the firing's payload with it, so its incident is acknowledged too. The
     * caller acknowledges an episode once, so these are written once. Returns how many.
     */
    async acknowledgeOnPagerDuty(fingerprint: string, episodeStartedAt: Date, now: Date): Promise<number> {
      const r = await sql`
        INSERT INTO notifications (alert_id, fingerprint, event, sequence, channel, target, payload, next_attempt_at)
        SELECT DISTINCT ON (f.target) f.alert_id, f.fingerprint, 'acknowledged',
               (SELECT coalesce(max(a.sequence) + 1, 0) FROM notifications a
                 WHERE a.fingerprint = f.fingerprint AND a.event = 'acknowledged' AND a.channel = 'pagerduty'
                   AND a.target = f.target),
               'pagerduty', f.target, f.payload, ${now}
          FROM notifications f
         WHERE f.fingerprint = ${fingerprint} AND f.channel = 'pagerduty' AND f.event = 'firing'
           AND f.next_attempt_at >= ${episodeStartedAt}
         ORDER BY f.target, f.sequence DESC
      `.execute(db);
      return Number(r.numAffectedRows ?? 0n);
    },

    /**
     * Writes one alert message. Called inside the transaction that changes the alert's state (alertsRepo.raising),
     * so the state change and its message are both recorded or neither is.
     */
    async insertAlertMessage(row: AlertMessageRow, now: Date): Promise<void> {
      await db
        .insertInto('notifications')
        .values({
          alert_id: row.alertId,
          fingerprint: row.fingerprint,
          event: row.event,
          // each repeat (and each new episode) of one alert gets its own row under the unique constraint
          sequence: sql<number>`(SELECT coalesce(max(sequence) + 1, 0) FROM notifications
            WHERE fingerprint = ${row.fingerprint} AND event = ${row.event} AND channel = ${row.channel} AND target = ${row.target})`,
          channel: row.channel,
          target: row.target,
          payload: JSON.stringify(row.payload),
          next_attempt_at: now,
        })
        .execute();
    },

    /** The targets that already have the digest named by `fingerprint`. */
    async digestTargets(fingerprint: string): Promise<DigestRow[]> {
      return db
        .selectFrom('notifications')
        .select(['channel', 'target'])
        .where('fingerprint', '=', fingerprint)
        .where('event', '=', 'digest')
        .execute();
    },

    /**
     * Writes a digest for each target that does not have it yet (the unique key makes a rerun insert nothing);
     * returns how many rows were new.
     */
    async insertDigest(fingerprint: string, payload: string, rows: readonly DigestRow[], now: Date): Promise<number> {
      if (rows.length === 0) return 0;
      const inserted = await db
        .insertInto('notifications')
        .values(
          rows.map((r) => ({
            alert_id: null,
            fingerprint,
            event: 'digest' as const,
            sequence: 0,
            channel: r.channel,
            target: r.target,
            payload,
            next_attempt_at: now,
            created_at: now,
          })),
        )
        .onConflict((oc) => oc.columns(['fingerprint', 'event', 'sequence', 'channel', 'target']).doNothing())
        .returning('id')
        .execute();
      return inserted.length;
    },

    /**
     * Leases up to `batch` due rows (FOR UPDATE SKIP LOCKED: replicas never take the same row) and counts an attempt
     * for each. `leaseOf` says until when, and which rows may be duplicates. Leased rows stay `pending`, not yet in
     * flight: a process that dies before reaching one leaves it unflagged.
     */
    async lease(
      now: Date,
      batch: number,
      leaseOf: (due: Array<{ id: string; status: 'pending' | 'sending' }>) => {
        leasedUntil: Date;
        possiblyDuplicate: string[];
      },
    ): Promise<LeasedDelivery[]> {
      return db.transaction().execute(async (trx) => {
        const due = await trx
          .selectFrom('notifications')
          .select(['id', 'status'])
          .where('status', 'in', ['pending', 'sending'])
          .where('next_attempt_at', '<=', now)
          .orderBy('id')
          .limit(batch)
          .forUpdate()
          .skipLocked()
          .execute();
        if (due.length === 0) return [];
        const lease = leaseOf(due.map((d) => ({ id: d.id, status: d.status === 'sending' ? 'sending' : 'pending' })));
        const flagged = lease.possiblyDuplicate;
        const rows = await trx
          .updateTable('notifications')
          .set({
            status: 'pending',
            attempts: sql`attempts + 1`,
            next_attempt_at: lease.leasedUntil,
            ...(flagged.length === 0
              ? {}
              : { possibly_duplicate: sql<boolean>`possibly_duplicate OR id = ANY(${sql.val(flagged)}::bigint[])` }),
          })
          .where(
            'id',
            'in',
            due.map((d) => d.id),
          )
          .returning(['id', 'fingerprint', 'event', 'channel', 'target', 'payload', 'attempts'])
          .execute();
        return rows.sort((a, b) => Number(a.id) - Number(b.id));
      });
    },

    /** Puts a leased row in flight; false when another run took it over after the lease expired (it is theirs now). */
    async startSending(row: Pick<LeasedDelivery, 'id' | 'attempts'>): Promise<boolean> {
      const r = await mine(row, 'pending').set({ status: 'sending' }).returning('id').executeTakeFirst();
      return r !== undefined;
    },

    /** Gives a leased row back untried, due again at `until` (its attempt is not counted). */
    async hold(row: Pick<LeasedDelivery, 'id' | 'attempts'>, until: Date): Promise<void> {
      await mine(row, 'pending')
        .set({ attempts: row.attempts - 1, next_attempt_at: until })
        .execute();
    },

    /** Records the outcome of a row this run put in flight. */
    async record(row: Pick<LeasedDelivery, 'id' | 'attempts'>, r: DeliveryRecord): Promise<void> {
      const update = mine(row, 'sending');
      if (r.status === 'sent') {
        await update
          .set({
            status: 'sent',
            provider_id: r.providerId,
            thread_ts: r.threadTs,
            sent_at: r.sentAt,
            last_error: null,
          })
          .execute();
      } else if (r.status === 'failed') {
        await update.set({ status: 'failed', last_error: r.lastError }).execute();
      } else if (r.untried) {
        await update.set({ status: 'pending', attempts: row.attempts - 1, next_attempt_at: r.nextAttemptAt }).execute();
      } else {
        await update.set({ status: 'pending', last_error: r.lastError, next_attempt_at: r.nextAttemptAt }).execute();
      }
    },

    /**
     * Whether a message before row `beforeId` to this target about any of these alerts is still to be sent: events of
     * one alert reach a target in the order they happened, whatever the retries of the earlier ones.
     */
    async unsentBefore(
      beforeId: string,
      channel: Channel,
      target: string,
      fingerprints: readonly string[],
    ): Promise<boolean> {
      const earlier = await db
        .selectFrom('notifications')
        .select('id')
        // the unsent rows first: few, and on the due index
        .where('status', 'in', ['pending', 'sending'])
        .where('channel', '=', channel)
        .where('target', '=', target)
        .where('id', '<', beforeId)
        .where('event', '!=', 'digest')
        .where(speaksFor(fingerprints))
        .limit(1)
        .executeTakeFirst();
      return earlier !== undefined;
    },

    /**
     * The newest `firing` message before row `beforeId` to this Slack target about any of these alerts: the post
     * that opened their current episode's thread.
     */
    async threadRoot(
      beforeId: string,
      channel: Channel,
      target: string,
      fingerprints: readonly string[],
    ): Promise<{ status: Status; providerId: string | null } | null> {
      const root = await db
        .selectFrom('notifications')
        .select(['status', 'provider_id'])
        .where('channel', '=', channel)
        .where('target', '=', target)
        .where('event', '=', 'firing')
        .where('id', '<', beforeId)
        .where(speaksFor(fingerprints))
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      return root === undefined ? null : { status: root.status, providerId: root.provider_id };
    },

    /** Every message that speaks for any of these alerts, oldest first. */
    async deliveriesFor(fingerprints: readonly string[]): Promise<DeliveryListing[]> {
      if (fingerprints.length === 0) return [];
      const rows = await db
        .selectFrom('notifications')
        .select([
          'id',
          'event',
          'channel',
          'target',
          'status',
          'attempts',
          'possibly_duplicate',
          'last_error',
          'sent_at',
          'next_attempt_at',
          sql<string[]>`ARRAY(SELECT jsonb_array_elements_text(payload->'fingerprints'))`.as('fingerprints'),
        ])
        .where(speaksFor(fingerprints))
        .orderBy('id')
        .execute();
      return rows.map((r) => ({
        id: r.id,
        event: r.event,
        channel: r.channel,
        target: r.target,
        status: r.status,
        attempts: r.attempts,
        possiblyDuplicate: r.possibly_duplicate,
        lastError: r.last_error,
        sentAt: r.sent_at === null ? null : new Date(r.sent_at),
        nextAttemptAt: new Date(r.next_attempt_at),
        fingerprints: r.fingerprints,
      }));
    },

    /** One message's payload and where it was posted (`channelId:ts` for Slack), or null. */
    async message(id: string): Promise<{ payload: Record<string, unknown>; providerId: string | null } | null> {
      const row = await db
        .selectFrom('notifications')
        .select(['payload', 'provider_id'])
        .where('id', '=', id)
        .executeTakeFirst();
      return row === undefined ? null : { payload: row.payload, providerId: row.provider_id };
    },

    /** Messages not sent yet (pending or in flight). */
    async pendingCount(): Promise<number> {
      const row = await db
        .selectFrom('notifications')
        .select(sql<string>`count(*)`.as('n'))
        .where('status', 'in', ['pending', 'sending'])
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    },
  };
}

export type OutboxRepo = ReturnType<typeof outboxRepo>;
