import type { Pico } from '../../money.ts';

/**
 * What a runaway is spending on: the models and token kinds that carry the spend of its run, so the alert can say
 * "92% claude-opus-4-5 output tokens" and the reader knows where to look (a retry loop re-sending a long prompt shows
 * as input or cache writes; an agent stuck generating shows as output).
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
