import { z } from 'zod';
import type { Query } from './transport.ts';
import { nullableString, timestamp, tokenPageSchema } from './types.ts';

/**
 * The Spend Limits API (`GET /v1/organizations/spend_limits`, beta): the caps Anthropic enforces on a Console
 * organization, its workspaces and its usage tier. Listing is an early access preview for Console organizations:
 * an organization without it is refused with a 403 (`spend_limits_admin_api_writes_not_enabled`, or a bare 403),
 * an Enterprise organization with a 400 `organization_type_not_supported`. Neither says anything about the admin
 * key, so the client marks the endpoint as feature-gated (a bare 403 there does not make keywarden blind).
 */

export const SPEND_LIMITS_BETA = 'spend-limit-reads-2026-09-26';
export const SPEND_LIMITS_PATH = '/v1/organizations/spend_limits';

export const SPEND_LIMIT_PERIODS = ['daily', 'weekly', 'monthly'] as const;
export type SpendLimitPeriod = (typeof SPEND_LIMIT_PERIODS)[number];

/**
 * What a limit applies to. Console organizations have `organization`, `workspace` and `usage_tier`; Enterprise
 * scopes (user, seat tier, group, service) come through as `other` with their type, and keywarden leaves them be.
 */
export type SpendLimitScope =
  | { type: 'organization' }
  | { type: 'workspace'; workspaceId: string }
  | { type: 'usage_tier' }
  | { type: 'other'; scopeType: string };

export interface SpendLimit {
  id: string;
  scope: SpendLimitScope;
  period: SpendLimitPeriod;
  /** Minor units of `currency` (cents for USD), exact; null: no numeric cap at this scope. */
  amountMinor: bigint | null;
  currency: string;
  /** False while extra usage is switched off: the amount is kept but does not apply. */
  isEnabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

// A non-negative integer decimal string: "50000" is $500.00. A float or a sign would be a different API.
const minorAmount = z
  .string()
  .regex(/^\d{1,18}$/, { error: 'expected a non-negative integer amount in minor units, like "50000"' })
  .transform((v) => BigInt(v));

const scopeSchema = z.looseObject({ type: z.string(), workspace_id: nullableString }).transform((s, ctx) => {
  if (s.type === 'organization' || s.type === 'usage_tier') return { type: s.type } as SpendLimitScope;
  if (s.type === 'workspace') {
    if (s.workspace_id === null) {
      ctx.addIssue({ code: 'custom', message: 'a workspace limit without scope.workspace_id' });
      return z.NEVER;
    }
    return { type: 'workspace', workspaceId: s.workspace_id } as SpendLimitScope;
  }
  return { type: 'other', scopeType: s.type } as SpendLimitScope;
});

export const spendLimitSchema = z
  .looseObject({
    id: z.string().min(1),
    amount: minorAmount.nullish().transform((v) => v ?? null),
    currency: z.string().min(1),
    is_enabled: z.boolean(),
    period: z.enum(SPEND_LIMIT_PERIODS),
    scope: scopeSchema,
    created_at: timestamp,
    updated_at: timestamp,
  })
  .transform(
    (l): SpendLimit => ({
      id: l.id,
      scope: l.scope,
      period: l.period,
      amountMinor: l.amount,
      currency: l.currency,
      isEnabled: l.is_enabled,
      createdAt: l.created_at,
      updatedAt: l.updated_at,
    }),
  );

export const spendLimitPageSchema = tokenPageSchema(spendLimitSchema);

export interface SpendLimitsParams {
  scopeTypes?: readonly ('organization' | 'workspace' | 'usage_tier')[];
  workspaceId?: string;
  /** Limits per page (1–1000). Default 1000: an organization has a handful. */
  limit?: number;
}

export function spendLimitsQuery(params: SpendLimitsParams | undefined): Query {
  return { scope_type: params?.scopeTypes, workspace_id: params?.workspaceId, limit: params?.limit ?? 1000 };
}
