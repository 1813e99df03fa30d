/**
 * Which runaway keys the kill switch may set inactive in one detection run. Pure: the caller brings the keys above
 * the hard cap, what it knows of them and the time; the caller acts.
 *
 * A deactivation cuts a production key off, so one run's data is never enough and never acts on many keys:
 * - evidence from two polls: a key counts once it was above the cap after one poll and is still above it after a
 *   later one (each poll rewrites the trailing window, so a single inflated answer fills it at once);
 * - many keys at once is not a runaway: when `MASS_TRIP_KEYS` keys or more, or at least two that are half or more of
 *   the keys with spend, cross the cap in the same run, the likelier story is a data fault or a launch day, and none
 *   is touched;
 * - counts the workspace's own rate limit makes impossible are not believed (the caller says which);
 * - at most `max_per_run` per run and `max_per_hour` in any hour; the rest are alerted, not acted on.
 */

const MASS_TRIP_KEYS = 3;
const MASS_TRIP_SHARE = 0.5;

export interface KillSwitchCandidate {
  keyId: string;
  currentHourlyUsd: number;
  /** When the poll was committed whose data first showed the key above the cap in this episode; null: not before. */
  evidenceSince: Date | null;
  /** Why its usage cannot be true (above the workspace's rate limit), or null. */
  impossible: string | null;
}

interface KillSwitchLimits {
  max_per_run: number;
  max_per_hour: number;
}

type KillSwitchDecision =
  | { kind: 'act' }
  | { kind: 'awaiting_evidence' }
  | { kind: 'refused'; reason: string }
  | { kind: 'capped'; reason: string };

export function planKillSwitch(input: {
  candidates: readonly KillSwitchCandidate[];
  /** Keys with spend judged in this run: the organization the candidates are a share of. */
  keysWithSpend: number;
  /** When the poll this run reads was committed. */
  poll: Date;
  /** Kill switch deactivations started in the last hour. */
  inLastHour: number;
  limits: KillSwitchLimits;
}): Map<string, KillSwitchDecision> {
  const out = new Map<string, KillSwitchDecision>();
  const n = input.candidates.length;
  const share = input.keysWithSpend > 0 ? n / input.keysWithSpend : 1;
  if (n >= MASS_TRIP_KEYS || (n >= 2 && share >= MASS_TRIP_SHARE)) {
    const reason =
      `${n} keys crossed the hard cap together (${Math.round(share * 100)}% of the keys with spend): more likely a ` +
      'data fault or a launch day than that many runaways, so keywarden sets none of them inactive; a person decides';
    for (const c of input.candidates) out.set(c.keyId, { kind: 'refused', reason });
    return out;
  }
  const eligible: KillSwitchCandidate[] = [];
  for (const c of input.candidates) {
    if (c.impossible !== null) out.set(c.keyId, { kind: 'refused', reason: c.impossible });
    else if (c.evidenceSince === null || c.evidenceSince.getTime() >= input.poll.getTime()) {
      out.set(c.keyId, { kind: 'awaiting_evidence' });
    } else eligible.push(c);
  }
  const room = Math.max(0, Math.min(input.limits.max_per_run, input.limits.max_per_hour - input.inLastHour));
  eligible.sort((a, b) => b.currentHourlyUsd - a.currentHourlyUsd || a.keyId.localeCompare(b.keyId));
  for (const [i, c] of eligible.entries()) {
    if (i < room) out.set(c.keyId, { kind: 'act' });
    else {
      out.set(c.keyId, { kind: 'capped', reason: cappedReason(input.limits, input.inLastHour) });
    }
  }
  return out;
}

/** Why a key the kill switch would act on is alerted instead: its per-run or per-hour limit is reached. */
export function cappedReason(limits: KillSwitchLimits, inLastHour: number): string {
  return (
    `the kill switch's limit is reached (anomaly.auto_deactivate.max_per_run: ${limits.max_per_run}, ` +
    `max_per_hour: ${limits.max_per_hour}; ${inLastHour} in the last hour): alerted, not acted on`
  );
}
