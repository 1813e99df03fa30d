import type { AlertObservation } from '../../alerts/core/lifecycle.ts';
import type { AnomalyPolicy } from '../../config/policy.ts';
import { CONSOLE_KEYS_URL, CONSOLE_USAGE_URL } from '../../console.ts';
import { formatUsd, numberUsdToPico } from '../../money.ts';
import type { BaselineSource } from './baseline.ts';
import type { ContributorRanking, RateTrend, RunawayContributors, SpendActor } from './contributors.ts';
import type { RunawayAssessment } from './runaway.ts';

/**
 * The `usage.runaway` alerts of one detection run, as observations for the alert lifecycle. Pure. Every fact the
 * issue asks for is in `fields` too, because a storm of runaways is grouped into one message that lists titles and
 * fields only.
 */

export type RunawayScope =
  | { type: 'key'; id: string; name: string; hint: string | null; workspaceId: string | null; workspaceName: string }
  | { type: 'workspace'; id: string; workspaceId: string | null; workspaceName: string };

/** What the kill switch did for this key in this episode. */
export type KillSwitchOutcome =
  | { state: 'off' }
  | { state: 'armed'; capHourlyUsd: number }
  | { state: 'deactivated'; capHourlyUsd: number }
  | { state: 'failed'; capHourlyUsd: number }
  /** Above the cap after one poll: a later poll must show it again (one answer is never enough). */
  | { state: 'awaiting_evidence'; capHourlyUsd: number }
  /** anomaly.auto_deactivate.mode: approve: it would act; the alert's "Deactivate key" button waits for a person. */
  | { state: 'awaiting_approval'; capHourlyUsd: number }
  /** Above the cap, but not acted on: many keys at once, impossible counts, a cap reached, spend not confirmed. */
  | { state: 'refused'; capHourlyUsd: number; reason: string };

export interface RunawayFinding {
  scope: RunawayScope;
  assessment: RunawayAssessment;
  baselineSource: BaselineSource;
  /** Spend of the run by model and token kind; null when it could not be read. */
  contributors: RunawayContributors | null;
  /** Whether the run's rate is still rising (contributors.ts rateTrend); null or absent while too early to say. */
  trend?: RateTrend | null;
  /** Who is behind the spend, where the usage analytics name one; absent where the data has none. */
  actor?: SpendActor | null;
  /** Keys only. */
  killSwitch: KillSwitchOutcome | null;
  /** While firing: the last minute whose rate was at or above the threshold. */
  lastAbnormal: Date | null;
  dataUntil: Date;
}

const perHour = (usd: number) => `${formatUsd(numberUsdToPico(usd))}/h`;
const usd = (amount: number) => formatUsd(numberUsdToPico(amount));
const clockTime = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

const BASELINE_WORDS: Record<BaselineSource, string> = {
  hour_of_week: 'this hour of the week',
  busy_hours: 'its usual busy hour',
  session_rate: 'its usual rate while in a session',
  expected: 'marked as expected',
  recent_days: 'this hour over recent days',
  workspace: "its workspace's largest key",
  floor: 'no history yet: the policy floor',
};

const TOKEN_KIND_WORDS: Record<string, string> = {
  uncached_input: 'input',
  cache_read: 'cache reads',
  cache_creation_5m: 'cache writes (5m)',
  cache_creation_1h: 'cache writes (1h)',
  output: 'output',
  web_search: 'web search',
};

const TREND_WORDS: Record<RateTrend['direction'], string> = {
  rising: 'Still rising',
  steady: 'Holding',
  falling: 'Easing',
};

/** "Still rising: $90.00/h over the last 5 minutes, against $40.00/h in the 5 before." */
function trendText(t: RateTrend): string {
  return (
    `${TREND_WORDS[t.direction]}: ${perHour(t.recentHourlyUsd)} over the last ${t.minutes} minutes, against ` +
    `${perHour(t.earlierHourlyUsd)} in the ${t.minutes} before.`
  );
}

