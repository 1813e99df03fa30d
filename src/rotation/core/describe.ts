import type { RotationStage } from '../../kinds.ts';
import { describePolicySource } from './policy.ts';
import type { RotationDecision } from './types.ts';

/** A stage with the reminder it stands at: `reminderDays` is set for `due_soon` only. */
export type KeyStage =
  | { stage: Exclude<RotationStage, 'due_soon'>; reminderDays: null }
  | { stage: 'due_soon'; reminderDays: number };

const NOT_ACTIVE_STAGES: ReadonlySet<RotationStage> = new Set<RotationStage>(['inactive', 'archived', 'expired']);

function isNotActiveStage(status: string): status is 'inactive' | 'archived' | 'expired' {
  return NOT_ACTIVE_STAGES.has(status as RotationStage);
}

function keyStageOf(decision: RotationDecision): KeyStage {
  switch (decision.kind) {
    case 'remind':
    case 'due_soon':
      return { stage: 'due_soon', reminderDays: decision.stage };
    case 'not_active':
      return { stage: isNotActiveStage(decision.status) ? decision.status : 'not_active', reminderDays: null };
    default:
      return { stage: decision.kind, reminderDays: null };
  }
}

/**
 * The stage as the `keywarden keys` table shows it: the stage's word, a reminder stage as `due_in_14d`, a key that
 * is not active as its own status (a status the API added later included).
 */
export function describeKeyStage(decision: RotationDecision): string {
  if (decision.kind === 'not_active') return decision.status;
  const s = keyStageOf(decision);
  return s.stage === 'due_soon' ? `due_in_${s.reminderDays}d` : s.stage;
}

/** The row the enforce-rotation job keeps in rotation_state for the table and the weekly security digest. */
export function rotationStateOf(
  decision: RotationDecision,
): KeyStage & { deadline: Date | null; policySource: string } {
  return { deadline: decision.deadline, policySource: describePolicySource(decision.source), ...keyStageOf(decision) };
}
