import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import { BASELINE_WEEKS, type Baseline, typicalRate, type WorkspaceProfile } from '../anomaly/baseline.ts';
import { runawayContributors } from '../anomaly/contributors.ts';
import { assessRunaway, type MinuteSpend, type RunawayAssessment, recentMinutesNeeded } from '../anomaly/runaway.ts';
import type { Context } from '../context.ts';
import { DEFAULT_WORKSPACE_NAME } from '../default-workspace.ts';
import type { AlertKind } from '../kinds.ts';
import { HOUR_MS, MINUTE_MS } from '../time.ts';
import { USAGE_SETTLED_WATERMARK } from '../usage/ingest.ts';
import { readWatermark } from '../usage/store.ts';
import { lastCompleteMinute } from './data-edge.ts';
import { applyKillSwitch } from './kill-switch.ts';
import {
  type KeyInfo,
  loadCoverageStart,
  loadHourlyCells,
  loadKeys,
  loadMinuteSpend,
  loadSpendBreakdown,
  loadWorkspaces,
} from './load.ts';
import { type RunawayFinding, runawayObservations } from './observations.ts';
import { DEFAULT_WORKSPACE_SCOPE, hourlyHistory } from './series.ts';
import { loadStates, type ScopeState, saveStates, scopeKey } from './state.ts';

/** Minutes after the last complete one still read: partial data (the detector looks at 15 at most). */
const PARTIAL_MINUTES = 15;
/** The hourly look-back typicalRate reads: BASELINE_WEEKS weeks and the neighbouring hours. */
const LOOKBACK_HOURS = BASELINE_WEEKS * 168 + 2;
const RUNAWAY_KINDS: AlertKind[] = ['usage.runaway'];
/** Keys whose hourly history is read at once for their baselines: ~200k key-hours, some 20 MB. */
const BASELINE_BATCH_KEYS = 250;

export interface DetectionSummary {
  /** The last minute judged complete; null when nothing was polled yet (then nothing else happened). */
  dataUntil: Date | null;
  keys: number;
  workspaces: number;
  baselinesComputed: number;
  firing: string[];
  deactivated: string[];
  alerts: RaiseAlertsResult | null;
}

type Ctx = Pick<Context, 'db' | 'repos' | 'admin' | 'log' | 'clock' | 'config'>;

/**
 * One detection run, after a poll: every key and workspace with spend in the recent minutes (and every one whose
 * alert is firing) is judged against its baseline of the hour; the kill switch is applied where the policy asks;
 * the `usage.runaway` alerts are raised and resolved; the detector's state is stored for the next run.
 */
