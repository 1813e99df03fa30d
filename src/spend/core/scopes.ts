import type { SpendPolicy } from '../../config/policy.ts';
import { keyReferenceMatches, workspaceReferenceMatches } from '../../config/references.ts';
import { DEFAULT_WORKSPACE_NAME, DEFAULT_WORKSPACE_SCOPE_ID } from '../../default-workspace.ts';
import { keyWorkspaceName } from '../../inventory/core/key-place.ts';
import type { SpendScopeType } from '../../kinds.ts';
import { numberUsdToPico, type Pico, picoToNumberUsd } from '../../money.ts';
import type { DailySpend } from './forecast.ts';
import type { SpendInputs } from './inputs.ts';
import { type ApiLimitSet, mergeLimits, monthlyLimit, type ScopeLimit } from './limits.ts';

/**
 * The scopes spend is projected for (the organization, each workspace, each key) with their daily series and
 * their limits: the Spend Limits API's (when read) and the policy file's. Pure.
 */

/** The organization is one scope (the Default Workspace's scope id is in default-workspace.ts). */
const ORGANIZATION_SCOPE_ID = 'organization';

export interface SpendScope {
  type: SpendScopeType;
  id: string;
  /** For people: the workspace's or key's name (its id when keywarden has not stored it yet). */
  name: string;
  /** The workspace the scope lies in (null: the organization, or the Default Workspace), for routing. */
  workspaceId: string | null;
  workspaceName: string | null;
  /** The lowest monthly limit (the projection is stored with it); null without one. */
  limit: Pico | null;
  /** Every limit of the scope, each in its own period (limits.ts): the API's and the policy file's. */
  limits: ScopeLimit[];
  /** Spend per local date, from the first day read: what a limit's period to date is summed from. */
  days: ReadonlyMap<string, Pico>;
  /** Complete local days before today, oldest first, from the scope's first day with spend. */
  history: DailySpend[];
  monthToDate: Pico;
  todaySoFar: Pico;
}

export interface ScopeBuild {
  /** The organization first, then workspaces, then keys. */
  scopes: SpendScope[];
  /** Limits that name nothing keywarden knows (yet), or more than one thing: for the log. */
  problems: string[];
}

type Inputs = Pick<SpendInputs, 'clock' | 'daily' | 'workspaces' | 'keys'>;

/**
 * One scope per workspace and key that spent anything in the 16 weeks the projection looks at or that has a limit
 * (in the policy file or the API), and the organization. Usage without an API key (the Console's Workbench) counts for its workspace and the
 * organization only.
 */
