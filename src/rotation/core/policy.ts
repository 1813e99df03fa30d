import type { RotationPolicy } from '../../config/policy.ts';
import { keyPatternMatches, workspaceReferenceMatches } from '../../config/references.ts';
import { DAY_MS } from '../../time.ts';
import { addDays } from './days.ts';
import type { KeyState, MaxAgeSource, PolicySource, Resolution } from './types.ts';

/**
 * A key's deadline: its creation time plus the maximum age of the first rule that matches, in this order
 * whatever the order in the file:
 *   1. an exemption that has not ended (no deadline),
 *   2. a key override (a glob on the key's id when it reads `apikey_…`, else on its name; the first in the file),
 *   3. a workspace override (the workspace's id when it reads `wrkspc_…`, else its name),
 *   4. the organization default.
 * Ids match ids and names match names (config/references.ts): a key named `apikey_01…` is not that key.
 * The key's own `expires_at` wins when it is earlier, even over an exemption: an exemption lifts the policy's
 * maximum age, but Anthropic stops the key at its expiry regardless, so its owner still needs the reminders.
 */
export function resolveDeadline(key: KeyState, policy: RotationPolicy, now: Date): Resolution {
  const rule = maxAgeRule(key, policy, now);
  if (rule.kind === 'exemption') {
    return key.expiresAt === null ? { deadline: null, source: rule } : expiry(key.expiresAt, rule);
  }
  const byAge = addDays(key.createdAt, rule.maxAgeDays);
  if (key.expiresAt !== null && key.expiresAt.getTime() < byAge.getTime()) return expiry(key.expiresAt, rule);
  return { deadline: byAge, source: rule };
}

function expiry(expiresAt: Date, instead: MaxAgeSource): Resolution {
  return { deadline: expiresAt, source: { kind: 'expires_at', expiresAt, instead } };
}

function maxAgeRule(key: KeyState, policy: RotationPolicy, now: Date): MaxAgeSource {
  const exemption = policy.exemptions.find(
    (e) => keyPatternMatches(e.key, key) && now.getTime() < exemptionEnd(e.until),
  );
  if (exemption) return { kind: 'exemption', key: exemption.key, until: exemption.until, reason: exemption.reason };

  for (const o of policy.overrides) {
    if (o.key !== undefined && keyPatternMatches(o.key, key)) {
      return { kind: 'key_override', pattern: o.key, maxAgeDays: o.max_age_days };
    }
  }
  for (const o of policy.overrides) {
    if (o.workspace !== undefined && workspaceReferenceMatches(o.workspace, workspaceOf(key))) {
      return { kind: 'workspace_override', workspace: o.workspace, maxAgeDays: o.max_age_days };
    }
  }
  return { kind: 'default', maxAgeDays: policy.max_age_days };
}

function workspaceOf(key: KeyState) {
  return { id: key.workspaceId, name: key.workspaceName };
}

/** `until` is the last exempt day (UTC): "until 2027-01-31" still covers that whole day. */
function exemptionEnd(until: string): number {
  return Date.parse(`${until}T00:00:00Z`) + DAY_MS;
}

/** The policy source as the `keywarden keys` table and rotation_state.policy_source show it. */
export function describePolicySource(source: PolicySource): string {
  switch (source.kind) {
    case 'exemption':
      return `exemption until ${source.until}`;
    case 'key_override':
      return `override key ${source.pattern}`;
    case 'workspace_override':
      return `workspace ${source.workspace}`;
    case 'default':
      return 'default';
    case 'expires_at':
      return 'expires_at';
  }
}
