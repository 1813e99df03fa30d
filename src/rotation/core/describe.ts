import { describePolicySource } from './policy.ts';
import type { RotationDecision } from './types.ts';

/**
 * A key's rotation stage in one word, for the `keywarden keys` table and rotation_state.stage:
 *   ok, due_in_14d (any reminder stage, sent now or before), overdue, grace, blocked, hold, deactivate,
 *   would_deactivate, deferred, exempt, or the status of a key that is not active (inactive, archived, expired).
 */
export function describeKeyStage(decision: RotationDecision): string {
  switch (decision.kind) {
    case 'remind':
    case 'due_soon':
      return `due_in_${decision.stage}d`;
    case 'not_active':
      return decision.status;
    default:
      return decision.kind;
  }
}

/** The row the enforce-rotation job keeps in rotation_state for the table and the weekly security digest. */
export function rotationStateOf(decision: RotationDecision): {
  deadline: Date | null;
  policySource: string;
  stage: string;
} {
  return {
    deadline: decision.deadline,
    policySource: describePolicySource(decision.source),
    stage: describeKeyStage(decision),
  };
}