/** "rising: $90.00/h (last 5 min), from $40.00/h": the field, short enough for a grouped message. */
function trendField(t: RateTrend): string {
  return `${t.direction}: ${perHour(t.recentHourlyUsd)} (last ${t.minutes} min), from ${perHour(t.earlierHourlyUsd)}`;
}

function actorText(a: SpendActor): string {
  return a.share === null ? a.name : `${a.name} (${Math.round(a.share * 100)}% of the spend)`;
}

function ranking(r: ContributorRanking, words: (name: string) => string = (n) => n): string {
  const parts = r.top.map((c) => `${words(c.name)} ${Math.round(c.share * 100)}%`);
  if (r.rest.count > 0) parts.push(`${r.rest.count} more ${Math.round(r.rest.share * 100)}%`);
  return parts.length > 0 ? parts.join(', ') : '—';
}

function multiple(current: number, typical: number): string {
  if (!(typical > 0)) return 'no typical spend at this hour';
  const m = current / typical;
  return `${m >= 10 ? Math.round(m) : m.toFixed(1)}× typical`;
}

export function runawayObservations(findings: readonly RunawayFinding[], policy: AnomalyPolicy): AlertObservation[] {
  const out: AlertObservation[] = [];
  for (const f of findings) {
    const a = f.assessment;
    const s = f.scope;
    const started = a.startedAt ?? f.dataUntil;
    const subject = s.type === 'key' ? `API key "${s.name}"` : `workspace "${s.workspaceName}"`;
    const calming = f.lastAbnormal !== null && f.lastAbnormal.getTime() < f.dataUntil.getTime();
    const rateLine = calming
      ? `It was back under the bar after ${clockTime(f.lastAbnormal!)}; the alert resolves once the rate has been normal for 30 minutes.`
      : `If it continues, the next 24 hours cost ${usd(a.projected24hUsd)}.`;
    const models = f.contributors ? ranking(f.contributors.models) : '—';
    const kinds = f.contributors ? ranking(f.contributors.tokenKinds, (k) => TOKEN_KIND_WORDS[k] ?? k) : '—';
    const kill = f.killSwitch ? killSwitchText(f.killSwitch, s) : null;
    const who = s.type === 'key' ? `Key "${s.name}" in ${s.workspaceName}` : `Workspace "${s.workspaceName}"`;
    const bar =
      `against a typical ${perHour(a.typicalHourlyUsd)} (${BASELINE_WORDS[f.baselineSource]}); runaway means above ` +
      `${perHour(a.thresholdHourlyUsd)} (factor ${policy.factor}, at least ${perHour(policy.min_hourly_usd)}).`;
    const trend = f.trend ? trendText(f.trend) : null;
    const actor = f.actor ? actorText(f.actor) : null;
    const summary = [
      calming
        ? `${who} spent at a runaway rate from ${clockTime(started)}; it is now at ${perHour(a.currentHourlyUsd)}, ${bar}`
        : `${who} has spent ${perHour(a.currentHourlyUsd)} since ${clockTime(started)}, ${bar}`,
      rateLine,
      ...(trend ? [trend] : []),
      ...(actor ? [`Behind it: ${actor}.`] : []),
      `Models: ${models}. Token kinds: ${kinds}.`,
      ...(kill ? [kill] : []),
    ].join('\n');
    const fields = [
      ...(s.type === 'key' ? [{ label: 'Key', value: `${s.name} (${s.hint ?? s.id})` }] : []),
      { label: 'Workspace', value: s.workspaceName },
      { label: 'Rate', value: `${perHour(a.currentHourlyUsd)} (${multiple(a.currentHourlyUsd, a.typicalHourlyUsd)})` },
      { label: 'Typical', value: `${perHour(a.typicalHourlyUsd)} (${BASELINE_WORDS[f.baselineSource]})` },
      { label: 'Since', value: clockTime(started) },
      { label: 'Next 24 h at this rate', value: usd(a.projected24hUsd) },
      ...(f.trend ? [{ label: 'Trend', value: trendField(f.trend) }] : []),
      ...(actor ? [{ label: 'Actor', value: actor }] : []),
      { label: 'Models', value: models },
      { label: 'Token kinds', value: kinds },
      ...(kill ? [{ label: 'Kill switch', value: kill }] : []),
    ];
    const details = {
      currentHourlyUsd: a.currentHourlyUsd,
      typicalHourlyUsd: a.typicalHourlyUsd,
      thresholdHourlyUsd: a.thresholdHourlyUsd,
      baselineSource: f.baselineSource,
      startedAt: started.toISOString(),
      projected24hUsd: a.projected24hUsd,
      killSwitch: f.killSwitch?.state ?? null,
      killSwitchReason: f.killSwitch?.state === 'refused' ? f.killSwitch.reason : null,
      trend: f.trend?.direction ?? null,
      actor: f.actor?.name ?? null,
    };
    const base = {
      kind: 'usage.runaway' as const,
      severity: 'critical' as const,
      scopeType: s.type,
      scopeId: s.id,
      scopeName: s.type === 'key' ? s.name : s.workspaceName,
      workspaceId: s.workspaceId,
      workspaceName: s.workspaceName,
      links: [{ label: 'Usage in the Console', url: CONSOLE_USAGE_URL }],
    };
    out.push({
      ...base,
      period: '',
      title: `Runaway spend on ${subject}`,
      summary,
      fields,
      details,
    });
    // The first post usually goes out before the kill switch trips (it waits for a whole window above the cap), so
    // the deactivation is a message of its own, once per episode; it resolves with the runaway. So is the question
    // when a person decides (mode: approve): its message carries the Deactivate key button.
    if (s.type === 'key' && f.killSwitch?.state === 'awaiting_approval') {
      out.push({
        ...base,
        period: `approval@${started.toISOString()}`,
        title: `Deactivate API key "${s.name}"? It stayed above the runaway hard cap`,
        summary: kill ?? '',
        fields: [fields[0]!, fields[1]!, fields[2]!, { label: 'Kill switch', value: kill ?? '' }],
        details,
        links: [{ label: 'API keys in the Console', url: CONSOLE_KEYS_URL }],
      });
    }
    if (s.type === 'key' && f.killSwitch?.state === 'deactivated') {
      out.push({
        ...base,
        period: `deactivated@${started.toISOString()}`,
        title: `API key "${s.name}" was set inactive by the runaway kill switch`,
        summary: kill ?? '',
        fields: [fields[0]!, fields[1]!, fields[2]!, { label: 'To reactivate', value: reactivateCommand(s.id) }],
        details,
        links: [{ label: 'API keys in the Console', url: CONSOLE_KEYS_URL }],
      });
    }
  }
  return out;
}

