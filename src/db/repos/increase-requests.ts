import type { Db } from '../index.ts';
import type { IncreaseRequestState } from '../types.ts';

/** A pending increase request as keywarden first saw it, and the amount its Approve sets. */
interface SeenIncrease {
  requestId: string;
  userId: string;
  period: 'daily' | 'weekly' | 'monthly';
  currency: string;
  /** Minor units (cents for USD); null: no limit applied. */
  limitMinor: bigint | null;
  /** What Approve sets, minor units; null: the message offers Deny only. */
  amountMinor: bigint | null;
  requestedAt: Date;
}

export interface IncreaseRecord extends SeenIncrease {
  state: IncreaseRequestState;
  answeredBy: string | null;
  answeredAt: Date | null;
  limitAfterMinor: bigint | null;
}

/**
 * One press's hold on a request: when it claimed it and who (`slack:U…`). Release and settle apply only while the
 * request is still held by this claim, so a press whose claim was taken over as stale changes nothing.
 */
export interface IncreaseClaim {
  requestId: string;
  at: Date;
  by: string;
}

/** How a request ended: by whom (`slack:U…`, or `console`), when, and for an approval the limit the API wrote. */
interface Settlement {
  state: 'approved' | 'denied';
  answeredBy: string;
  answeredAt: Date;
  limitAfterMinor?: bigint | null;
  notificationId?: string | null;
}

const minor = (v: string | null): bigint | null => (v === null ? null : BigInt(v));
const text = (v: bigint | null | undefined): string | null => (v === null || v === undefined ? null : v.toString());

/** The `increase_requests` table (migrations/019_increase_requests.ts). */
export function increaseRequestsRepo(db: Db) {
  const columns = [
    'request_id',
    'user_id',
    'period',
    'currency',
    'limit_minor',
    'amount_minor',
    'requested_at',
    'state',
    'answered_by',
    'answered_at',
    'limit_after_minor',
  ] as const;
  type Row = {
    request_id: string;
    user_id: string;
    period: 'daily' | 'weekly' | 'monthly';
    currency: string;
    limit_minor: string | null;
    amount_minor: string | null;
    requested_at: Date;
    state: IncreaseRequestState;
    answered_by: string | null;
    answered_at: Date | null;
    limit_after_minor: string | null;
  };
  const recordOf = (r: Row): IncreaseRecord => ({
    requestId: r.request_id,
    userId: r.user_id,
    period: r.period,
    currency: r.currency,
    limitMinor: minor(r.limit_minor),
    amountMinor: minor(r.amount_minor),
    requestedAt: new Date(r.requested_at),
    state: r.state,
    answeredBy: r.answered_by,
    answeredAt: r.answered_at === null ? null : new Date(r.answered_at),
    limitAfterMinor: minor(r.limit_after_minor),
  });

  return {
    /**
     * Records pending requests not seen before; one already recorded keeps what it was first seen with (the amount
     * its message offers).
     */
    async recordSeen(rows: readonly SeenIncrease[]): Promise<void> {
      if (rows.length === 0) return;
      await db
        .insertInto('increase_requests')
        .values(
          rows.map((r) => ({
            request_id: r.requestId,
            user_id: r.userId,
            period: r.period,
            currency: r.currency,
            limit_minor: text(r.limitMinor),
            amount_minor: text(r.amountMinor),
            requested_at: r.requestedAt,
          })),
        )
        .onConflict((oc) => oc.column('request_id').doNothing())
        .execute();
    },

    /** The request keywarden recorded under the API's id, or null. */
    async byRequestId(requestId: string): Promise<IncreaseRecord | null> {
      const row = await db
        .selectFrom('increase_requests')
        .select(columns)
        .where('request_id', '=', requestId)
        .executeTakeFirst();
      return row === undefined ? null : recordOf(row);
    },

    /** The members with a request keywarden asked about: the scopes its `spend.limit_changed` run covers. */
    async members(): Promise<string[]> {
      const rows = await db.selectFrom('increase_requests').select('user_id').distinct().execute();
      return rows.map((r) => r.user_id);
    },

    /**
     * Takes the request for one press's call to the Admin API: from `pending`, or from a claim older than
     * `staleBefore` (a process that died mid-call). One UPDATE, so of two presses at once one gets it. Null: taken.
     */
    async claim(
      requestId: string,
      state: 'approving' | 'denying',
      by: string,
      now: Date,
      staleBefore: Date,
    ): Promise<IncreaseClaim | null> {
      const row = await db
        .updateTable('increase_requests')
        .set({ state, claimed_at: now, answered_by: by })
        .where('request_id', '=', requestId)
        .where((eb) =>
          eb.or([
            eb('state', '=', 'pending'),
            eb.and([eb('state', 'in', ['approving', 'denying']), eb('claimed_at', '<', staleBefore)]),
          ]),
        )
        .returning('request_id')
        .executeTakeFirst();
      return row === undefined ? null : { requestId, at: now, by };
    },

    /**
     * Gives a claim back (the Admin API call changed nothing): the request is pending again. False: the claim was no
     * longer this press's (taken over as stale), nothing changed.
     */
    async release(claim: IncreaseClaim): Promise<boolean> {
      const r = await db
        .updateTable('increase_requests')
        .set({ state: 'pending', claimed_at: null, answered_by: null })
        .where('request_id', '=', claim.requestId)
        .where('state', 'in', ['approving', 'denying'])
        .where('claimed_at', '=', claim.at)
        .where('answered_by', '=', claim.by)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    /**
     * Records how the request ended, while `claim` still holds it. False: the claim was taken over (or the request
     * ended another way), nothing written.
     */
    async settle(claim: IncreaseClaim, s: Settlement): Promise<boolean> {
      const r = await db
        .updateTable('increase_requests')
        .set({
          state: s.state,
          answered_by: s.answeredBy,
          answered_at: s.answeredAt,
          limit_after_minor: text(s.limitAfterMinor),
          notification_id: s.notificationId ?? null,
        })
        .where('request_id', '=', claim.requestId)
        .where('state', 'in', ['approving', 'denying'])
        .where('claimed_at', '=', claim.at)
        .where('answered_by', '=', claim.by)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },
  };
}
