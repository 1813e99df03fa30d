import type { AlertKind } from '../../kinds.ts';

/**
 * An alert's identity: kind + scope + period. Two evaluations that see the same condition for the same subject in
 * the same period produce the same fingerprint, so the store updates one row instead of raising a second alert.
 * `period` is whatever makes a new occurrence distinct (a billing month, `2026-11@0.8` for a threshold, '' when
 * the condition has no period).
 */
export function alertFingerprint(kind: AlertKind, scopeType: string, scopeId: string, period: string): string {
  // The parts are joined with a separator that cannot appear unescaped, so ('a|b', 'c') and ('a', 'b|c') differ.
  return [kind, scopeType, scopeId, period].map((p) => p.replaceAll('\\', '\\\\').replaceAll('|', '\\|')).join('|');
}
