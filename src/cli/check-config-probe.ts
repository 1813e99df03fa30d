import { ANALYTICS_BETA } from '../anthropic/analytics.ts';
import type { AdminClient } from '../anthropic/client.ts';
import { AdminApiError, AdminKeyRejectedError } from '../anthropic/errors.ts';
import { SPEND_LIMITS_BETA, SPEND_LIMITS_PATH } from '../anthropic/spend-limits.ts';
import type { Query } from '../anthropic/transport.ts';
import type { Policy } from '../config/policy.ts';
import { DAY_MS, HOUR_MS } from '../time.ts';

/**
 * `keywarden check-config --probe`: one request to each Admin API keywarden can use, with the configured admin key,
 * and what keywarden will use given the answers. A refusal of an optional API is a fact to print (early access,
 * another organization type, a beta not granted), not a failure; a refused admin key, or a classic usage report
 * that does not answer, is (keywarden cannot watch anything without them).
 */

interface Probe {
  name: string;
  path: string;
  query: (now: Date) => Query;
  beta?: string;
  /** Needed for keywarden to work at all. */
  required?: boolean;
}

const rfc3339 = (at: Date) => at.toISOString().replace(/\.\d{3}Z$/, 'Z');
const dayStart = (now: Date) => new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS - DAY_MS);

const PROBES: readonly Probe[] = [
  {
    name: 'classic usage report',
    path: '/v1/organizations/usage_report/messages',
    query: (now) => ({ starting_at: rfc3339(new Date(now.getTime() - 2 * HOUR_MS)), bucket_width: '1h', limit: 1 }),
    required: true,
  },
  {
    name: 'classic cost report',
    path: '/v1/organizations/cost_report',
    query: (now) => ({ starting_at: rfc3339(dayStart(now)), bucket_width: '1d', limit: 1 }),
  },
  {
    name: 'analytics usage',
    path: '/v1/organizations/analytics/usage',
    query: (now) => ({
      starting_at: rfc3339(dayStart(now)),
      ending_at: rfc3339(new Date(dayStart(now).getTime() + DAY_MS)),
      time_bucket_width: '1d',
      limit: 1,
    }),
    beta: ANALYTICS_BETA,
  },
  {
    name: 'analytics cost',
    path: '/v1/organizations/analytics/cost',
    query: (now) => ({
      starting_at: rfc3339(dayStart(now)),
      ending_at: rfc3339(new Date(dayStart(now).getTime() + DAY_MS)),
      time_bucket_width: '1d',
      limit: 1,
    }),
    beta: ANALYTICS_BETA,
  },
  { name: 'spend limits', path: SPEND_LIMITS_PATH, query: () => ({ limit: 1 }), beta: SPEND_LIMITS_BETA },
  { name: 'rate limits', path: '/v1/organizations/rate_limits', query: () => ({ limit: 1 }) },
  {
    name: 'member spend limits (Enterprise)',
    path: '/v1/organizations/spend_limits/effective',
    query: () => ({ limit: 1 }),
  },
  {
    name: 'spend limit increase requests (Enterprise)',
    path: '/v1/organizations/spend_limit_increase_requests',
    query: () => ({ limit: 1 }),
  },
];

export interface ProbeResult {
  name: string;
  endpoint: string;
  available: boolean;
  /** HTTP status; 0 when no answer came. */
  status: number;
  /** `error.details.error_code` or `error.type`, or the failure's kind; null when available. */
  answer: string | null;
  required: boolean;
}

export interface ProbeReport {
  baseUrl: string;
  keyHint: string;
  keyRejected: boolean;
  results: ProbeResult[];
  /** What keywarden will use, feature by feature. */
  uses: Record<string, string>;
  /** Why the probe fails the check (exit 2), if it does. */
  problems: string[];
}

/** Calls each API once, in order (a rate-limited organization is not hit by eight calls at once). */
export async function probeAdminApi(
  admin: AdminClient,
  opts: { baseUrl: string; keyHint: string; policy: Policy; now: Date },
): Promise<ProbeReport> {
  const results: ProbeResult[] = [];
  let keyRejected = false;
  for (const p of PROBES) {
    const endpoint = `GET ${p.path}`;
    const required = p.required === true;
    try {
      // the usage report is every organization's: a 403 there is the key, not a feature the organization lacks
      await admin.probe(p.path, p.query(opts.now), { beta: p.beta, featureGated: p.required !== true });
      results.push({ name: p.name, endpoint, available: true, status: 200, answer: null, required });
    } catch (err) {
      if (!(err instanceof AdminApiError)) throw err;
      if (err instanceof AdminKeyRejectedError) keyRejected = true;
      results.push({
        name: p.name,
        endpoint,
        available: false,
        status: err.status,
        answer: err.errorCode ?? err.errorType,
        required,
      });
    }
  }
  const has = (name: string) => results.find((r) => r.name === name)?.available === true;
  const uses: Record<string, string> = {
    'usage polling': has('classic usage report')
      ? 'classic usage report, 1-minute buckets per key'
      : 'nothing: the usage report does not answer',
    'billed cost': has('analytics cost')
      ? 'analytics cost, per key (reconciled against priced usage)'
      : has('classic cost report')
        ? 'classic cost report, per workspace (the analytics cost API does not answer)'
        : 'priced usage only (no cost report answers)',
    'spend limits': !opts.policy.spend.limits_from_api
      ? 'the policy file (spend.limits_from_api is false)'
      : has('spend limits')
        ? 'the Spend Limits API (organization, workspaces, usage tier) and the policy file'
        : 'the policy file (the Spend Limits API does not answer)',
    'rate-limit headroom': has('rate limits') ? 'the Rate Limits API' : 'off (the Rate Limits API does not answer)',
    'member spend limits': has('member spend limits (Enterprise)')
      ? "the per-member report: 75% and 95% of each member's limit, by email to the member"
      : 'not used (Enterprise only; this organization does not answer)',
    'limit increase requests': has('spend limit increase requests (Enterprise)')
      ? 'the pending ones in the finance digest'
      : 'not used (Enterprise only; this organization does not answer)',
  };
  const problems: string[] = [];
  if (keyRejected) problems.push(`the Admin API refused the admin key ${opts.keyHint}`);
  for (const r of results) {
    if (r.required && !r.available && !keyRejected) {
      problems.push(`${r.endpoint} (${r.name}) answered ${r.status} ${r.answer}: keywarden cannot poll usage`);
    }
  }
  return { baseUrl: opts.baseUrl, keyHint: opts.keyHint, keyRejected, results, uses, problems };
}

/** The probe as a table and a list, for a terminal. */
export function renderProbe(report: ProbeReport): string {
  const width = Math.max(...report.results.map((r) => r.name.length));
  const lines = [
    `Admin API probe: ${report.baseUrl} with admin key ${report.keyHint}`,
    '',
    `${'API'.padEnd(width)}  available  answer`,
    ...report.results.map(
      (r) =>
        `${r.name.padEnd(width)}  ${(r.available ? 'yes' : 'no').padEnd(9)}  ${r.available ? '200' : `${r.status} ${r.answer}`}`,
    ),
    '',
    'keywarden will use:',
    ...Object.entries(report.uses).map(([feature, what]) => `  ${feature}: ${what}`),
  ];
  return lines.join('\n');
}