export function buildScopes(inputs: Inputs, limits: SpendPolicy['limits'], api: ApiLimitSet | null = null): ScopeBuild {
  const { today, monthStart } = inputs.clock;
  const byScope = new Map<string, Map<string, Pico>>();
  const keyWorkspace = new Map<string, string | null>();
  const add = (scope: string, date: string, cost: Pico) => {
    const days = byScope.get(scope) ?? new Map<string, Pico>();
    days.set(date, (days.get(date) ?? 0n) + cost);
    byScope.set(scope, days);
  };
  for (const row of inputs.daily) {
    add(scopeKey('organization', ORGANIZATION_SCOPE_ID), row.date, row.cost);
    // an organization-scoped key's rows say no workspace (null), as the Default Workspace's do; it is in none
    const inNoWorkspace = row.keyId !== null && inputs.keys.get(row.keyId)?.scope === 'organization';
    if (!inNoWorkspace) add(scopeKey('workspace', row.workspaceId ?? DEFAULT_WORKSPACE_SCOPE_ID), row.date, row.cost);
    if (row.keyId !== null) {
      add(scopeKey('key', row.keyId), row.date, row.cost);
      keyWorkspace.set(row.keyId, row.workspaceId);
    }
  }

  const problems: string[] = [...(api?.problems ?? [])];
  const workspaceLimits = resolveLimits(
    'workspaces',
    limits.workspaces,
    [
      ...[...inputs.workspaces].map(([id, name]) => ({ id, name })),
      { id: DEFAULT_WORKSPACE_SCOPE_ID, name: DEFAULT_WORKSPACE_NAME },
    ],
    problems,
  );
  const keyLimits = resolveLimits(
    'keys',
    limits.keys,
    [...inputs.keys].map(([id, k]) => ({ id, name: k.name })),
    problems,
  );

  const workspaceName = (id: string | null) =>
    id === null ? DEFAULT_WORKSPACE_NAME : (inputs.workspaces.get(id) ?? id);
  const series = (type: SpendScopeType, id: string) => {
    const days = byScope.get(scopeKey(type, id)) ?? new Map<string, Pico>();
    const dates = [...days.keys()].sort();
    let monthToDate = 0n;
    for (const [date, cost] of days) if (date >= monthStart) monthToDate += cost;
    return {
      history: dates.filter((d) => d < today).map((date) => ({ date, usd: picoToNumberUsd(days.get(date) ?? 0n) })),
      monthToDate,
      todaySoFar: days.get(today) ?? 0n,
      days,
    };
  };
  const withLimits = (list: ScopeLimit[]) => ({ limit: monthlyLimit(list), limits: list });

  const scopes: SpendScope[] = [
    {
      type: 'organization',
      id: ORGANIZATION_SCOPE_ID,
      name: 'Organization',
      workspaceId: null,
      workspaceName: null,
      ...withLimits(
        mergeLimits(
          api?.organization ?? [],
          limits.organization === null ? null : numberUsdToPico(limits.organization),
        ),
      ),
      ...series('organization', ORGANIZATION_SCOPE_ID),
    },
  ];
  const workspaceIds = new Set([
    ...[...byScope.keys()].filter((k) => k.startsWith('workspace:')).map((k) => k.slice('workspace:'.length)),
    ...workspaceLimits.keys(),
    ...(api?.workspaces.keys() ?? []),
  ]);
  for (const id of [...workspaceIds].sort()) {
    const realId = id === DEFAULT_WORKSPACE_SCOPE_ID ? null : id;
    scopes.push({
      type: 'workspace',
      id,
      name: workspaceName(realId),
      workspaceId: realId,
      workspaceName: workspaceName(realId),
      ...withLimits(mergeLimits(api?.workspaces.get(id) ?? [], workspaceLimits.get(id) ?? null)),
      ...series('workspace', id),
    });
  }
  const keyIds = new Set([...keyWorkspace.keys(), ...keyLimits.keys()]);
  for (const id of [...keyIds].sort()) {
    const stored = inputs.keys.get(id);
    const workspaceId = stored ? stored.workspaceId : (keyWorkspace.get(id) ?? null);
    scopes.push({
      type: 'key',
      id,
      name: stored?.name ?? id,
      workspaceId,
      workspaceName: stored
        ? keyWorkspaceName(stored.scope, workspaceId, workspaceName(workspaceId))
        : workspaceName(workspaceId),
      ...withLimits(mergeLimits([], keyLimits.get(id) ?? null)),
      ...series('key', id),
    });
  }
  return { scopes, problems };
}

/**
 * The keys whose own daily rows a thresholds-only check needs: those the policy file limits (by id or name), and
 * the keys in no workspace (their rows say no workspace, as the Default Workspace's do; buildScopes tells them
 * apart by key). Every other key counts only toward its workspace and the organization.
 */
export function keysToCheck(keys: Inputs['keys'], limits: SpendPolicy['limits']): string[] {
  const refs = Object.keys(limits.keys);
  return [...keys]
    .filter(
      ([id, k]) => k.scope === 'organization' || refs.some((ref) => keyReferenceMatches(ref, { id, name: k.name })),
    )
    .map(([id]) => id);
}

function scopeKey(type: SpendScopeType, id: string): string {
  return `${type}:${id}`;
}

/**
 * Policy limits are keyed by id (`apikey_…`, `wrkspc_…`, `default`) or else by name, never a name for an id
 * (config/references.ts). A name shared by several workspaces or keys (a successor named like its
 * predecessor, an archived workspace's name reused) puts the limit on each of them: a missed limit alert costs more
 * than an extra one, and the log says so.
 */
function resolveLimits(
  section: 'workspaces' | 'keys',
  limits: Record<string, number>,
  known: readonly { id: string; name: string }[],
  problems: string[],
): Map<string, Pico> {
  const resolved = new Map<string, Pico>();
  for (const [ref, usd] of Object.entries(limits)) {
    const matches = known.filter((k) =>
      section === 'keys'
        ? keyReferenceMatches(ref, k)
        : workspaceReferenceMatches(ref, k, [DEFAULT_WORKSPACE_SCOPE_ID]),
    );
    const what = section === 'keys' ? 'key' : 'workspace';
    if (matches.length === 0) {
      problems.push(
        `spend.limits.${section}["${ref}"]: no ${what} has this name or id (yet); the limit is not applied`,
      );
      continue;
    }
    if (matches.length > 1) {
      problems.push(
        `spend.limits.${section}["${ref}"]: ${matches.length} ${what}s have this name (${matches.map((m) => m.id).join(', ')}); the limit applies to each; name one by id to be precise`,
      );
    }
    for (const m of matches) resolved.set(m.id, numberUsdToPico(usd));
  }
  return resolved;
}
