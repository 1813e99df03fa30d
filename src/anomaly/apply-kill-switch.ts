import type { Context } from '../context.ts';
import { KEY_STATUS_LOCK } from '../db/advisory-lock.ts';
import { WATERMARKS } from '../db/repos/watermarks.ts';
import { picoToNumberUsd } from '../money.ts';
import { readKeyUsageFromApi } from '../rotation/recent-usage.ts';
import { lastStatusChangeFailure, setKeyStatus, settleInterruptedStatusChanges } from '../rotation/set-status.ts';
import { HOUR_MS, MINUTE_MS } from '../time.ts';
import { lastCompleteMinute } from '../usage/core/freshness.ts';
import { rateLimitsOf, storedTokenUsage } from './check-headroom.ts';
import { assessHeadroom, type RateLimitGroup } from './core/headroom.ts';
import { cappedReason, type KillSwitchCandidate, planKillSwitch } from './core/kill-switch.ts';
import type { KillSwitchOutcome } from './core/observations.ts';
import type { KillSwitchCandidateKey, ScopeState } from './core/plan.ts';
import { workspaceScopeId } from './core/series.ts';

const ACTOR = 'keywarden:anomaly';

type Ctx = Pick<Context, 'repos' | 'admin' | 'log' | 'clock' | 'config'>;

/**
 * The kill switch for one detection run, on the keys planDetection found above the hard cap (active, and not yet set
 * inactive in their episode): what it did for each (KillSwitchOutcome), and the keys it set inactive. They are
 * planned together (planKillSwitch: two polls, not many at once, caps); those it may act on are checked against the
 * workspace's rate limits first and confirmed by a direct read of the key's usage from the Admin API, then set
 * inactive one run at a time (KEY_STATUS_LOCK, shared with enforcement), their status and the hour's count read
 * again under the lock.
 * Updates each key's `killSwitchEvidence` and `deactivatedFor` in its state, the latter also for the keys it did not
 * set inactive that another run's kill switch did in the meantime (those found inactive by the plan among them).
 */
export async function applyKillSwitch(
  ctx: Ctx,
  planned: { candidates: readonly KillSwitchCandidateKey[]; foundInactive: readonly ScopeState[] },
  keysWithSpend: number,
  dataUntil: Date,
): Promise<{ outcomes: Map<string, KillSwitchOutcome>; deactivated: string[] }> {
  const applied = await decideAndAct(ctx, planned.candidates, keysWithSpend, dataUntil);
  const cap = ctx.config.policy.anomaly.auto_deactivate.min_hourly_usd;
  // Another run (the worker's, an operator's --once) may set a key inactive at any point of this one: after this
  // run read it active (its plan then waited, was capped or refused, or the lock was busy), or before this run read
  // it, when this run's states were read earlier still. This run saves its state last, possibly: it keeps that
  // run's record of the episode (or a person's reactivation later in it would be undone).
  const unsure = [
    ...planned.foundInactive,
    ...planned.candidates.map((k) => k.state).filter((s) => applied.outcomes.get(s.scopeId)?.state !== 'deactivated'),
  ];
  if (unsure.length === 0) return applied;
  const active = await activeKeyIds(
    ctx,
    unsure.map((s) => s.scopeId),
  );
  for (const s of unsure) {
    if (active.has(s.scopeId) || !(await killedInLastHour(ctx, s.scopeId))) continue;
    s.deactivatedFor = s.runaway!.since!;
    applied.outcomes.set(s.scopeId, { state: 'deactivated', capHourlyUsd: cap });
  }
  return applied;
}

