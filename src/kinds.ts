import { matchesGlob } from './glob.ts';

/** Every alert kind keywarden raises; routes match on these (with globs), so the list is part of the policy file's contract. */
export const ALERT_KINDS = [
  'rotation.due_soon',
  'rotation.overdue',
  'rotation.deactivated',
  'rotation.blocked',
  'key.orphaned',
  'spend.threshold',
  'spend.forecast',
  'usage.runaway',
  'ratelimit.headroom',
  'pricing.unknown_model',
  'keywarden.blind',
  'keywarden.job_failing',
  'keywarden.policy_unmatched',
] as const;

export type AlertKind = (typeof ALERT_KINDS)[number];

/** What an alert is about (its scope id names which one); spend is projected for the first three. */
export type ScopeType = 'organization' | 'workspace' | 'key' | 'model' | 'job' | 'policy';
export type SpendScopeType = Extract<ScopeType, 'organization' | 'workspace' | 'key'>;

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** True when a kind pattern (`usage.*`, `spend.threshold`) can match at least one known kind. */
export function kindPatternMatchesAny(pattern: string): boolean {
  return ALERT_KINDS.some((k) => matchesGlob(pattern, k));
}
