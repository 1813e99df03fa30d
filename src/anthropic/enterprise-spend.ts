import { z } from 'zod';
import { centsToPico, type Pico } from '../money.ts';
import { AdminApiError } from './errors.ts';
import { Paged } from './pages.ts';
import { SPEND_LIMIT_PERIODS, type SpendLimitPeriod } from './spend-limits.ts';
import type { Query } from './transport.ts';
import { nullableString, timestamp, tokenPageSchema } from './types.ts';

/**
 * A Claude Enterprise organization's per-member spend limits (GA, no beta header):
 * `GET /v1/organizations/spend_limits/effective` (each member's effective limit per period and the spend so far in
 * it) and `GET /v1/organizations/spend_limit_increase_requests` (members asking for more). A Console organization
 * gets 400 `organization_type_not_supported`: the client says so with `NotEnterpriseError`, and as a feature the
 * organization lacks, never as a refused admin key.
 */

export const MEMBER_SPEND_PATH = '/v1/organizations/spend_limits/effective';
export const INCREASE_REQUESTS_PATH = '/v1/organizations/spend_limit_increase_requests';

/** Who a row is about: a member (name and email are the organization's text, hostile), or a scoped admin key. */
type SpendActor =
  | { type: 'user'; userId: string; email: string | null; name: string | null; deleted: boolean }
  | { type: 'api_key'; keyId: string }
  | { type: 'other'; actorType: string };

export interface MemberSpend {
  actor: SpendActor;
  period: SpendLimitPeriod;
  /** The effective limit in picounits of `currency` (picodollars for USD); null: no limit for this period. */
  limit: Pico | null;
  /** Spend so far in the current period, same unit; zero when the API's reading is unavailable. */
  spent: Pico;
  currency: string;
  /** Where the limit comes from (`user`, `seat_tier`, `rbac_group`, `organization`, …). */
  source: string;
  spendLimitId: string;
}

type IncreaseRequestStatus = 'pending' | 'approved' | 'denied';

export interface IncreaseRequest {
  id: string;
  requester: SpendActor;
  period: SpendLimitPeriod;
  status: IncreaseRequestStatus;
  createdAt: Date;
  resolvedAt: Date | null;
  /** The requester's live limit and spend, while pending. */
  summary: MemberSpend | null;
}

const actorSchema = z
  .looseObject({
    type: z.string(),
    user_id: z.string().optional(),
    email_address: nullableString,
    name: nullableString,
    deleted: z.boolean().optional(),
    scoped_api_key_id: z.string().optional(),
  })
  .transform((a, ctx): SpendActor => {
    if (a.type === 'user_actor') {
      if (!a.user_id) {
        ctx.addIssue({ code: 'custom', message: 'a user_actor without user_id' });
        return z.NEVER;
      }
      return { type: 'user', userId: a.user_id, email: a.email_address, name: a.name, deleted: a.deleted === true };
    }
    if (a.type === 'scoped_api_key_actor' && a.scoped_api_key_id)
      return { type: 'api_key', keyId: a.scoped_api_key_id };
    return { type: 'other', actorType: a.type };
  });

// integer minor units ("50000" = $500.00); the spend may carry up to three decimals of a minor unit
const minorAmount = z
  .string()
  .regex(/^\d{1,18}$/, { error: 'expected a non-negative integer amount in minor units, like "50000"' });
const minorSpend = z
  .string()
  .regex(/^\d{1,18}(\.\d{1,3})?$/, { error: 'expected a non-negative decimal in minor units, like "12050.5"' });

const memberSpendSchema = z
  .looseObject({
    actor: actorSchema,
    amount: minorAmount.nullish().transform((v) => v ?? null),
    currency: z.string().min(1),
    period: z.enum(SPEND_LIMIT_PERIODS),
    period_to_date_spend: minorSpend,
    source: z.looseObject({ type: z.string() }),
    spend_limit_id: z.string(),
  })
  .transform(
    (s): MemberSpend => ({
      actor: s.actor,
      period: s.period,
      limit: s.amount === null ? null : centsToPico(s.amount),
      spent: centsToPico(s.period_to_date_spend),
      currency: s.currency,
      source: s.source.type,
      spendLimitId: s.spend_limit_id,
    }),
  );

const increaseRequestSchema = z
  .looseObject({
    id: z.string().min(1),
    actor: actorSchema,
    period: z.enum(SPEND_LIMIT_PERIODS),
    status: z.enum(['pending', 'approved', 'denied']),
    created_at: timestamp,
    resolved_at: timestamp.nullish().transform((v) => v ?? null),
    spend_summary: memberSpendSchema.nullish().transform((v) => v ?? null),
  })
  .transform(
    (r): IncreaseRequest => ({
      id: r.id,
      requester: r.actor,
      period: r.period,
      status: r.status,
      createdAt: r.created_at,
      resolvedAt: r.resolved_at,
      summary: r.spend_summary,
    }),
  );

export const memberSpendPageSchema = tokenPageSchema(memberSpendSchema);
export const increaseRequestPageSchema = tokenPageSchema(increaseRequestSchema);

export interface MemberSpendParams {
  periods?: readonly SpendLimitPeriod[];
  /** At most 100 (`user_…`). */
  userIds?: readonly string[];
  /** Members per page (1–1000). */
  limit?: number;
}

export function memberSpendQuery(p: MemberSpendParams | undefined): Query {
  if ((p?.userIds?.length ?? 0) > 100) throw new RangeError('userIds: at most 100 per request');
  return { period: p?.periods, user_ids: p?.userIds, limit: p?.limit ?? 1000 };
}

export interface IncreaseRequestParams {
  statuses?: readonly IncreaseRequestStatus[];
  actorIds?: readonly string[];
  limit?: number;
}

export function increaseRequestQuery(p: IncreaseRequestParams | undefined): Query {
  return { status: p?.statuses, actor_ids: p?.actorIds, limit: p?.limit ?? 1000 };
}

/** The organization is a Console one: the per-member limits and increase requests do not exist for it. */
export class NotEnterpriseError extends AdminApiError {
  constructor(cause: AdminApiError) {
    super(
      `${cause.endpoint}: not an Enterprise organization (${cause.status} ${cause.errorCode}); per-member spend limits and increase requests are Claude Enterprise only`,
      { ...cause, attempts: cause.attempts },
      { cause },
    );
    this.name = 'NotEnterpriseError';
  }
}

/** The pages of `inner`, with a 400 `organization_type_not_supported` said as `NotEnterpriseError`. */
export function enterpriseOnly<T, P extends { data: T[] }>(inner: Paged<T, P>): Paged<T, P> {
  return new Paged(async function* () {
    try {
      yield* inner.pages();
    } catch (err) {
      if (err instanceof AdminApiError && err.status === 400 && err.errorCode === 'organization_type_not_supported') {
        throw new NotEnterpriseError(err);
      }
      throw err;
    }
  });
}
