import type { AuditOutcomeStep, AuditSubject } from './db/repos/audit.ts';
import type { Repos } from './db/repos/index.ts';
import type { AuditRow } from './db/types.ts';

/** How an audited action ended, as its outcome row records it. */
export interface AuditedOutcome {
  step: AuditOutcomeStep;
  details: Record<string, unknown>;
}

interface AuditedAction {
  subject: AuditSubject;
  /** What the intent row keeps: enough for a later run to settle the action from the outside system's own state. */
  intent: Record<string, unknown>;
  /**
   * Takes the action and says how it ended; null when nobody can tell (no answer, and no way to read the outcome
   * back): the intent then stays unsettled, as after a crash, for the caller's settling run. A throw does the same.
   */
  act: () => Promise<AuditedOutcome | null>;
  /**
   * Writes the outcome row. An action that changes what keywarden stores writes that change in the outcome's
   * transaction, so the record and its proof land together; by default the outcome row alone.
   */
  record?: (intent: AuditRow, outcome: AuditedOutcome) => Promise<void>;
}

/**
 * Every outside action keywarden takes, bracketed by the audit log: the intent row first, then the call, then the
 * outcome row. (operation_id, step) is unique, so an outcome recorded again by a retry is recorded once; an intent
 * without an outcome (a crash between the call and its record) is found by `repos.audit.unsettledIntents` and
 * settled from the outside system's own state.
 */
export async function withAuditedAction(
  repos: Pick<Repos, 'audit'>,
  action: AuditedAction,
): Promise<AuditedOutcome | null> {
  const intent = await repos.audit.recordIntent(action.subject, action.intent);
  const outcome = await action.act();
  if (outcome === null) return null;
  if (action.record) await action.record(intent, outcome);
  else await repos.audit.recordOutcome(intent, outcome.step, outcome.details);
  return outcome;
}