/** The kill switch's own decisions and deactivations for the keys above the hard cap (see applyKillSwitch). */
async function decideAndAct(
  ctx: Ctx,
  above: readonly KillSwitchCandidateKey[],
  keysWithSpend: number,
  dataUntil: Date,
): Promise<{ outcomes: Map<string, KillSwitchOutcome>; deactivated: string[] }> {
  const policy = ctx.config.policy.anomaly;
  const cap = policy.auto_deactivate.min_hourly_usd;
  const outcomes = new Map<string, KillSwitchOutcome>();
  const deactivated: string[] = [];
  if (above.length === 0) return { outcomes, deactivated };

  const poll = await pollCommittedAt(ctx);
  const window = { from: new Date(dataUntil.getTime() - (policy.window_minutes - 1) * MINUTE_MS), until: dataUntil };
  const candidates: KillSwitchCandidate[] = [];
  // read once per workspace in the run: many keys of one workspace can cross the cap together
  const limits = new Map<string, Promise<RateLimitGroup[]>>();
  const limitsOf = (workspace: string) => {
    const known = limits.get(workspace);
    if (known) return known;
    const groups = rateLimitsOf(ctx, workspace);
    limits.set(workspace, groups);
    return groups;
  };
  for (const k of above) {
    candidates.push({
      keyId: k.state.scopeId,
      currentHourlyUsd: k.assessment.currentHourlyUsd,
      evidenceSince: k.state.killSwitchEvidence,
      impossible: await impossibleUsage(
        ctx,
        { keyId: k.state.scopeId, workspaceScope: k.workspaceScope },
        window,
        limitsOf,
      ),
    });
    k.state.killSwitchEvidence ??= poll;
  }
  const decisions = planKillSwitch({
    candidates,
    keysWithSpend,
    poll,
    inLastHour: await deactivationsInLastHour(ctx),
    limits: policy.auto_deactivate,
  });
  const act = above.filter((k) => decisions.get(k.state.scopeId)?.kind === 'act');
  for (const k of above) {
    const d = decisions.get(k.state.scopeId)!;
    if (d.kind === 'awaiting_evidence')
      outcomes.set(k.state.scopeId, { state: 'awaiting_evidence', capHourlyUsd: cap });
    else if (d.kind !== 'act') outcomes.set(k.state.scopeId, { state: 'refused', capHourlyUsd: cap, reason: d.reason });
  }
  if (act.length === 0) return { outcomes, deactivated };
  if (policy.auto_deactivate.mode === 'approve') {
    // a person decides, from the alert's button (deactivateOnApproval): nothing is set inactive here
    for (const k of act) outcomes.set(k.state.scopeId, { state: 'awaiting_approval', capHourlyUsd: cap });
    return { outcomes, deactivated };
  }

  const locked = await ctx.repos.keys.withStatusLock(async () => {
    await settleInterruptedStatusChanges(ctx);
    // Read again under the lock: another run (the worker's, an operator's --once) may have set keys inactive
    // between this run's reads and the lock, and its deactivations count towards the hour's limit.
    const active = await activeKeyIds(
      ctx,
      act.map((k) => k.state.scopeId),
    );
    let inLastHour = await deactivationsInLastHour(ctx);
    for (const k of act) {
      const id = k.state.scopeId;
      const since = k.state.runaway!.since!;
      if (!active.has(id)) {
        // Another run's kill switch: this run saves its state last, so it keeps that run's record of the episode
        // (or a person's reactivation later in it would be undone).
        if (await killedInLastHour(ctx, id)) {
          k.state.deactivatedFor = since;
          outcomes.set(id, { state: 'deactivated', capHourlyUsd: cap });
        } else {
          const reason = 'it is no longer active (a person or another system changed it meanwhile)';
          outcomes.set(id, { state: 'refused', capHourlyUsd: cap, reason });
        }
        continue;
      }
      if (inLastHour >= policy.auto_deactivate.max_per_hour) {
        const reason = cappedReason(policy.auto_deactivate, inLastHour);
        outcomes.set(id, { state: 'refused', capHourlyUsd: cap, reason });
        continue;
      }
      const unconfirmed = await confirmSpend(ctx, id, window, cap);
      if (unconfirmed !== null) {
        ctx.log.warn(
          { keyId: id, reason: unconfirmed },
          'kill switch: spend not confirmed by the Admin API; not acted on',
        );
        outcomes.set(id, { state: 'refused', capHourlyUsd: cap, reason: unconfirmed });
        continue;
      }
      inLastHour++; // an attempt counts whatever its outcome, as deactivationsInLastHour counts intents
      const outcome = await setKeyStatus(ctx, {
        keyId: id,
        to: 'inactive',
        action: 'api_key.deactivate',
        actor: ACTOR,
        reason: `runaway spend at ${k.assessment.currentHourlyUsd.toFixed(2)} USD/h since ${since.toISOString()}, above the hard cap of ${cap} USD/h`,
      });
      if (outcome === 'done') {
        k.state.deactivatedFor = since;
        deactivated.push(id);
      }
      outcomes.set(id, { state: outcome === 'done' ? 'deactivated' : 'failed', capHourlyUsd: cap });
    }
  });
  if (locked === null) {
    ctx.log.warn({ lock: KEY_STATUS_LOCK }, 'kill switch: another run is changing key statuses; tried again next run');
    for (const k of act) outcomes.set(k.state.scopeId, { state: 'armed', capHourlyUsd: cap });
  }
  return { outcomes, deactivated };
}

