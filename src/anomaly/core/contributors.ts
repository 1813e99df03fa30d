import { type Pico, picoToNumberUsd } from '../../money.ts';
import { MINUTE_MS } from '../../time.ts';

/**
 * What a runaway is spending on: the models and token kinds that carry the spend of its run, so the alert can say
 * "92% claude-opus-4-5 output tokens" and the reader knows where to look (a retry loop re-sending a long prompt shows
 * as input or cache writes; an agent stuck generating shows as output); whether its rate is still rising; and, where
 * the data has it, who is behind it.
 */

/** One priced usage row: a minute, a model and a token kind, with its exact cost. */
export interface SpendBreakdownRow {
  minute: Date;
  model: string;
  /** As priced: uncached_input, cache_read, cache_creation_5m, cache_creation_1h, output, web_search. */
  tokenKind: string;
  cost: Pico;
}

interface Contributor {
  name: string;
  cost: Pico;
  /** Fraction of the period's total (0–1), for display. */
  share: number;
}

export interface ContributorRanking {
  /** Largest first; ties by name so the message does not change between runs. */
  top: Contributor[];
  /** Everything after `top`, added up (count 0 when nothing was left out). */
  rest: { count: number; cost: Pico; share: number };
}

export interface RunawayContributors {
  total: Pico;
  models: ContributorRanking;
  tokenKinds: ContributorRanking;
}

/** Ranks models and token kinds by cost over the minutes from `from` to `until`, both included. */
export function runawayContributors(
  rows: readonly SpendBreakdownRow[],
  from: Date,
  until: Date,
  limit = 3,
): RunawayContributors {
  const byModel = new Map<string, Pico>();
  const byKind = new Map<string, Pico>();
  let total = 0n;
  for (const row of rows) {
    const t = row.minute.getTime();
    if (t < from.getTime() || t > until.getTime()) continue;
    byModel.set(row.model, (byModel.get(row.model) ?? 0n) + row.cost);
    byKind.set(row.tokenKind, (byKind.get(row.tokenKind) ?? 0n) + row.cost);
    total += row.cost;
  }
  return { total, models: rank(byModel, total, limit), tokenKinds: rank(byKind, total, limit) };
}

function rank(costs: ReadonlyMap<string, Pico>, total: Pico, limit: number): ContributorRanking {
  const sorted = [...costs]
    .map(([name, cost]) => ({ name, cost, share: shareOf(cost, total) }))
    .sort((a, b) => (a.cost === b.cost ? a.name.localeCompare(b.name) : a.cost > b.cost ? -1 : 1));
  const rest = sorted.slice(limit);
  const restCost = rest.reduce((sum, c) => sum + c.cost, 0n);
  return { top: sorted.slice(0, limit), rest: { count: rest.length, cost: restCost, share: shareOf(restCost, total) } };
}

/** Share in millionths, computed on the exact amounts: a float division of two large bigints would lose digits. */
function shareOf(part: Pico, total: Pico): number {
  return total > 0n ? Number((part * 1_000_000n) / total) / 1_000_000 : 0;
}

/**
 * Who is behind a runaway's spend (a user or a service account), from the usage and cost analytics where the
 * organization has them. Organization-controlled text: the alert shows it escaped, like a key's name.
 */
export interface SpendActor {
  name: string;
  /** Share of the run's spend (0–1), when known. */
  share: number | null;
}

type RateDirection = 'rising' | 'steady' | 'falling';

/** How the run's rate moves: its last complete minutes against as many minutes before them. */
export interface RateTrend {
  direction: RateDirection;
  /** Minutes on each side. */
  minutes: number;
  recentHourlyUsd: number;
  earlierHourlyUsd: number;
}

/** Minutes compared on each side, at most: long enough to smooth single requests, short enough to be news. */
const TREND_MINUTES = 5;
/** Fewer complete minutes of run on each side than this: too early to say. */
const TREND_MIN_MINUTES = 2;
/** Rising when the recent rate is at least this multiple of the earlier one; falling when at most its inverse. */
const TREND_RATIO = 1.25;

/**
 * Whether the run that began at `from` is still rising: the spend of its last complete minutes (up to `dataUntil`;
 * later, partial minutes would read as a fall) against as many minutes just before them, all inside the run. Null
 * while the run is too short to compare two stretches of TREND_MIN_MINUTES.
 */
export function rateTrend(rows: readonly SpendBreakdownRow[], from: Date, dataUntil: Date): RateTrend | null {
  const runMinutes = Math.floor((dataUntil.getTime() - from.getTime()) / MINUTE_MS) + 1;
  const minutes = Math.min(TREND_MINUTES, Math.floor(runMinutes / 2));
  if (minutes < TREND_MIN_MINUTES) return null;
  const recentFrom = dataUntil.getTime() - (minutes - 1) * MINUTE_MS;
  const earlierFrom = recentFrom - minutes * MINUTE_MS;
  let recent = 0n;
  let earlier = 0n;
  for (const row of rows) {
    const t = row.minute.getTime();
    if (t > dataUntil.getTime() || t < earlierFrom) continue;
    if (t >= recentFrom) recent += row.cost;
    else earlier += row.cost;
  }
  const hourly = (cost: Pico) => (picoToNumberUsd(cost) / minutes) * 60;
  const direction: RateDirection =
    recent * 100n >= earlier * BigInt(TREND_RATIO * 100) && recent > earlier
      ? 'rising'
      : earlier * 100n >= recent * BigInt(TREND_RATIO * 100) && earlier > recent
        ? 'falling'
        : 'steady';
  return { direction, minutes, recentHourlyUsd: hourly(recent), earlierHourlyUsd: hourly(earlier) };
}
