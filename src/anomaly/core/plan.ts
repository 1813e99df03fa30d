import type { AnomalyPolicy } from '../../config/policy.ts';
import { DEFAULT_WORKSPACE_NAME } from '../../default-workspace.ts';
import { HOUR_MS, MINUTE_MS } from '../../time.ts';
import { lastCompleteMinute } from '../../usage/core/freshness.ts';
import type { Baseline } from './baseline.ts';
import { type ExpectedMark, holdingMark, markEndsEpisode, markedBaseline } from './expected.ts';
import type { KillSwitchOutcome, RunawayScope } from './observations.ts';
import {
  assessRunaway,
  type MinuteSpend,
  type RunawayAssessment,
  type RunawayState,
  recentMinutesNeeded,
} from './runaway.ts';
import { DEFAULT_WORKSPACE_SCOPE } from './series.ts';

/**
 * One detection run, decided: which keys and workspaces are judged, what each one's runaway state becomes, which
 * workspace alerts a key's alert already says, what the kill switch may do once per episode, which alerts are
 * raised and which states are saved. Pure: the caller reads the input (loadDetectionInput), brings the time, and
 * applies the plan (applyDetection); the benchmarks replay the same function minute by minute.
 */

/** Minutes after the last complete one still read: partial data (the detector looks at 15 at most). */
const PARTIAL_MINUTES = 15;

type DetectionScopeType = 'key' | 'workspace';

/** What detection remembers of one key or workspace between runs (table anomaly_state). */
export interface ScopeState {
  scopeType: DetectionScopeType;
  scopeId: string;
  runaway: RunawayState | null;
  /** The baseline of the hour `hour`: typicalRate reads complete hours only, so it holds for the whole hour. */
  baseline: { hour: Date; value: Baseline } | null;
  /** Workspace: a key alert of this workspace was firing when the episode fired, and says it already. */
  coveredByKey: boolean;
  /** Key: the episode (its start) for which the kill switch set the key inactive. */
  deactivatedFor: Date | null;
  /** Key: the commit time of the poll that first showed it above the hard cap in this episode (two polls act). */
  killSwitchEvidence: Date | null;
}

export const scopeKey = (scopeType: DetectionScopeType, scopeId: string) => `${scopeType}:${scopeId}`;

/** What the detector knows of a key beyond its spend: names for the message, creation for its history's start. */
export interface KeyInfo {
  id: string;
  name: string;
  status: string;
  partialKeyHint: string | null;
  workspaceScope: string;
  workspaceName: string | null;
  createdAt: Date;
}

export interface WorkspaceInfo {
  scope: string;
  name: string;
  createdAt: Date | null;
}

/** The minutes one run reads: from the look-back's first minute to the last partial one (exclusive). */
export interface DetectionRange {
  /** The last minute judged complete. */
  dataUntil: Date;
  /** The hour whose baselines apply (baselines rest on complete hours: one per scope and hour). */
  hour: Date;
  from: Date;
  until: Date;
}

/**
 * The range one run reads at `now`, or null before the first poll committed anything (`settled`: the end of the
 * newest minute with data, see src/usage/core/freshness.ts).
 */
export function detectionRange(now: Date, settled: Date | null, policy: AnomalyPolicy): DetectionRange | null {
  const dataUntil = lastCompleteMinute(now, settled);
  if (dataUntil === null) return null;
  return {
    dataUntil,
    hour: new Date(Math.floor(dataUntil.getTime() / HOUR_MS) * HOUR_MS),
    from: new Date(dataUntil.getTime() - (recentMinutesNeeded(policy) - 1) * MINUTE_MS),
    until: new Date(dataUntil.getTime() + (PARTIAL_MINUTES + 1) * MINUTE_MS),
  };
}

/** Spend of the range per key and per workspace, as read: every minute with spend, partial minutes included. */
export interface DetectionSeries {
  keys: ReadonlyMap<string, { workspaceScope: string; recent: readonly MinuteSpend[] }>;
  workspaces: ReadonlyMap<string, readonly MinuteSpend[]>;
}

export interface DetectionScopes {
  keys: string[];
  workspaces: string[];
}

/**
 * Who is judged: every key and workspace with spend in the range, and every one whose alert is firing (with no
 * spend at all it must still be judged, or its alert would never resolve).
 */
export function scopesToJudge(series: DetectionSeries, states: ReadonlyMap<string, ScopeState>): DetectionScopes {
  const keys = new Set(series.keys.keys());
  const workspaces = new Set(series.workspaces.keys());
  for (const s of states.values()) {
    if (s.runaway?.firing) (s.scopeType === 'key' ? keys : workspaces).add(s.scopeId);
  }
  return { keys: [...keys], workspaces: [...workspaces] };
}

/** The scopes whose stored baseline is not of `hour`: their baseline is computed again, once per hour. */
export function baselinesDue(
  scopes: DetectionScopes,
  states: ReadonlyMap<string, ScopeState>,
  hour: Date,
): DetectionScopes {
  const stale = (type: DetectionScopeType, id: string) =>
    states.get(scopeKey(type, id))?.baseline?.hour.getTime() !== hour.getTime();
  return {
    keys: scopes.keys.filter((k) => stale('key', k)),
    workspaces: scopes.workspaces.filter((w) => stale('workspace', w)),
  };
}

