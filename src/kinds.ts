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

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** True when a kind pattern (`usage.*`, `spend.threshold`) can match at least one known kind. */
export function kindPatternMatchesAny(pattern: string): boolean {
  return ALERT_KINDS.some((k) => matchesGlob(pattern, k));
}

/**
 * A key's rotation stage in one word, as rotation_state.stage records it for the `keywarden keys` table and the
 * weekly security digest. `due_soon` covers every reminder stage, sent now or before (its `reminderDays` says
 * which); a key that is not active is in its status's stage, or `not_active` for a status the API added later.
 */
const ROTATION_STAGES = [
  'ok',
  'due_soon',
  'overdue',
  'grace',
  'blocked',
  'hold',
  'deactivate',
  'would_deactivate',
  'deferred',
  'exempt',
  'inactive',
  'archived',
  'expired',
  'not_active',
] as const;

export type RotationStage = (typeof ROTATION_STAGES)[number];