/** When the newest poll was committed (the database's clock): two runs after the same poll are one piece of evidence. */
async function pollCommittedAt(ctx: Ctx): Promise<Date> {
  return (await ctx.repos.watermarks.movedAt(WATERMARKS.usage)) ?? ctx.clock.now();
}

/** Of `ids`, the keys whose stored status is active. */
function activeKeyIds(ctx: Ctx, ids: readonly string[]): Promise<Set<string>> {
  return ctx.repos.keys.activeAmong(ids);
}

/** Whether the kill switch set this key inactive in the last hour (an outcome row that says it is). */
function killedInLastHour(ctx: Ctx, keyId: string): Promise<boolean> {
  return ctx.repos.audit.succeededWithin(ACTOR, 'api_key.deactivate', keyId, HOUR_MS / 1000);
}

/** Kill switch deactivations begun in the last hour (intents: an attempt counts whatever its outcome). */
function deactivationsInLastHour(ctx: Ctx): Promise<number> {
  return ctx.repos.audit.intentsWithin(ACTOR, 'api_key.deactivate', HOUR_MS / 1000);
}

/**
 * Why the key's stored per-minute tokens cannot be true, or null: a minute above the workspace's own tokens-per-
 * minute limit (the limits the headroom check reads) is refused by the API, so such a count is a data fault. When
 * the limits cannot be read, the counts cannot be checked, and that is the reason.
 */
async function impossibleUsage(
  ctx: Ctx,
  k: { keyId: string; workspaceScope: string },
  window: { from: Date; until: Date },
  limitsOf: (workspace: string) => Promise<RateLimitGroup[]>,
): Promise<string | null> {
  let groups: RateLimitGroup[];
  try {
    groups = await limitsOf(k.workspaceScope);
  } catch (err) {
    ctx.log.warn({ keyId: k.keyId, err }, 'kill switch: rate limits could not be read');
    return "the workspace's rate limits could not be read to check that its usage is possible";
  }
  const usage = await storedTokenUsage(ctx.repos, window, { apiKeyId: k.keyId });
  const minutes = [...usage.values()].flat();
  const over = assessHeadroom(minutes, groups, window, 1).find((r) => r.per === 'minute' && r.peakPerMinute > r.limit);
  if (!over) return null;
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  return (
    `its usage shows ${n(over.peakPerMinute)} ${over.limitType.replaceAll('_', ' ')} in one minute, above the ` +
    `workspace's limit of ${n(over.limit)}: impossible, so not believed (a data fault?)`
  );
}

/**
 * Null when the Admin API, asked directly for the key's minutes of the window, confirms spend at or above the cap;
 * else why not (a lower figure, or no answer).
 */
async function confirmSpend(
  ctx: Ctx,
  keyId: string,
  window: { from: Date; until: Date },
  capHourlyUsd: number,
): Promise<string | null> {
  const table = ctx.config.prices;
  const range = { start: window.from, end: new Date(window.until.getTime() + MINUTE_MS) };
  try {
    const buckets = await readKeyUsageFromApi(ctx.admin, keyId, range, '1m', table);
    const minutes = (range.end.getTime() - range.start.getTime()) / MINUTE_MS;
    const hourly = (picoToNumberUsd(buckets.reduce((s, b) => s + b.cost, 0n)) / minutes) * 60;
    if (hourly >= capHourlyUsd) return null;
    return `the Admin API, asked directly, shows ${hourly.toFixed(2)} USD/h for the key over the window, under the hard cap: not confirmed`;
  } catch (err) {
    ctx.log.warn({ keyId, err }, 'kill switch: the key could not be read from the Admin API');
    return 'the Admin API could not be asked directly for the key’s usage to confirm the spend';
  }
}

