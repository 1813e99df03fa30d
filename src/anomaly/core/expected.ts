import type { AnomalyPolicy } from '../../config/policy.ts';
import { formatUsd, numberUsdToPico } from '../../money.ts';
import type { Baseline } from './baseline.ts';
import type { RunawayState } from './runaway.ts';

/**
 * "Mark as expected" (a button on the runaway alert): a person says the spend is planned (a batch job, a backfill, a
 * load test) until a given time. While the mark holds, the key (or workspace) is judged as if the marked rate were
 * its typical rate: the bar becomes max(factor × covered rate, the usual bar), so the planned spend does not fire
 * again, and a much larger jump (factor times the marked rate: ×5 by default) still does. The AWS Cost Anomaly
 * Detection idea of "planned activity", kept per scope in Postgres (table anomaly_marks) so a restart keeps it.
 */

export interface ExpectedMark {
  scopeType: 'key' | 'workspace';
  scopeId: string;
  /** The rate (USD/hour) the mark covers: the alert's current rate when it was pressed. */
  coveredHourlyUsd: number;
  startsAt: Date;
  until: Date;
  /** Who marked it (`slack:U…`). */
  markedBy: string;
}

/** The mark that holds for a scope at `at` (the largest covered rate when several do), or null. */
export function holdingMark(
  marks: readonly ExpectedMark[],
  scopeType: ExpectedMark['scopeType'],
  scopeId: string,
  at: Date,
): ExpectedMark | null {
  let best: ExpectedMark | null = null;
  for (const m of marks) {
    if (m.scopeType !== scopeType || m.scopeId !== scopeId) continue;
    if (m.startsAt.getTime() > at.getTime() || m.until.getTime() <= at.getTime()) continue;
    if (best === null || m.coveredHourlyUsd > best.coveredHourlyUsd) best = m;
  }
  return best;
}

/** The baseline a marked scope is judged by: typical at least the covered rate (the stored baseline is unchanged). */
export function markedBaseline(baseline: Baseline, mark: ExpectedMark | null): Baseline {
  if (mark === null || !(mark.coveredHourlyUsd > baseline.typicalHourlyUsd)) return baseline;
  return { ...baseline, typicalHourlyUsd: mark.coveredHourlyUsd, source: 'expected' };
}

/**
 * Whether a mark ends the episode `state` is in: an episode that was firing when the mark was made (it started
 * before). The alert resolves with the mark's note; a later episode (a larger jump) is not the one that was marked.
 */
export function markEndsEpisode(state: RunawayState | null | undefined, mark: ExpectedMark | null): boolean {
  if (mark === null || !state?.firing || state.since === null) return false;
  return state.since.getTime() <= mark.startsAt.getTime();
}

/** What the resolve message says of a mark (plain text; the renderer escapes it). */
export function expectedNote(mark: ExpectedMark, policy: AnomalyPolicy): string {
  const perHour = (usd: number) => `${formatUsd(numberUsdToPico(usd))}/h`;
  const until = `${mark.until.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const bar = Math.max(policy.factor * mark.coveredHourlyUsd, policy.min_hourly_usd);
  return (
    `Marked as expected by ${mark.markedBy} until ${until}: spend up to ${perHour(mark.coveredHourlyUsd)} is not ` +
    `a runaway until then; above ${perHour(bar)} it still alerts.`
  );
}
