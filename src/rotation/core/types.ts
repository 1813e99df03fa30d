import type { Pico } from '../../money.ts';

/**
 * The rotation core's inputs and outputs. The shell (../load.ts) reads these through the repositories (keys,
 * usage, the settled usage watermark, reminders sent) and brings the clock; nothing here does I/O.
 */

/** An API key as rotation sees it. `status` stays an open string: the Admin API adds values over time. */
export interface KeyState {
  id: string;
  name: string;
  status: 'active' | 'inactive' | 'archived' | 'expired' | (string & {});
  /** null is the Default Workspace (the Admin API's own convention). */
  workspaceId: string | null;
  /** `organization`: a key in no workspace (its workspaceId is null too, but it is not a Default Workspace key). */
  scope: 'workspace' | 'organization' | (string & {});
  workspaceName: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  createdByUserId: string | null;
  /** null when the creator left the organization or is unknown: reminders then go to the security route. */
  ownerEmail: string | null;
  partialKeyHint: string | null;
}

/**
 * What the usage data says about one key. The caller sums the key's usage buckets over the drain window
 * (`drain_window_hours` before `now`); a key missing from the map is a key with no usage rows at all.
 */
export interface KeyTraffic {
  /** Start of the newest usage bucket with any tokens for this key; null when none was ever recorded. */
  lastUsageAt: Date | null;
  /** All token kinds summed over the drain window. */
  windowTokens: bigint;
  /** Priced cost over the drain window. */
  windowUsd: Pico;
}

/** How far usage data is known to be complete: the end of the newest minute bucket that ingestion committed. */
export interface UsageFreshness {
  dataUntil: Date | null;
}

/**
 * The rotation_reminders rows, per key id: stage ('14', '7', '1', 'overdue') → when it was sent. A stage present
 * here is never decided again, whatever reruns, restarts or policy edits happen.
 */
export type SentStages = ReadonlyMap<string, ReadonlyMap<string, Date>>;

/** A person's "no" to a requested deactivation (rotation.enforce: approve): who, when, and when to ask again. */
export interface Denial {
  /** `slack:U…`: who pressed Deny. */
  deniedBy: string;
  deniedAt: Date;
  askAgainAt: Date;
  /** Why, as the presser chose it (`its successor is not ready`); null: not said. */
  reason: string | null;
}

export interface RotationInputs {
  keys: readonly KeyState[];
  traffic: ReadonlyMap<string, KeyTraffic>;
  usage: UsageFreshness;
  sent: SentStages;
  /** The newest denial per key id (with `enforce: approve`); absent: never denied. */
  denials?: ReadonlyMap<string, Denial>;
}

/** Where a key's maximum age comes from (see policy.ts for the order). */
export type MaxAgeSource =
  | { kind: 'exemption'; key: string; until: string; reason: string }
  | { kind: 'key_override'; pattern: string; maxAgeDays: number }
  | { kind: 'workspace_override'; workspace: string; maxAgeDays: number }
  | { kind: 'default'; maxAgeDays: number };

/** The rule that set the deadline: a max-age rule, or the key's own expiry when that comes first. */
export type PolicySource = MaxAgeSource | { kind: 'expires_at'; expiresAt: Date; instead: MaxAgeSource };

/** The deadline is null only while an exemption holds and the key has no earlier expiry of its own. */
export type Resolution =
  | { deadline: null; source: Extract<MaxAgeSource, { kind: 'exemption' }> }
  | { deadline: Date; source: PolicySource };

/** The key's traffic over the drain window, for messages ("$4.10 and 1.2M tokens in the last 24 h"). */
export interface RecentTraffic {
  windowHours: number;
  tokens: bigint;
  costUsd: Pico;
  lastUsageAt: Date | null;
}

/** The key that probably replaces an overdue one, and how much of the pair's drain-window tokens it carries. */
export interface Successor {
  keyId: string;
  name: string;
  partialKeyHint: string | null;
  createdAt: Date;
  /** 0..1; null when neither key had tokens in the window. */
  share: number | null;
}

type DeactivationReason = 'drained' | 'forced';

interface DecisionBase {
  key: KeyState;
  deadline: Date | null;
  source: PolicySource;
}

/** Facts shared by every decision taken after the grace period. */
interface EnforcementFacts {
  deadline: Date;
  /** Enforcement starts grace_days after the later of the deadline and the overdue notice. */
  enforceFrom: Date;
  /** From here traffic no longer protects the key (force_after_days); null when the policy never forces. */
  forceFrom: Date | null;
  /**
   * policy.rotation.enforce: false means every enforcement decision is a report of what would be done; approve
   * means a person is asked in Slack and the key is set inactive on an allowed Approve.
   */
  enforce: boolean | 'approve';
  recentTraffic: RecentTraffic;
  successor: Successor | null;
}

/**
 * One decision per key. Kinds that ask the caller to act: `remind` and `overdue` (send, then record `recordStage`
 * in rotation_reminders), `deactivate` (set the key inactive, audited), `ask_approval` (raise
 * rotation.approval_requested with Approve and Deny). `blocked`, `hold`, `deferred`, `would_deactivate` and
 * `denied` are reports; the others only describe the key's state for `keywarden keys`.
 */
export type RotationDecision =
  | (DecisionBase & { kind: 'not_active'; status: string })
  | (DecisionBase & { kind: 'exempt'; deadline: null; until: string; reason: string })
  | (DecisionBase & { kind: 'ok'; deadline: Date; firstReminderAt: Date })
  | (DecisionBase & {
      kind: 'remind';
      deadline: Date;
      /** Days before the deadline, as in remind_before_days. */
      stage: number;
      recordStage: string;
      /** Whole UTC days from today to the deadline's day. */
      daysLeft: number;
      /** Earlier stages that came due while no run sent them; skipped on purpose (see stages.ts). */
      missedStages: number[];
    })
  | (DecisionBase & { kind: 'due_soon'; deadline: Date; stage: number; daysLeft: number; sentAt: Date })
  | (DecisionBase & { kind: 'overdue'; deadline: Date; recordStage: string; enforceFrom: Date })
  | (DecisionBase & { kind: 'grace'; deadline: Date; enforceFrom: Date })
  | (DecisionBase & EnforcementFacts & { kind: 'deactivate'; reason: DeactivationReason })
  | (DecisionBase & EnforcementFacts & { kind: 'would_deactivate'; reason: DeactivationReason })
  | (DecisionBase & EnforcementFacts & { kind: 'deferred'; reason: DeactivationReason; cap: number })
  | (DecisionBase & EnforcementFacts & { kind: 'ask_approval'; reason: DeactivationReason })
  | (DecisionBase & EnforcementFacts & { kind: 'denied'; reason: DeactivationReason; denial: Denial })
  | (DecisionBase & EnforcementFacts & { kind: 'blocked' })
  | (DecisionBase & EnforcementFacts & { kind: 'hold'; reason: string; dataUntil: Date | null });
