import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import type { Context } from '../context.ts';
import type { AlertKind } from '../kinds.ts';
import { keyActor } from '../usage/actors.ts';
import { applyKillSwitch } from './apply-kill-switch.ts';
import { rateTrend, runawayContributors } from './core/contributors.ts';
import type { RunawayFinding } from './core/observations.ts';
import { runawayObservations } from './core/observations.ts';
import { type DetectionPlan, planDetection, scopeKey } from './core/plan.ts';
import { loadDetectionInput, loadSpendBreakdown } from './load.ts';
import { stateRow } from './state.ts';

const RUNAWAY_KINDS: AlertKind[] = ['usage.runaway'];

interface DetectionSummary {
  /** The last minute judged complete; null when nothing was polled yet (then nothing else happened). */
  dataUntil: Date | null;
  keys: number;
  workspaces: number;
  baselinesComputed: number;
  firing: string[];
  deactivated: string[];
  alerts: RaiseAlertsResult | null;
}

type Ctx = Pick<Context, 'repos' | 'admin' | 'log' | 'clock' | 'config'>;

/**
 * One detection run, after a poll: every key and workspace with spend in the recent minutes (and every one whose
 * alert is firing) is judged against its baseline of the hour; the kill switch is applied where the policy asks;
 * the `usage.runaway` alerts are raised and resolved; the detector's state is stored for the next run.
 */
export async function detectAnomalies(ctx: Ctx): Promise<DetectionSummary> {
  const policy = ctx.config.policy.anomaly;
  const now = ctx.clock.now();
  const input = await loadDetectionInput(ctx.repos, policy, now); // reads only
  const plan = planDetection(input, policy, now); // pure, table-tested in test/unit/detection-plan.test.ts
  return applyDetection(ctx, plan, now);
}

/**
 * Carries a plan out: the kill switch's checks and deactivations (audited), the alerts with what their runaways
 * spend on, the states that changed. Nothing is decided here but what the kill switch must check under its lock.
 */
async function applyDetection(ctx: Ctx, plan: DetectionPlan, now: Date): Promise<DetectionSummary> {
  const keys = plan.judged.filter((j) => j.state.scopeType === 'key').length;
  const summary: DetectionSummary = {
    dataUntil: plan.range?.dataUntil ?? null,
    keys,
    workspaces: plan.judged.length - keys,
    baselinesComputed: plan.baselinesComputed,
    firing: [],
    deactivated: [],
    alerts: null,
  };
  if (plan.range === null) return summary;
  const { dataUntil } = plan.range;

  const killSwitch = new Map(plan.killSwitch.settled);
  const applied = await applyKillSwitch(ctx, plan.killSwitch, keys, dataUntil);
  for (const [id, outcome] of applied.outcomes) killSwitch.set(id, outcome);
  summary.deactivated.push(...applied.deactivated);

  const findings: RunawayFinding[] = [];
  for (const a of plan.alerts) {
    const j = a.judged;
    summary.firing.push(scopeKey(j.state.scopeType, j.state.scopeId));
    const { from, until } = a.breakdown;
    const rows = await loadSpendBreakdown(ctx.repos, a.breakdown.scope, from, until);
    findings.push({
      scope: a.scope,
      assessment: j.assessment,
      baselineSource: j.baseline.source,
      contributors: rows.length > 0 ? runawayContributors(rows, from, until) : null,
      trend: rateTrend(rows, from, dataUntil),
      actor: j.state.scopeType === 'key' ? await keyActor(ctx.repos, j.state.scopeId, now) : null,
      killSwitch: j.state.scopeType === 'key' ? (killSwitch.get(j.state.scopeId) ?? null) : null,
      lastAbnormal: j.state.runaway?.lastAbnormal ?? null,
      dataUntil,
    });
  }
  summary.alerts = await raiseAlerts(
    ctx,
    { kinds: RUNAWAY_KINDS, observations: runawayObservations(findings, ctx.config.policy.anomaly) },
    ctx.config.policy.routes,
    now,
  );
  await ctx.repos.anomaly.saveStates(plan.save.map((s) => stateRow(s, now)));
  return summary;
}