/** The workspace a key's usage counts in: the inventory's, else its usage rows', else the Default Workspace. */
export function workspaceOfKey(id: string, keys: ReadonlyMap<string, KeyInfo>, series: DetectionSeries): string {
  return keys.get(id)?.workspaceScope ?? series.keys.get(id)?.workspaceScope ?? DEFAULT_WORKSPACE_SCOPE;
}

export interface DetectionInput {
  /** The settled usage watermark (the end of the newest minute with data); null before the first poll. */
  settled: Date | null;
  series: DetectionSeries;
  states: ReadonlyMap<string, ScopeState>;
  /** The keys judged, from the inventory (a key it does not know yet is judged all the same). */
  keys: ReadonlyMap<string, KeyInfo>;
  workspaces: ReadonlyMap<string, WorkspaceInfo>;
  /** Baselines of the range's hour, by scopeKey, for the scopes `baselinesDue` named; the others keep theirs. */
  baselines: ReadonlyMap<string, Baseline>;
  /** "Mark as expected" marks that may hold now (core/expected.ts); absent: none. */
  marks?: readonly ExpectedMark[];
}

export interface JudgedScope {
  state: ScopeState;
  /** The baseline it was judged by: the stored one, raised by a mark that holds. */
  baseline: Baseline;
  assessment: RunawayAssessment;
}

/** A firing key above the kill switch's hard cap, active, not yet set inactive in this episode. */
export interface KillSwitchCandidateKey {
  /** The key's new state: the kill switch records its evidence and the episode it acted for here. */
  state: ScopeState;
  assessment: RunawayAssessment;
  workspaceScope: string;
}

/** A `usage.runaway` alert to raise; its contributors and kill switch outcome are added when it is applied. */
interface PlannedAlert {
  scope: RunawayScope;
  judged: JudgedScope;
  /** The spend whose models and token kinds the message names: the run's minutes, partial ones included. */
  breakdown: { scope: { keyId: string } | { workspaceScope: string }; from: Date; until: Date };
}

export interface DetectionPlan {
  /** Null when nothing was polled yet: then the plan is empty. */
  range: DetectionRange | null;
  /** Every scope judged, keys first. */
  judged: JudgedScope[];
  baselinesComputed: number;
  killSwitch: {
    /** Firing keys whose outcome needs no more reads: off, armed, or already set inactive in this episode. */
    settled: Map<string, KillSwitchOutcome>;
    /** Firing keys above the hard cap it may act on, once the shell has checked them (applyKillSwitch). */
    candidates: KillSwitchCandidateKey[];
    /**
     * Firing keys found inactive with no deactivation recorded for their episode (settled armed): another run's kill
     * switch may have set one inactive after this run read the states, so the shell asks the audit log, or this
     * run's save would drop that run's record (and a person's reactivation in the episode would be undone).
     */
    foundInactive: ScopeState[];
  };
  alerts: PlannedAlert[];
  /** Episodes a mark ended in this run: their alerts resolve (nothing fires for them) with the mark's note. */
  expected: Array<{ scopeType: DetectionScopeType; scopeId: string; mark: ExpectedMark }>;
  /** The states to store: only those that changed (a quiet scope's state is the same every minute). */
  save: ScopeState[];
}

