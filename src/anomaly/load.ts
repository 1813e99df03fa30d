import type { AnomalyPolicy } from '../config/policy.ts';
import type { Repos } from '../db/repos/index.ts';
import { DEFAULT_WORKSPACE_NAME } from '../default-workspace.ts';
import { ORGANIZATION_SCOPE_LABEL } from '../inventory/core/key-place.ts';
import { usdToPico } from '../money.ts';
import { HOUR_MS } from '../time.ts';
import { readUsageFreshness } from '../usage/freshness.ts';
import { BASELINE_WEEKS, type Baseline, typicalRate, type WorkspaceProfile } from './core/baseline.ts';
import type { SpendBreakdownRow } from './core/contributors.ts';
import {
  baselinesDue,
  type DetectionInput,
  type DetectionRange,
  type DetectionScopes,
  type DetectionSeries,
  detectionRange,
  type KeyInfo,
  scopeKey,
  scopesToJudge,
  type WorkspaceInfo,
  workspaceOfKey,
} from './core/plan.ts';
import type { MinuteSpend } from './core/runaway.ts';
import {
  DEFAULT_WORKSPACE_SCOPE,
  type HourCell,
  historyStart,
  hourlyHistory,
  largestKeyShare,
  workspaceScopeId,
} from './core/series.ts';
import { markFromRow, statesFromRows } from './state.ts';

/** The hourly look-back typicalRate reads: BASELINE_WEEKS weeks and the neighbouring hours. */
const LOOKBACK_HOURS = BASELINE_WEEKS * 168 + 2;
/** Keys whose hourly history is read at once for their baselines: ~200k key-hours, some 20 MB. */
const BASELINE_BATCH_KEYS = 250;

type DetectionRepos = Pick<Repos, 'watermarks' | 'usage' | 'anomaly' | 'keys'>;

/**
 * What one detection run at `now` reads: the settled watermark, the recent minutes of every key and workspace, the
 * stored states, the keys and workspaces judged, and the baselines of the hour that are due (computed here, a batch
 * of keys at a time: five weeks of hours for every active key would not fit in memory at once). Reads only.
 */
export async function loadDetectionInput(
  repos: DetectionRepos,
  policy: AnomalyPolicy,
  now: Date,
): Promise<DetectionInput> {
  const { settled } = await readUsageFreshness(repos);
  const range = detectionRange(now, settled, policy);
  if (range === null) {
    const series = { keys: new Map(), workspaces: new Map() };
    return { settled, series, states: new Map(), keys: new Map(), workspaces: new Map(), baselines: new Map() };
  }
  const series = seriesOf(await repos.usage.minuteSpend(range.from, range.until));
  const states = statesFromRows(await repos.anomaly.states());
  const scopes = scopesToJudge(series, states);
  const keys = await loadKeys(repos, scopes.keys);
  const workspaces = await loadWorkspaces(repos);
  const due = baselinesDue(scopes, states, range.hour);
  const baselines = await loadBaselines(repos, due, { series, keys, workspaces }, range, policy);
  const marks = (await repos.anomaly.holdingMarks(now)).map(markFromRow);
  return { settled, series, states, keys, workspaces, baselines, marks };
}

function seriesOf(
  rows: ReadonlyArray<{ keyId: string | null; workspaceId: string | null; minute: Date; usd: number }>,
): DetectionSeries {
  const keys = new Map<string, { workspaceScope: string; recent: MinuteSpend[] }>();
  const workspaces = new Map<string, MinuteSpend[]>();
  for (const row of rows) {
    const m = { minute: row.minute, usd: row.usd };
    const workspaceScope = workspaceScopeId(row.workspaceId);
    const list = workspaces.get(workspaceScope);
    if (list) list.push(m);
    else workspaces.set(workspaceScope, [m]);
    if (row.keyId === null) continue;
    const key = keys.get(row.keyId);
    if (key) {
      key.recent.push(m);
      key.workspaceScope = workspaceScope;
    } else keys.set(row.keyId, { workspaceScope, recent: [m] });
  }
  return { keys, workspaces };
}

/**
 * The baselines of the range's hour for the scopes due. A key too new for a history of its own is judged by its
 * workspace's profile, so the workspaces of the keys due are read too.
 */
