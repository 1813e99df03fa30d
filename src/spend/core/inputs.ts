import type { Pico } from '../../money.ts';

/**
 * What a spend projection run reads: daily spend per workspace and key in the organization's timezone, the
 * month-to-date and the last two weeks per key and model (for "top drivers"), and the names of workspaces and keys
 * (limits name them; messages show them).
 */

/** One local day of one (workspace, key) pair; null ids: the Default Workspace, usage without an API key. */
export interface DailyCost {
  date: string;
  workspaceId: string | null;
  keyId: string | null;
  cost: Pico;
}

/** Spend of one (workspace, key, model) in the month to date, the last 7 complete days and the 7 before them. */
export interface DriverCost {
  workspaceId: string | null;
  keyId: string | null;
  model: string;
  monthToDate: Pico;
  last7: Pico;
  previous7: Pico;
}

/** The instant the data is complete to, placed in the organization's calendar. */
export interface SpendClock {
  /** The poll watermark (data is complete to here), or now when it is later or when nothing was polled yet. */
  asOf: Date;
  /** Local date of `asOf` (YYYY-MM-DD): the day in progress; its month is the month projected. */
  today: string;
  /** Local date of the month's first day. */
  monthStart: string;
  /** Elapsed part of today at `asOf` (a DST day is 23 or 25 hours long). */
  fractionElapsed: number;
}

/** A key as spend sees it: `scope` is `organization` for a key in no workspace (its usage rows say null). */
export interface SpendKey {
  name: string;
  workspaceId: string | null;
  scope: string;
}

export interface SpendInputs {
  clock: SpendClock;
  /** From 16 weeks before today (what the projection looks at) to `asOf`. */
  daily: DailyCost[];
  drivers: DriverCost[];
  workspaces: Map<string, string>;
  keys: Map<string, SpendKey>;
}