export async function detectAnomalies(ctx: Ctx): Promise<DetectionSummary> {
  const policy = ctx.config.policy.anomaly;
  const now = ctx.clock.now();
  const dataUntil = lastCompleteMinute(now, await readWatermark(ctx.db, USAGE_SETTLED_WATERMARK));
  const summary: DetectionSummary = {
    dataUntil,
    keys: 0,
    workspaces: 0,
    baselinesComputed: 0,
    firing: [],
    deactivated: [],
    alerts: null,
  };
  if (dataUntil === null) return summary;

  const lookback = recentMinutesNeeded(policy);
  const from = new Date(dataUntil.getTime() - (lookback - 1) * MINUTE_MS);
  const until = new Date(dataUntil.getTime() + (PARTIAL_MINUTES + 1) * MINUTE_MS);
  const keySeries = new Map<string, MinuteSpend[]>();
  const workspaceSeries = new Map<string, MinuteSpend[]>();
  const keyWorkspace = new Map<string, string>();
  const add = (map: Map<string, MinuteSpend[]>, id: string, m: MinuteSpend) => {
    const list = map.get(id);
    if (list) list.push(m);
    else map.set(id, [m]);
  };
  for (const row of await loadMinuteSpend(ctx.db, from, until)) {
    const m = { minute: row.minute, usd: row.usd };
    add(workspaceSeries, row.workspaceScope, m);
    if (row.keyId === null) continue;
    add(keySeries, row.keyId, m);
    keyWorkspace.set(row.keyId, row.workspaceScope);
  }

  const states = await loadStates(ctx.db);
  for (const s of states.values()) {
    if (!s.runaway?.firing) continue;
    const map = s.scopeType === 'key' ? keySeries : workspaceSeries;
    if (!map.has(s.scopeId)) map.set(s.scopeId, []);
  }
  const keys = await loadKeys(ctx.db, [...keySeries.keys()]);
  const workspaces = await loadWorkspaces(ctx.db);
  const workspaceOfKey = (id: string) =>
    keys.get(id)?.workspaceScope ?? keyWorkspace.get(id) ?? DEFAULT_WORKSPACE_SCOPE;

  // Baselines: once per hour and scope (they rest on complete hours), read together.
  const hour = new Date(Math.floor(dataUntil.getTime() / HOUR_MS) * HOUR_MS);
  const stale = (type: 'key' | 'workspace', id: string) =>
    states.get(scopeKey(type, id))?.baseline?.hour.getTime() !== hour.getTime();
  const keysToRefresh = [...keySeries.keys()].filter((k) => stale('key', k));
  const workspacesToRefresh = new Set([...workspaceSeries.keys()].filter((w) => stale('workspace', w)));
  const fresh = new Map<string, Baseline>();
  if (keysToRefresh.length > 0 || workspacesToRefresh.size > 0) {
    const coverage = (await loadCoverageStart(ctx.db)) ?? hour;
    const lookbackFrom = new Date(hour.getTime() - LOOKBACK_HOURS * HOUR_MS);
    const profileWorkspaces = new Set([...workspacesToRefresh, ...keysToRefresh.map(workspaceOfKey)]);
    const cells = await loadHourlyCells(ctx.db, lookbackFrom, hour, [], [...profileWorkspaces]);
    const later = (a: Date, b: Date | null | undefined) => (b && b.getTime() > a.getTime() ? b : a);
    const profiles = new Map<string, WorkspaceProfile>();
    for (const w of profileWorkspaces) {
      const totals = [...(cells.keyTotals.get(w)?.values() ?? [])];
      const sum = totals.reduce((a, b) => a + b, 0);
      const historyFrom = later(coverage, workspaces.get(w)?.createdAt);
      profiles.set(w, {
        history: hourlyHistory(cells.workspaces.get(w) ?? [], historyFrom, hour),
        largestKeyShare: sum > 0 ? Math.max(...totals) / sum : 1,
      });
    }
    for (const w of workspacesToRefresh) {
      fresh.set(scopeKey('workspace', w), typicalRate(profiles.get(w)!.history, null, dataUntil, policy));
    }
    // A key's history is five weeks of hours: read a batch of keys at a time, so memory holds a batch's cells
    // rather than every active key's (a 5,000-key organization has millions of key-hours).
    for (let i = 0; i < keysToRefresh.length; i += BASELINE_BATCH_KEYS) {
      const batch = keysToRefresh.slice(i, i + BASELINE_BATCH_KEYS);
      const keyCells = (await loadHourlyCells(ctx.db, lookbackFrom, hour, batch, [])).keys;
      for (const k of batch) {
        const history = hourlyHistory(keyCells.get(k) ?? [], later(coverage, keys.get(k)?.createdAt), hour);
        const profile = profiles.get(workspaceOfKey(k)) ?? null;
        fresh.set(scopeKey('key', k), typicalRate(history, profile, dataUntil, policy));
      }
    }
    summary.baselinesComputed = fresh.size;
  }

  // Judge every scope.
  interface Judged {
    state: ScopeState;
    before: ScopeState | undefined;
    baseline: Baseline;
    assessment: RunawayAssessment;
  }
  const judged: Judged[] = [];
  const judge = (type: 'key' | 'workspace', id: string, recent: MinuteSpend[]) => {
    const k = scopeKey(type, id);
    const before = states.get(k);
    const baseline = fresh.get(k) ?? before?.baseline?.value;
    if (!baseline) return;
    const assessment = assessRunaway({ recent, baseline, previous: before?.runaway ?? null, dataUntil, policy });
    const firing = assessment.state.firing;
    const state: ScopeState = {
      scopeType: type,
      scopeId: id,
      runaway: assessment.state,
      baseline: fresh.has(k) ? { hour, value: baseline } : (before?.baseline ?? null),
      coveredByKey: firing ? (before?.coveredByKey ?? false) : false,
      deactivatedFor: firing ? (before?.deactivatedFor ?? null) : null,
      killSwitchEvidence: firing ? (before?.killSwitchEvidence ?? null) : null,
    };
    judged.push({ state, before, baseline, assessment });
  };
  for (const [id, recent] of keySeries) judge('key', id, recent);
  for (const [id, recent] of workspaceSeries) judge('workspace', id, recent);
  summary.keys = judged.filter((j) => j.state.scopeType === 'key').length;
  summary.workspaces = judged.length - summary.keys;

  // A workspace episode that starts while one of its keys is firing is that key's runaway: said once, by the key.
  const firingKeyWorkspaces = new Set(
    judged
      .filter((j) => j.state.scopeType === 'key' && j.state.runaway?.firing)
      .map((j) => workspaceOfKey(j.state.scopeId)),
  );
  for (const j of judged) {
    if (j.state.scopeType === 'workspace' && j.assessment.decision === 'fire') {
      j.state.coveredByKey = firingKeyWorkspaces.has(j.state.scopeId);
    }
  }

  // The kill switch: once per episode, for keys above the hard cap through the window, within its bounds.
  const firingKeys = judged.filter((j) => j.state.scopeType === 'key' && j.state.runaway?.firing);
  const { outcomes: killSwitch, deactivated } = await applyKillSwitch(
    ctx,
    firingKeys.map((j) => ({
      state: j.state,
      assessment: j.assessment,
      active: keys.get(j.state.scopeId)?.status === 'active',
      workspaceScope: workspaceOfKey(j.state.scopeId),
    })),
    summary.keys,
    dataUntil,
  );
  summary.deactivated.push(...deactivated);

  // Observations for what is firing (the lifecycle resolves the rest).
  const table = ctx.config.prices;
  const findings: RunawayFinding[] = [];
  for (const j of judged) {
    const r = j.state.runaway;
    if (!r?.firing || (j.state.scopeType === 'workspace' && j.state.coveredByKey)) continue;
    const id = j.state.scopeId;
    summary.firing.push(scopeKey(j.state.scopeType, id));
    const started = j.assessment.startedAt ?? dataUntil;
    const scope =
      j.state.scopeType === 'key'
        ? keyScope(id, keys.get(id), workspaceOfKey(id), workspaces)
        : workspaceScope(id, workspaces);
    const rows = await loadSpendBreakdown(
      ctx.db,
      j.state.scopeType === 'key' ? { keyId: id } : { workspaceScope: id },
      started,
      until,
      table,
    );
    findings.push({
      scope,
      assessment: j.assessment,
      baselineSource: j.baseline.source,
      contributors: rows.length > 0 ? runawayContributors(rows, started, until) : null,
      killSwitch: killSwitch.get(id) ?? null,
      lastAbnormal: r.lastAbnormal,
      dataUntil,
    });
  }
  summary.alerts = await raiseAlerts(
    ctx,
    { kinds: RUNAWAY_KINDS, observations: runawayObservations(findings, policy) },
    ctx.config.policy.routes,
    now,
  );

  // Only what changed is written: a quiet scope's state is the same every minute.
  const changed = judged.filter((j) => {
    const b = j.before;
    if (!b) return true;
    if (b.baseline?.hour.getTime() !== j.state.baseline?.hour.getTime()) return true;
    if (!b.runaway?.firing && !j.state.runaway?.firing) return false;
    return true;
  });
  await saveStates(
    ctx.db,
    changed.map((j) => j.state),
    now,
  );
  return summary;
}

function keyScope(
  id: string,
  key: KeyInfo | undefined,
  workspace: string,
  workspaces: Map<string, { name: string }>,
): RunawayFinding['scope'] {
  return {
    type: 'key',
    id,
    name: key?.name ?? id,
    hint: key?.partialKeyHint ?? null,
    workspaceId: workspace === DEFAULT_WORKSPACE_SCOPE ? null : workspace,
    workspaceName: key?.workspaceName ?? workspaces.get(workspace)?.name ?? DEFAULT_WORKSPACE_NAME,
  };
}

function workspaceScope(id: string, workspaces: Map<string, { name: string }>): RunawayFinding['scope'] {
  return {
    type: 'workspace',
    id,
    workspaceId: id === DEFAULT_WORKSPACE_SCOPE ? null : id,
    workspaceName: workspaces.get(id)?.name ?? id,
  };
}