/** Usage complete to within this is fresh enough to act on a person's Deactivate (polls run every minute). */
const APPROVAL_FRESH_MS = 15 * MINUTE_MS;

type ApprovedDeactivation =
  | { result: 'deactivated' }
  | { result: 'busy' }
  | { result: 'not_active'; status: string }
  /** The policy or the kill switch's own checks said no (stale or impossible data, its hourly limit, spend not confirmed). */
  | { result: 'refused'; why: string }
  | { result: 'failed'; why: string | null };

/**
 * "Deactivate key" pressed on a runaway alert (anomaly.auto_deactivate.mode: approve): the kill switch's
 * deactivation on a person's word, with its bounds and records: only while the policy still says enabled and approve,
 * under the key-status lock, on fresh data only, its counts possible under the workspace's rate limits, within
 * max_per_hour, the spend confirmed by a direct read from the Admin API, and the change made as the kill switch
 * (its actor, so the hour's count and the episode's record see it; the reason names who approved). The caller has
 * checked the alert's episode still fires.
 */
export async function deactivateOnApproval(
  ctx: Ctx,
  req: { keyId: string; who: string },
): Promise<ApprovedDeactivation> {
  const policy = ctx.config.policy.anomaly;
  const cap = policy.auto_deactivate.min_hourly_usd;
  // the policy as it is at the press: a kill switch switched off (or back to auto) since the message asked says no
  if (!policy.auto_deactivate.enabled || policy.auto_deactivate.mode !== 'approve') {
    return { result: 'refused', why: 'anomaly.auto_deactivate is no longer enabled in approve mode' };
  }
  const locked = await ctx.repos.keys.withStatusLock(async (): Promise<ApprovedDeactivation> => {
    await settleInterruptedStatusChanges(ctx);
    const key = await ctx.repos.keys.statusOf(req.keyId);
    if (key === null) return { result: 'refused', why: 'keywarden no longer knows this key' };
    if (key.status !== 'active') return { result: 'not_active', status: key.status };
    const now = ctx.clock.now();
    const settled = await ctx.repos.watermarks.read(WATERMARKS.usageSettled);
    if (settled === null || now.getTime() - settled.getTime() > APPROVAL_FRESH_MS) {
      const since = settled === null ? 'no usage data yet' : `complete only to ${settled.toISOString().slice(0, 16)}Z`;
      return { result: 'refused', why: `the key's usage data is stale (${since}): keywarden does not act on it` };
    }
    const inLastHour = await deactivationsInLastHour(ctx);
    if (inLastHour >= policy.auto_deactivate.max_per_hour) {
      return { result: 'refused', why: cappedReason(policy.auto_deactivate, inLastHour) };
    }
    // the window a detection run at this moment would judge
    const until = lastCompleteMinute(now, settled)!;
    const window = { from: new Date(until.getTime() - (policy.window_minutes - 1) * MINUTE_MS), until };
    // the same data check the kill switch makes: counts the workspace's own limits could not have let through
    const scope = { keyId: req.keyId, workspaceScope: workspaceScopeId(key.workspaceId) };
    const impossible = await impossibleUsage(ctx, scope, window, (workspace) => rateLimitsOf(ctx, workspace));
    if (impossible !== null) return { result: 'refused', why: impossible };
    const unconfirmed = await confirmSpend(ctx, req.keyId, window, cap);
    if (unconfirmed !== null) return { result: 'refused', why: unconfirmed };
    const outcome = await setKeyStatus(ctx, {
      keyId: req.keyId,
      to: 'inactive',
      action: 'api_key.deactivate',
      actor: ACTOR,
      reason: `runaway spend above the hard cap of ${cap} USD/h; deactivation approved from Slack by ${req.who}`,
    });
    if (outcome === 'done') return { result: 'deactivated' };
    const why = await lastStatusChangeFailure(ctx, { keyId: req.keyId, action: 'api_key.deactivate', actor: ACTOR });
    return { result: 'failed', why };
  });
  return locked?.value ?? { result: 'busy' };
}