export function planDetection(input: DetectionInput, policy: AnomalyPolicy, now: Date): DetectionPlan {
  const range = detectionRange(now, input.settled, policy);
  const plan: DetectionPlan = {
    range,
    judged: [],
    baselinesComputed: 0,
    killSwitch: { settled: new Map(), candidates: [], foundInactive: [] },
    alerts: [],
    expected: [],
    save: [],
  };
  if (range === null) return plan;
  const { dataUntil, hour } = range;
  const scopes = scopesToJudge(input.series, input.states);
  const due = baselinesDue(scopes, input.states, hour);
  const fresh = new Set([
    ...due.keys.map((k) => scopeKey('key', k)),
    ...due.workspaces.map((w) => scopeKey('workspace', w)),
  ]);
  const workspaceOf = (id: string) => workspaceOfKey(id, input.keys, input.series);

  const judge = (type: DetectionScopeType, id: string, recent: readonly MinuteSpend[]) => {
    const k = scopeKey(type, id);
    const before = input.states.get(k);
    const computed = fresh.has(k) ? input.baselines.get(k) : undefined;
    const baseline = computed ?? before?.baseline?.value;
    // no baseline yet (the hour's could not be computed): judged once it can be
    if (!baseline) return;
    if (computed) plan.baselinesComputed++;
    // A mark raises the bar while it holds, and ends the episode it was made in: the next one starts afresh.
    const mark = holdingMark(input.marks ?? [], type, id, now);
    const ended = markEndsEpisode(before?.runaway, mark);
    if (ended && mark) plan.expected.push({ scopeType: type, scopeId: id, mark });
    const previous =
      ended && before?.runaway
        ? {
            firing: false,
            since: null,
            lastAbnormal: null,
            evaluatedUntil: before.runaway.evaluatedUntil,
            clearedAt: dataUntil,
          }
        : (before?.runaway ?? null);
    const judgedBy = markedBaseline(baseline, mark);
    const assessment = assessRunaway({ recent, baseline: judgedBy, previous, dataUntil, policy });
    const firing = assessment.state.firing;
    // A new episode starts clean: what the last one's alert covered and what its kill switch did are forgotten.
    const state: ScopeState = {
      scopeType: type,
      scopeId: id,
      runaway: assessment.state,
      baseline: computed ? { hour, value: computed } : (before?.baseline ?? null),
      coveredByKey: firing ? (before?.coveredByKey ?? false) : false,
      deactivatedFor: firing ? (before?.deactivatedFor ?? null) : null,
      killSwitchEvidence: firing ? (before?.killSwitchEvidence ?? null) : null,
    };
    plan.judged.push({ state, baseline: judgedBy, assessment });
  };
  for (const id of scopes.keys) judge('key', id, input.series.keys.get(id)?.recent ?? []);
  for (const id of scopes.workspaces) judge('workspace', id, input.series.workspaces.get(id) ?? []);

  // A workspace episode that starts while one of its keys is firing is that key's runaway: said once, by the key.
  // Decided when the workspace fires and kept for its episode, so the key resolving first does not post it late.
  const firingKeys = plan.judged.filter((j) => j.state.scopeType === 'key' && j.state.runaway?.firing);
  const firingKeyWorkspaces = new Set(firingKeys.map((j) => workspaceOf(j.state.scopeId)));
  for (const j of plan.judged) {
    if (j.state.scopeType === 'workspace' && j.assessment.decision === 'fire') {
      j.state.coveredByKey = firingKeyWorkspaces.has(j.state.scopeId);
    }
  }

  // The kill switch: once per episode, for active keys above the hard cap through the window.
  const cap = policy.auto_deactivate.min_hourly_usd;
  for (const j of firingKeys) {
    const id = j.state.scopeId;
    const since = j.state.runaway?.since;
    if (!policy.auto_deactivate.enabled) plan.killSwitch.settled.set(id, { state: 'off' });
    else if (since && j.state.deactivatedFor?.getTime() === since.getTime()) {
      plan.killSwitch.settled.set(id, { state: 'deactivated', capHourlyUsd: cap });
    } else if (j.assessment.killSwitch && since && input.keys.get(id)?.status === 'active') {
      plan.killSwitch.candidates.push({ state: j.state, assessment: j.assessment, workspaceScope: workspaceOf(id) });
    } else {
      plan.killSwitch.settled.set(id, { state: 'armed', capHourlyUsd: cap });
      const status = input.keys.get(id)?.status;
      if (since && status !== undefined && status !== 'active') plan.killSwitch.foundInactive.push(j.state);
    }
    // evidence is of an unbroken stretch above the cap: a run below it starts the two polls again
    if (!j.assessment.killSwitch) j.state.killSwitchEvidence = null;
  }

  // Alerts for what is firing (the lifecycle resolves the rest).
  for (const j of plan.judged) {
    if (!j.state.runaway?.firing || (j.state.scopeType === 'workspace' && j.state.coveredByKey)) continue;
    const id = j.state.scopeId;
    const isKey = j.state.scopeType === 'key';
    plan.alerts.push({
      scope: isKey
        ? keyScope(id, input.keys.get(id), workspaceOf(id), input.workspaces)
        : workspaceScope(id, input.workspaces),
      judged: j,
      breakdown: {
        scope: isKey ? { keyId: id } : { workspaceScope: id },
        from: j.assessment.startedAt ?? dataUntil,
        until: range.until,
      },
    });
  }

  // Only what changed is saved: a new baseline, or a scope that is or was firing (its run moves every minute).
  plan.save = plan.judged
    .filter((j) => {
      const b = input.states.get(scopeKey(j.state.scopeType, j.state.scopeId));
      if (!b) return true;
      if (b.baseline?.hour.getTime() !== j.state.baseline?.hour.getTime()) return true;
      return b.runaway?.firing === true || j.state.runaway?.firing === true;
    })
    .map((j) => j.state);
  return plan;
}

function keyScope(
  id: string,
  key: KeyInfo | undefined,
  workspace: string,
  workspaces: ReadonlyMap<string, WorkspaceInfo>,
): RunawayScope {
  return {
    type: 'key',
    id,
    name: key?.name ?? id,
    hint: key?.partialKeyHint ?? null,
    workspaceId: workspace === DEFAULT_WORKSPACE_SCOPE ? null : workspace,
    workspaceName: key?.workspaceName ?? workspaces.get(workspace)?.name ?? DEFAULT_WORKSPACE_NAME,
  };
}

function workspaceScope(id: string, workspaces: ReadonlyMap<string, WorkspaceInfo>): RunawayScope {
  return {
    type: 'workspace',
    id,
    workspaceId: id === DEFAULT_WORKSPACE_SCOPE ? null : id,
    workspaceName: workspaces.get(id)?.name ?? id,
  };
}