function reactivateCommand(keyId: string): string {
  return `keywarden keys reactivate ${keyId} --reason "…"`;
}

function killSwitchText(k: KillSwitchOutcome, s: RunawayScope): string | null {
  if (s.type !== 'key') return null;
  switch (k.state) {
    case 'off':
      return 'off (anomaly.auto_deactivate.enabled: false): the key stays active.';
    case 'armed':
      return `on: the key is set inactive if it stays above ${perHour(k.capHourlyUsd)} through the window.`;
    case 'deactivated':
      return `keywarden set the key inactive: it stayed above the hard cap of ${perHour(k.capHourlyUsd)} (anomaly.auto_deactivate). Requests with it now fail. To reactivate it once the cause is fixed: ${reactivateCommand(s.id)}`;
    case 'failed':
      return `setting the key inactive (above the hard cap of ${perHour(k.capHourlyUsd)}) failed; keywarden tries again on the next run.`;
    case 'awaiting_evidence':
      return `on: the key is above the hard cap of ${perHour(k.capHourlyUsd)} in one poll's data; it is set inactive only if the next poll shows it too.`;
    case 'awaiting_approval':
      return `the key stayed above the hard cap of ${perHour(k.capHourlyUsd)}; with anomaly.auto_deactivate.mode: approve, it is set inactive when a person allowed to (slack_actions.allow.approve_deactivation) presses Deactivate key on this alert.`;
    case 'refused':
      return `the key is above the hard cap of ${perHour(k.capHourlyUsd)}, but keywarden did not set it inactive: ${k.reason}.`;
  }
}