async function loadBaselines(
  repos: DetectionRepos,
  due: DetectionScopes,
  known: Pick<DetectionInput, 'series' | 'keys' | 'workspaces'>,
  range: DetectionRange,
  policy: AnomalyPolicy,
): Promise<Map<string, Baseline>> {
  const out = new Map<string, Baseline>();
  if (due.keys.length === 0 && due.workspaces.length === 0) return out;
  const { hour, dataUntil } = range;
  const workspaceOf = (id: string) => workspaceOfKey(id, known.keys, known.series);
  const coverage = (await repos.usage.coverageStart()) ?? hour;
  const lookbackFrom = new Date(hour.getTime() - LOOKBACK_HOURS * HOUR_MS);

  const profileWorkspaces = [...new Set([...due.workspaces, ...due.keys.map(workspaceOf)])];
  const filter = {
    ids: profileWorkspaces.filter((w) => w !== DEFAULT_WORKSPACE_SCOPE),
    withDefault: profileWorkspaces.includes(DEFAULT_WORKSPACE_SCOPE),
  };
  const workspaceCells = cellsBy(
    await repos.usage.hourlySpendOfWorkspaces(filter, lookbackFrom, hour),
    workspaceScopeId,
  );
  const keyTotals = new Map<string, number[]>();
  for (const r of await repos.usage.spendByKey(filter, lookbackFrom, hour)) {
    const scope = workspaceScopeId(r.workspaceId);
    keyTotals.set(scope, [...(keyTotals.get(scope) ?? []), r.usd]);
  }
  const profiles = new Map<string, WorkspaceProfile>();
  for (const w of profileWorkspaces) {
    const from = historyStart(coverage, known.workspaces.get(w)?.createdAt);
    profiles.set(w, {
      history: hourlyHistory(workspaceCells.get(w) ?? [], from, hour),
      largestKeyShare: largestKeyShare(keyTotals.get(w) ?? []),
    });
  }
  for (const w of due.workspaces) {
    out.set(scopeKey('workspace', w), typicalRate(profiles.get(w)!.history, null, dataUntil, policy));
  }
  for (let i = 0; i < due.keys.length; i += BASELINE_BATCH_KEYS) {
    const batch = due.keys.slice(i, i + BASELINE_BATCH_KEYS);
    // api_key_id IN (...) never matches NULL: every row has its key's id
    const cells = cellsBy(await repos.usage.hourlySpendOfKeys(batch, lookbackFrom, hour), (id) => id!);
    for (const k of batch) {
      const history = hourlyHistory(cells.get(k) ?? [], historyStart(coverage, known.keys.get(k)?.createdAt), hour);
      const profile = profiles.get(workspaceOf(k)) ?? null;
      out.set(scopeKey('key', k), typicalRate(history, profile, dataUntil, policy));
    }
  }
  return out;
}

function cellsBy<R extends HourCell & { id: string | null }>(
  rows: readonly R[],
  scopeOf: (id: string | null) => string,
): Map<string, HourCell[]> {
  const out = new Map<string, HourCell[]>();
  for (const r of rows) {
    const scope = scopeOf(r.id);
    const list = out.get(scope);
    if (list) list.push(r);
    else out.set(scope, [r]);
  }
  return out;
}

async function loadKeys(repos: DetectionRepos, ids: readonly string[]): Promise<Map<string, KeyInfo>> {
  const rows = await repos.keys.withWorkspace(ids);
  return new Map(
    rows.map((r) => [
      r.id,
      {
        id: r.id,
        name: r.name,
        status: r.status,
        partialKeyHint: r.partialKeyHint,
        workspaceScope: workspaceScopeId(r.workspaceId),
        // its usage rows say no workspace, as the Default Workspace's do: the name must not say Default Workspace
        workspaceName: r.scopeType === 'organization' ? ORGANIZATION_SCOPE_LABEL : r.workspaceName,
        createdAt: r.createdAt,
      },
    ]),
  );
}

/** The workspaces by scope id, the Default Workspace (which the API does not list) included. */
export async function loadWorkspaces(repos: Pick<Repos, 'keys'>): Promise<Map<string, WorkspaceInfo>> {
  const rows = await repos.keys.workspaces();
  const out = new Map<string, WorkspaceInfo>(
    rows.map((r) => [r.id, { scope: r.id, name: r.name, createdAt: r.createdAt }]),
  );
  out.set(DEFAULT_WORKSPACE_SCOPE, { scope: DEFAULT_WORKSPACE_SCOPE, name: DEFAULT_WORKSPACE_NAME, createdAt: null });
  return out;
}

/**
 * The priced usage of one key (or one workspace) from `from` to `until` (exclusive), per minute, model and token
 * kind: what the alert names as the runaway's models and token kinds. The cost split is the one ingestion stored
 * (summing to cost_usd); rows stored before it kept the split have none and name nothing.
 */
export async function loadSpendBreakdown(
  repos: Pick<Repos, 'usage'>,
  scope: { keyId: string } | { workspaceScope: string },
  from: Date,
  until: Date,
): Promise<SpendBreakdownRow[]> {
  const which =
    'keyId' in scope
      ? scope
      : { workspaceId: scope.workspaceScope === DEFAULT_WORKSPACE_SCOPE ? null : scope.workspaceScope };
  const out: SpendBreakdownRow[] = [];
  for (const r of await repos.usage.minuteRows(which, from, until)) {
    const minute = new Date(r.starting_at);
    const kinds: Array<[string, string | null]> = [
      ['uncached_input', r.cost_uncached_input_usd],
      ['cache_read', r.cost_cache_read_usd],
      ['cache_creation_5m', r.cost_cache_creation_5m_usd],
      ['cache_creation_1h', r.cost_cache_creation_1h_usd],
      ['output', r.cost_output_usd],
      ['web_search', r.cost_web_search_usd],
    ];
    for (const [tokenKind, usd] of kinds) {
      const cost = usd === null ? 0n : usdToPico(usd, 'usage_buckets');
      if (cost > 0n) out.push({ minute, model: r.model, tokenKind, cost });
    }
  }
  return out;
}
