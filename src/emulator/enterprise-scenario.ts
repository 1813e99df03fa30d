import { z } from 'zod';
import { SPEND_LIMIT_PERIODS } from '../anthropic/spend-limits.ts';

/** The scenario side of a Claude Enterprise organization's spend limits (see enterprise-spend.ts). */

export const ORGANIZATION_TYPES = ['console', 'enterprise'] as const;

/** Where a member's effective limit comes from; the emulator names a seat tier and an RBAC group itself. */
const MEMBER_SOURCES = ['user', 'seat_tier', 'rbac_group', 'organization'] as const;

export const memberLimitSchema = z.strictObject({
  /** A scenario user's email or id. */
  user: z.string().min(1),
  period: z.enum(SPEND_LIMIT_PERIODS).default('monthly'),
  /** null: no limit applies for this period. */
  amount_usd: z.number().nonnegative().nullable(),
  source: z.enum(MEMBER_SOURCES).default('user'),
});

export const increaseRequestSchema = z.strictObject({
  user: z.string().min(1),
  period: z.enum(SPEND_LIMIT_PERIODS).default('monthly'),
  status: z.enum(['pending', 'approved', 'denied']).default('pending'),
  /** Submitted this many days before the start. */
  age_days: z.number().min(0).default(1),
  /** Approved or denied this many days before the start (approved and denied only). */
  resolved_days_ago: z.number().min(0).nullable().default(null),
  /** Who approved or denied it: a scenario user's email or id; null: a scoped Admin API key. */
  resolved_by: z.string().min(1).nullable().default(null),
});

export type MemberLimitSpec = z.output<typeof memberLimitSchema>;
type IncreaseRequestSpec = z.output<typeof increaseRequestSchema>;

/** Problems the schema cannot see: users that do not exist, a resolution on a pending request. */
export function enterpriseSpendProblems(
  s: {
    organization_type: (typeof ORGANIZATION_TYPES)[number];
    members: MemberLimitSpec[];
    increase_requests: IncreaseRequestSpec[];
  },
  users: ReadonlySet<string>,
): string[] {
  const problems: string[] = [];
  if (s.organization_type === 'console' && (s.members.length > 0 || s.increase_requests.length > 0)) {
    problems.push('spend_limits: members and increase_requests need organization_type: enterprise');
  }
  const seen = new Set<string>();
  s.members.forEach((m, i) => {
    if (!users.has(m.user))
      problems.push(`spend_limits.members[${i}].user: "${m.user}" is not a user of this scenario`);
    if (seen.has(`${m.user}:${m.period}`)) {
      problems.push(`spend_limits.members[${i}]: "${m.user}" already has a ${m.period} limit`);
    }
    seen.add(`${m.user}:${m.period}`);
  });
  s.increase_requests.forEach((r, i) => {
    const where = `spend_limits.increase_requests[${i}]`;
    if (!users.has(r.user)) problems.push(`${where}.user: "${r.user}" is not a user of this scenario`);
    if (r.resolved_by !== null && !users.has(r.resolved_by)) {
      problems.push(`${where}.resolved_by: "${r.resolved_by}" is not a user of this scenario`);
    }
    if (r.status === 'pending' && (r.resolved_days_ago !== null || r.resolved_by !== null)) {
      problems.push(`${where}: a pending request has no resolved_days_ago or resolved_by`);
    }
    if (r.resolved_days_ago !== null && r.resolved_days_ago > r.age_days) {
      problems.push(`${where}.resolved_days_ago: resolved before it was submitted`);
    }
  });
  return problems;
}
