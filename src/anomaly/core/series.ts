import { DEFAULT_WORKSPACE_SCOPE_ID } from '../../default-workspace.ts';
import { HOUR_MS } from '../../time.ts';
import type { HourlySpend } from './baseline.ts';

/**
 * Shaping stored usage into what the pure detector reads. The Default Workspace has no id in the Admin API; the
 * detector's scopes call it `default`.
 */

export const DEFAULT_WORKSPACE_SCOPE = DEFAULT_WORKSPACE_SCOPE_ID;

export function workspaceScopeId(workspaceId: string | null): string {
  return workspaceId ?? DEFAULT_WORKSPACE_SCOPE;
}

/** One hour of a scope's spend, as stored: from 1h rows (no squares) or 1m rows (with Σ of squared minute sums). */
export interface HourCell {
  hour: Date;
  usd: number;
  /** Null when (part of) the hour comes from hourly rows, which no longer know their minutes. */
  sumOfSquares: number | null;
  /** Minutes of the hour with spend (from 1m rows); null like `sumOfSquares`. */
  activeMinutes: number | null;
  /** Of those, the minutes whose minute before had spend too; null like `sumOfSquares`. */
  followingMinutes: number | null;
}

/**
 * A scope's hourly history from `from` (inclusive, rounded up to a whole hour: a partial first hour would read as a
 * quiet one) to `until` (exclusive), one entry per hour, 0 for hours without usage. Hours before `from` are absent:
 * that is how "no data yet" (the key did not exist, or keywarden had not backfilled that far) is told from "no
 * usage" (see typicalRate).
 */
export function hourlyHistory(cells: readonly HourCell[], from: Date, until: Date): HourlySpend[] {
  const first = Math.ceil(from.getTime() / HOUR_MS);
  const last = Math.floor(until.getTime() / HOUR_MS);
  if (last <= first) return [];
  const usd = new Float64Array(last - first);
  const squares = new Float64Array(last - first);
  const active = new Float64Array(last - first);
  const following = new Float64Array(last - first);
  const mixed = new Uint8Array(last - first);
  for (const c of cells) {
    const i = Math.floor(c.hour.getTime() / HOUR_MS) - first;
    if (i < 0 || i >= usd.length) continue;
    usd[i]! += c.usd;
    if (c.sumOfSquares === null) mixed[i] = 1;
    else {
      squares[i]! += c.sumOfSquares;
      active[i]! += c.activeMinutes ?? 0;
      following[i]! += c.followingMinutes ?? 0;
    }
  }
  const out: HourlySpend[] = [];
  for (let i = 0; i < usd.length; i++) {
    const hour = new Date((first + i) * HOUR_MS);
    // An hour with no usage at all has no lumps either: its squares are known to be 0.
    out.push(
      mixed[i]
        ? { hour, usd: usd[i]! }
        : {
            hour,
            usd: usd[i]!,
            sumOfSquares: squares[i]!,
            activeMinutes: active[i]!,
            followingMinutes: following[i]!,
          },
    );
  }
  return out;
}

/**
 * Where a scope's history starts: hours before keywarden's first stored usage (its backfill's start) or before the
 * scope existed are unknown, not quiet.
 */
export function historyStart(coverage: Date, createdAt: Date | null | undefined): Date {
  return createdAt && createdAt.getTime() > coverage.getTime() ? createdAt : coverage;
}

/** The largest fraction of a workspace's spend one of its keys carried, from each key's total (1 without spend). */
export function largestKeyShare(keyTotals: readonly number[]): number {
  const sum = keyTotals.reduce((a, b) => a + b, 0);
  return sum > 0 ? Math.max(...keyTotals) / sum : 1;
}
