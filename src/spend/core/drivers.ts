import { DEFAULT_WORKSPACE_NAME, DEFAULT_WORKSPACE_SCOPE_ID } from '../../default-workspace.ts';
import { ORGANIZATION_SCOPE_LABEL } from '../../inventory/core/key-place.ts';
import { formatUsd, type Pico } from '../../money.ts';
import type { DriverCost } from './inputs.ts';
import type { SpendScope } from './scopes.ts';

/**
 * What drives a scope's spend: the workspaces, keys and models that carry most of its month to date, and those whose
 * spend grew most in the last 7 complete days against the 7 before (the growth is what moves a projection). A spend
 * message names them so finance knows whom to ask. Pure.
 */

export type DriverDimension = 'workspace' | 'key' | 'model';

export interface Driver {
  name: string;
  monthToDate: Pico;
  /** Share of the scope's month to date, 0–1. */
  share: number;
  last7: Pico;
  previous7: Pico;
}

export interface DimensionDrivers {
  dimension: DriverDimension;
  /** Largest month to date first. */
  top: Driver[];
  /** Largest increase (last 7 days − the 7 before) first; only those that grew by over 1% of the scope's week. */
  growing: Driver[];
}

/** The dimensions worth breaking a scope down by: a key has only models; a workspace, keys and models. */
const DIMENSIONS: Record<SpendScope['type'], DriverDimension[]> = {
  organization: ['workspace', 'key', 'model'],
  workspace: ['key', 'model'],
  key: ['model'],
};

export interface DriverNames {
  workspaces: ReadonlyMap<string, string>;
  /** `scope`: `organization` for a key in no workspace (its usage rows say null, as the Default Workspace's do). */
  keys: ReadonlyMap<string, { name: string; scope?: string }>;
}

function inNoWorkspace(r: DriverCost, names: DriverNames): boolean {
  return r.keyId !== null && names.keys.get(r.keyId)?.scope === 'organization';
}

export function spendDrivers(
  rows: readonly DriverCost[],
  scope: Pick<SpendScope, 'type' | 'id'>,
  names: DriverNames,
  limit = 3,
): DimensionDrivers[] {
  const mine = rows.filter((r) => inScope(r, scope, names));
  const total = mine.reduce((sum, r) => sum + r.monthToDate, 0n);
  // growth under 1% of the scope's own week before is day-to-day noise, not a driver
  const minGrowth = mine.reduce((sum, r) => sum + r.previous7, 0n) / 100n;
  return DIMENSIONS[scope.type].map((dimension) => {
    const groups = new Map<string, Driver>();
    for (const r of mine) {
      // grouped by id: a successor key often carries its predecessor's name
      const workspace = inNoWorkspace(r, names) ? ORGANIZATION_SCOPE_LABEL : String(r.workspaceId);
      const id = dimension === 'model' ? r.model : dimension === 'key' ? String(r.keyId) : workspace;
      const g = groups.get(id) ?? {
        name: nameOf(r, dimension, names),
        monthToDate: 0n,
        share: 0,
        last7: 0n,
        previous7: 0n,
      };
      g.monthToDate += r.monthToDate;
      g.last7 += r.last7;
      g.previous7 += r.previous7;
      groups.set(id, g);
    }
    const all = [...groups.values()].map((g) => ({ ...g, share: shareOf(g.monthToDate, total) }));
    const byName = (a: Driver, b: Driver) => a.name.localeCompare(b.name);
    return {
      dimension,
      top: all
        .filter((d) => d.monthToDate > 0n)
        .sort((a, b) => compareDesc(a.monthToDate, b.monthToDate) || byName(a, b))
        .slice(0, limit),
      growing: all
        .filter((d) => d.last7 - d.previous7 > minGrowth)
        .sort((a, b) => compareDesc(a.last7 - a.previous7, b.last7 - b.previous7) || byName(a, b))
        .slice(0, limit),
    };
  });
}

const PLURAL: Record<DriverDimension, string> = { workspace: 'workspaces', key: 'keys', model: 'models' };

/**
 * Message fields: per dimension, the top of the month with shares, and the fastest growing with their increase.
 * Kept in fields (not the summary) because a grouped message carries only titles and fields.
 */
export function driverFields(drivers: readonly DimensionDrivers[]): { label: string; value: string }[] {
  const fields: { label: string; value: string }[] = [];
  for (const d of drivers) {
    if (d.top.length > 0) {
      fields.push({
        label: `Top ${PLURAL[d.dimension]} this month`,
        value: d.top.map((t) => `${t.name} ${formatUsd(t.monthToDate)} (${percent(t.share)})`).join('; '),
      });
    }
    if (d.growing.length > 0) {
      fields.push({
        label: `Fastest growing ${PLURAL[d.dimension]} (last 7 days vs the 7 before)`,
        value: d.growing.map((g) => `${g.name} +${formatUsd(g.last7 - g.previous7)}${growthText(g)}`).join('; '),
      });
    }
  }
  return fields;
}

function growthText(d: Driver): string {
  if (d.previous7 === 0n) return ' (new)';
  // whole percent, rounded half up, on the exact amounts
  return ` (+${Number(((d.last7 - d.previous7) * 200n) / d.previous7 + 1n) >> 1}%)`;
}

function percent(share: number): string {
  return `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`;
}

function inScope(r: DriverCost, scope: Pick<SpendScope, 'type' | 'id'>, names: DriverNames): boolean {
  switch (scope.type) {
    case 'organization':
      return true;
    case 'workspace':
      return !inNoWorkspace(r, names) && (r.workspaceId ?? DEFAULT_WORKSPACE_SCOPE_ID) === scope.id;
    case 'key':
      return r.keyId === scope.id;
  }
}

function nameOf(r: DriverCost, dimension: DriverDimension, names: DriverNames): string {
  switch (dimension) {
    case 'model':
      return r.model;
    case 'workspace':
      if (inNoWorkspace(r, names)) return ORGANIZATION_SCOPE_LABEL;
      return r.workspaceId === null ? DEFAULT_WORKSPACE_NAME : (names.workspaces.get(r.workspaceId) ?? r.workspaceId);
    case 'key':
      return r.keyId === null ? 'no API key (Console)' : (names.keys.get(r.keyId)?.name ?? r.keyId);
  }
}

function compareDesc(a: Pico, b: Pico): number {
  return a === b ? 0 : a > b ? -1 : 1;
}

/** Share in millionths, on the exact amounts. */
function shareOf(part: Pico, total: Pico): number {
  return total > 0n ? Number((part * 1_000_000n) / total) / 1_000_000 : 0;
}
