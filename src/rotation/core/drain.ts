import { HOUR_MS } from '../../time.ts';
import type { KeyTraffic, RecentTraffic, UsageFreshness } from './types.ts';

/**
 * The drain check: an overdue key is retired only when it carried no traffic in the drain window, and only when
 * the usage data is recent enough to say so. Usage appears "typically within 5 minutes" of a request, sometimes
 * later, so data complete to within 30 minutes is trusted; the unknown tail is far shorter than any sensible
 * drain window (24 h by default).
 */
const USAGE_MAX_LAG_MS = 30 * 60_000;

export function recentTraffic(traffic: KeyTraffic | undefined, windowHours: number): RecentTraffic {
  return {
    windowHours,
    tokens: traffic?.windowTokens ?? 0n,
    costUsd: traffic?.windowUsd ?? 0n,
    lastUsageAt: traffic?.lastUsageAt ?? null,
  };
}

/** Any sign of use counts: tokens, cost, or a last-use time inside the window. Disagreeing data errs toward "in use". */
export function hadTrafficInWindow(t: RecentTraffic, now: Date): boolean {
  const windowStart = now.getTime() - t.windowHours * HOUR_MS;
  return t.tokens > 0n || t.costUsd > 0n || (t.lastUsageAt !== null && t.lastUsageAt.getTime() >= windowStart);
}

/** Why the usage data cannot be trusted for a drain check at `now`, or null when it can. */
export function usageStaleness(usage: UsageFreshness, now: Date): string | null {
  const limit = `${Math.round(USAGE_MAX_LAG_MS / 60_000)} min`;
  if (usage.dataUntil === null) {
    return `no usage data has been ingested yet: cannot tell whether the key drained (usage must be complete to within ${limit})`;
  }
  const lagMs = now.getTime() - usage.dataUntil.getTime();
  if (lagMs <= USAGE_MAX_LAG_MS) return null;
  return `usage data stale since ${usage.dataUntil.toISOString()} (${formatLag(lagMs)} behind, limit ${limit}): cannot tell whether the key drained`;
}

function formatLag(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours} h` : `${Math.floor(hours / 24)} days`;
}
