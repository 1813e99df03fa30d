import { z } from 'zod';
import { centsToPico, type Pico } from '../money.ts';
import { AdminApiError, AdminKeyRejectedError } from './errors.ts';
import { Paged } from './pages.ts';
import { SPEND_LIMIT_PERIODS, type SpendLimitPeriod } from './spend-limits.ts';
import type { ApiRequest, Query } from './transport.ts';
import { nullableString, timestamp, tokenPageSchema } from './types.ts';

/**
 * A Claude Enterprise organization's per-member spend limits (GA, no beta header):
 * `GET /v1/organizations/spend_limits/effective` (each member's effective limit per period and the spend so far in
 * it), `GET /v1/organizations/spend_limit_increase_requests[/{id}]` (members asking for more) and `POST …/{id}/approve`
 * and `…/deny` (answering them). A Console organization
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

const increaseRequestShape = {
  id: z.string().min(1),
  actor: actorSchema,
  period: z.enum(SPEND_LIMIT_PERIODS),
  status: z.enum(['pending', 'approved', 'denied']),
  created_at: timestamp,
  resolved_at: timestamp.nullish().transform((v) => v ?? null),
  spend_summary: memberSpendSchema.nullish().transform((v) => v ?? null),
};

const toIncreaseRequest = (r: z.output<z.ZodObject<typeof increaseRequestShape>>): IncreaseRequest => ({
  id: r.id,
  requester: r.actor,
  period: r.period,
  status: r.status,
  createdAt: r.created_at,
  resolvedAt: r.resolved_at,
  summary: r.spend_summary,
});

const increaseRequestSchema = z.looseObject(increaseRequestShape).transform(toIncreaseRequest);

/** An approval's answer: the request, now approved, and the member's own limit the approval wrote. */
export interface ApprovedIncrease {
  request: IncreaseRequest;
  /** null where the API names no limit (its type allows it). */
  limit: { amount: Pico | null; currency: string; period: SpendLimitPeriod } | null;
}

const approvedIncreaseSchema = z
  .looseObject({
    ...increaseRequestShape,
    spend_limit: z
      .looseObject({
        amount: minorAmount.nullish().transform((v) => v ?? null),
        currency: z.string().min(1),
        period: z.enum(SPEND_LIMIT_PERIODS),
      })
      .nullish()
      .transform((v) => v ?? null),
  })
  .transform(
    (r): ApprovedIncrease => ({
      request: toIncreaseRequest(r),
      limit:
        r.spend_limit === null
          ? null
          : {
              amount: r.spend_limit.amount === null ? null : centsToPico(r.spend_limit.amount),
              currency: r.spend_limit.currency,
              period: r.spend_limit.period,
            },
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

/**
 * The API refused to approve or deny a request (a 4xx other than the organization's type and a refused admin key):
 * most often it is no longer pending (answered in the Console meanwhile), or it does not exist. The caller reads the
 * request again to say which; `message` is the API's own, scrubbed like every AdminApiError's.
 */
export class IncreaseAnswerRefusedError extends AdminApiError {
  constructor(cause: AdminApiError) {
    super(cause.message, cause, { cause });
    this.name = 'IncreaseAnswerRefusedError';
  }
}

/**
 * One call about an increase request: a 400 `organization_type_not_supported` said as `NotEnterpriseError`; for an
 * answer (approve, deny), another refusal of the request as `IncreaseAnswerRefusedError`. A read refused (404: no such
 * request) stays a plain AdminApiError: what failed is the read, not an answer. A refused admin key and server
 * trouble as they are.
 */
async function increaseCall<T>(call: Promise<T>, kind: 'read' | 'answer'): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (!(err instanceof AdminApiError) || err instanceof AdminKeyRejectedError) throw err;
    if (err.status === 400 && err.errorCode === 'organization_type_not_supported') throw new NotEnterpriseError(err);
    if (kind === 'answer' && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429) {
      throw new IncreaseAnswerRefusedError(err);
    }
    throw err;
  }
}

interface EnterpriseTransport {
  request<S extends z.ZodType>(req: ApiRequest<S>): Promise<z.output<S>>;
}

const requestPath = (id: string) => `${INCREASE_REQUESTS_PATH}/${encodeURIComponent(id)}`;

/** One increase request at a time: read it, approve it, deny it (AdminClient's `increaseRequests`). */
export class IncreaseRequestsClient {
  readonly #transport: EnterpriseTransport;

  constructor(transport: EnterpriseTransport) {
    this.#transport = transport;
  }

  /** The request as it is now, with its live summary while pending. */
  get(requestId: string, opts?: { signal?: AbortSignal }): Promise<IncreaseRequest> {
    return increaseCall(
      this.#transport.request({
        method: 'GET',
        path: requestPath(requestId),
        schema: increaseRequestSchema,
        signal: opts?.signal,
        featureGated: true,
      }),
      'read',
    );
  }

  /**
   * Approves a pending request: the member's own limit becomes `amountMinor` (cents for USD) for `period`. One
   * attempt: a write whose answer was lost is not sent again blindly; the caller reads the request to learn what
   * became of it. A request no longer pending, or unknown: `IncreaseAnswerRefusedError`.
   */
  approve(
    requestId: string,
    p: { amountMinor: string; period: SpendLimitPeriod },
    opts?: { signal?: AbortSignal },
  ): Promise<ApprovedIncrease> {
    if (!/^\d{1,18}$/.test(p.amountMinor)) {
      throw new RangeError(`amountMinor: "${p.amountMinor}" is not a non-negative integer amount in minor units`);
    }
    return increaseCall(
      this.#transport.request({
        method: 'POST',
        path: `${requestPath(requestId)}/approve`,
        body: { amount: p.amountMinor, period: p.period },
        schema: approvedIncreaseSchema,
        signal: opts?.signal,
        featureGated: true,
        maxAttempts: 1,
      }),
      'answer',
    );
  }

  /** Denies a request (a denied one is denied again harmlessly; an approved one: `IncreaseAnswerRefusedError`). */
  deny(requestId: string, opts?: { signal?: AbortSignal }): Promise<IncreaseRequest> {
    return increaseCall(
      this.#transport.request({
        method: 'POST',
        path: `${requestPath(requestId)}/deny`,
        body: {},
        schema: increaseRequestSchema,
        signal: opts?.signal,
        featureGated: true,
        maxAttempts: 1,
      }),
      'answer',
    );
  }
}
