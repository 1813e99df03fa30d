import { matchesGlob } from './glob.ts';

/** Every alert kind keywarden raises; routes match on these (with globs), so the list is part of the policy file's contract. */
export const ALERT_KINDS = [
  'rotation.due_soon',
  'rotation.overdue',
  'rotation.deactivated',
  'rotation.blocked',
  'rotation.approval_requested',
  'key.orphaned',
  'key.identity',
  'spend.threshold',
  'spend.forecast',
  'spend.limit_changed',
  'usage.runaway',
  'ratelimit.headroom',
  'pricing.unknown_model',
  'cost.drift',
  'keywarden.blind',
  'keywarden.job_failing',
  'keywarden.policy_unmatched',
] as const;

export type AlertKind = (typeof ALERT_KINDS)[number];

/** What an alert is about (its scope id names which one); spend is projected for the first three; `member`: a user (id). */
export type ScopeType = 'organization' | 'workspace' | 'key' | 'model' | 'job' | 'policy' | 'member';
export type SpendScopeType = Extract<ScopeType, 'organization' | 'workspace' | 'key'>;

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** What an alert is about: the columns that the rules that raise alerts and the alert store both speak of. */
export interface AlertSubject {
  kind: AlertKind;
  severity: Severity;
  /** `key`, `workspace`, `organization`, …: with `scopeId`, the thing the alert speaks of. */
  scopeType: ScopeType;
  scopeId: string;
  workspaceId: string | null;
  /** Distinguishes occurrences: a billing month, `2026-11@0.8` for a spend threshold, '' when none. */
  period: string;
  /** Plain, untrusted text; the renderer escapes it. */
  title: string;
}

/** True when a kind pattern (`usage.*`, `spend.threshold`) can match at least one known kind. */
export function kindPatternMatchesAny(pattern: string): boolean {
  return ALERT_KINDS.some((k) => matchesGlob(pattern, k));
}

/** The stages of an active key past its deadline: overdue, in grace, or waiting on a decision about it. */
export const OVERDUE_ROTATION_STAGES = [
  'overdue',
  'grace',
  'blocked',
  'hold',
  'deactivate',
  'would_deactivate',
  'deferred',
  'ask_approval',
  'denied',
] as const;

/**
 * A key's rotation stage in one word, as rotation_state.stage records it for the `keywarden keys` table and the
 * weekly security digest. `due_soon` covers every reminder stage, sent now or before (its `reminderDays` says
 * which); a key that is not active is in its status's stage, or `not_active` for a status the API added later.
 */
const ROTATION_STAGES = [
  'ok',
  'due_soon',
  ...OVERDUE_ROTATION_STAGES,
  'exempt',
  'inactive',
  'archived',
  'expired',
  'not_active',
] as const;

export type RotationStage = (typeof ROTATION_STAGES)[number];
