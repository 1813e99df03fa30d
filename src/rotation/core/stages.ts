import type { RotationPolicy } from '../../config/policy.ts';
import { DAY_MS } from '../../time.ts';
import { startOfUtcDay } from './days.ts';

/**
 * Reminder stages. Stage N ("N days before") comes due at the start of the UTC day N days before the deadline's
 * day, so a daily run sends "14 days left" on the fourteenth calendar day before, whatever the deadline's hour.
 *
 * Catch-up rule (missed runs, a worker that was down, a policy edit that moved the deadline): only the most urgent
 * stage that is due is decided. If that stage was already sent, nothing is sent; the less urgent stages it passed
 * are skipped for good and listed in the decision, because three reminders in one morning say less than one that
 * says "1 day left". A stage is recorded per key (rotation_reminders), so it is never sent twice, even when a
 * policy edit moves the deadline and the key comes back into a window it already passed.
 */

export const OVERDUE_STAGE = 'overdue';

/** remind_before_days as decided on: unique, most distant first. */
export function reminderStages(policy: Pick<RotationPolicy, 'remind_before_days'>): number[] {
  return [...new Set(policy.remind_before_days)].sort((a, b) => b - a);
}

/** The rotation_reminders.stage value of a reminder stage. */
export function stageRecord(daysBefore: number): string {
  return String(daysBefore);
}

function reminderDueAt(deadline: Date, daysBefore: number): Date {
  return new Date(startOfUtcDay(deadline).getTime() - daysBefore * DAY_MS);
}

/** When the first reminder comes due; the deadline itself when the policy sends none. */
export function firstReminderAt(deadline: Date, stages: readonly number[]): Date {
  const first = stages[0];
  return first === undefined ? deadline : reminderDueAt(deadline, first);
}

/** Whole UTC days from today to the deadline's day (0 on the deadline's day). */
export function daysLeft(deadline: Date, now: Date): number {
  return Math.round((startOfUtcDay(deadline).getTime() - startOfUtcDay(now).getTime()) / DAY_MS);
}

type ReminderStep =
  | { kind: 'not_yet'; firstReminderAt: Date }
  | { kind: 'remind'; stage: number; daysLeft: number; missedStages: number[] }
  | { kind: 'reminded'; stage: number; daysLeft: number; sentAt: Date };

/** Where a key stands before its deadline. `stages` as from reminderStages(); `sent` is this key's recorded stages. */
export function reminderStep(
  deadline: Date,
  stages: readonly number[],
  sent: ReadonlyMap<string, Date>,
  now: Date,
): ReminderStep {
  const due = stages.filter((s) => reminderDueAt(deadline, s).getTime() <= now.getTime());
  const stage = due.at(-1);
  if (stage === undefined) return { kind: 'not_yet', firstReminderAt: firstReminderAt(deadline, stages) };
  const left = daysLeft(deadline, now);
  const sentAt = sent.get(stageRecord(stage));
  if (sentAt !== undefined) return { kind: 'reminded', stage, daysLeft: left, sentAt };
  const missedStages = due.slice(0, -1).filter((s) => !sent.has(stageRecord(s)));
  return { kind: 'remind', stage, daysLeft: left, missedStages };
}
