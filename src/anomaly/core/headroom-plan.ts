import type { AlertObservation } from '../../alerts/core/lifecycle.ts';
import { CONSOLE_LIMITS_URL } from '../../console.ts';
import { MINUTE_MS } from '../../time.ts';
import {
  assessHeadroom,
  type HeadroomReading,
  limiterLabel,
  type RateLimitGroup,
  type TokenUsageMinute,
} from './headroom.ts';
import { DEFAULT_WORKSPACE_SCOPE } from './series.ts';

/**
 * One headroom check, decided: which workspaces are judged, and the `ratelimit.headroom` alerts of those whose usage
 * is close to a limit. Pure: the caller reads the usage and the limits (check-headroom.ts) and raises the alerts.
 */

/** Share of a limit at which requests are close to failing with 429. */
const HEADROOM_THRESHOLD = 0.8;

/**
 * The workspaces judged: every one with usage in the window, and every one whose headroom alert is firing (with no
 * usage left it must still be judged, or its alert would never resolve).
 */
export function headroomScopes(withUsage: Iterable<string>, firing: Iterable<string>): string[] {
  return [...new Set([...withUsage, ...firing])];
}

/**
 * Which reads beyond the window's stored usage the limits in effect need: fast-mode usage, the last 24 hours, request
 * counts.
 */
export function headroomReadsNeeded(limits: Iterable<readonly RateLimitGroup[]>): {
  fast: boolean;
  lastDay: boolean;
  requests: boolean;
} {
  const types = new Set([...limits].flatMap((groups) => groups.flatMap((g) => g.limits.map((l) => l.type))));
  return {
    fast: types.has('fast_itpmca') || types.has('fast_otpm'),
    lastDay: types.has('tokens_per_day'),
    requests: types.has(REQUESTS_LIMIT),
  };
}

const REQUESTS_LIMIT = 'requests_per_minute';

/**
 * Requests per workspace in the window, from the analytics usage API: read; `refused` where the organization has no
 * access (no request headroom, for as long as that lasts: its alerts resolve); `failed` when this run's read failed
 * (a workspace with a requests limit is then not judged, so its alerts stay as they were rather than resolve and
 * fire again on the next run); null when no limit counts requests.
 */
export type RequestUsage = ReadonlyMap<string, readonly TokenUsageMinute[]> | 'refused' | 'failed' | null;

export interface HeadroomInput {
  window: { from: Date; until: Date };
  /** Token usage per workspace scope in the window. */
  usage: ReadonlyMap<string, readonly TokenUsageMinute[]>;
  /** The limits in effect per workspace judged; a workspace whose limits could not be read is absent. */
  limits: ReadonlyMap<string, readonly RateLimitGroup[]>;
  /** Fast-mode usage per workspace in the window; null when not needed or not readable (those limits skipped). */
  fast: ReadonlyMap<string, readonly TokenUsageMinute[]> | null;
  /** Usage per workspace over the last 24 hours; null when no per-day limit applies. */
  lastDay: ReadonlyMap<string, readonly TokenUsageMinute[]> | null;
  /** Requests per workspace and model in the window (absent: not read, as null). */
  requests?: RequestUsage;
  names: ReadonlyMap<string, { name: string }>;
}

export interface HeadroomPlan {
  /** Alert scopes judged (`workspace:<scope>`): their alerts not observed here resolve. */
  evaluated: string[];
  observations: AlertObservation[];
}

/** One reading per workspace, group and limit; an alert for each at 80% of its limit or more. */
export function planHeadroom(input: HeadroomInput): HeadroomPlan {
  const plan: HeadroomPlan = { evaluated: [], observations: [] };
  // a workspace whose limits could not be read is not judged: its alerts stay as they were
  const requests = input.requests ?? null;
  for (const [scope, groups] of input.limits) {
    if (requests === 'failed' && groups.some((g) => g.limits.some((l) => l.type === REQUESTS_LIMIT))) continue;
    plan.evaluated.push(`workspace:${scope}`);
    const name = input.names.get(scope)?.name ?? scope;
    const extra = {
      fast: input.fast ? (input.fast.get(scope) ?? []) : null,
      lastDay: input.lastDay ? (input.lastDay.get(scope) ?? []) : null,
      requests: requests instanceof Map ? (requests.get(scope) ?? []) : null,
    };
    for (const reading of assessHeadroom(
      input.usage.get(scope) ?? [],
      groups,
      input.window,
      HEADROOM_THRESHOLD,
      extra,
    )) {
      if (reading.atRisk) plan.observations.push(headroomObservation(scope, name, reading, input.window));
    }
  }
  return plan;
}

/** One alert per workspace, model group and limit. */
function headroomObservation(
  scope: string,
  workspaceName: string,
  r: HeadroomReading,
  window: { from: Date; until: Date },
): AlertObservation {
  const modelList = r.models ? r.models.join(', ') : 'models without a group of their own';
  const models = r.groupName ? `${r.groupName}: ${modelList}` : modelList;
  const words = limiterLabel(r.limitType);
  const percent = Math.round(r.utilization * 100);
  const minutes = Math.round((window.until.getTime() - window.from.getTime()) / MINUTE_MS) + 1;
  const count = (n: number) => (n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US'));
  const usedText =
    r.per === 'day'
      ? `${count(r.used)} in the last 24 hours`
      : r.per === 'second'
        ? `mean ${count(r.used)}/s over ${minutes} min`
        : `mean ${count(r.used)}/min over ${minutes} min`;
  const over = r.per === 'day' ? 'Over the last 24 hours it used' : `Over the last ${minutes} minutes it averaged`;
  return {
    kind: 'ratelimit.headroom',
    severity: r.utilization >= 1 ? 'critical' : 'warning',
    scopeType: 'workspace',
    scopeId: scope,
    workspaceId: scope === DEFAULT_WORKSPACE_SCOPE ? null : scope,
    workspaceName,
    // The stable group id when the API gives one; the model list in classic responses.
    period: `${r.limitType}:${r.groupId ?? (r.models ? r.models.join('+') : '*')}`,
    title: `Workspace "${workspaceName}" uses ${percent}% of its ${words} limit`,
    summary:
      `${over} ${count(r.used)} of its ${count(r.limit)} ` +
      `${words} (${models}). Requests start failing with 429 before the limit looks full; ` +
      'raise the limit in the Console or spread the load.',
    fields: [
      { label: 'Workspace', value: workspaceName },
      { label: 'Limit', value: `${count(r.limit)} ${words}` },
      { label: 'Used', value: `${percent}% (${usedText})` },
      {
        label: 'Peak minute',
        value: r.peakMinute ? `${count(r.peakPerMinute)} at ${r.peakMinute.toISOString().slice(11, 16)} UTC` : '—',
      },
      { label: 'Models', value: models },
    ],
    links: [{ label: 'Limits in the Console', url: CONSOLE_LIMITS_URL }],
    details: {
      utilization: r.utilization,
      limitType: r.limitType,
      limit: r.limit,
      per: r.per,
      groupId: r.groupId,
      models: r.models,
    },
  };
}
