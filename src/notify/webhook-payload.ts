import type { Severity } from '../kinds.ts';
import { type Pico, picoToUsd, usdToPico } from '../money.ts';
import type { SpendChart } from './chart.ts';
import { isWebUrl } from './escape.ts';
import type { AlertFacts, DigestMessage, Notification, NotificationLink } from './message.ts';

/**
 * The JSON a signed webhook receives, version 1. Documented by docs/webhook-payload.schema.json, which the tests
 * validate every delivery against: a field added here is added there, a field changed means version 2.
 * Pure. Names stay as the organization wrote them: JSON.stringify encodes them, the receiver decides what to escape.
 */

const WEBHOOK_PAYLOAD_VERSION = 1;

interface WebhookScope {
  type: string;
  id: string;
  name: string | null;
}

interface WebhookAlert {
  fingerprint: string;
  type: string;
  severity: Severity;
  title: string;
  scope: WebhookScope;
  workspace: { id: string | null; name: string | null };
  /** spend.*: amounts in USD as decimal strings (never floats), the threshold as a fraction, the share in percent. */
  spend?: {
    month: string | null;
    limit_usd: string | null;
    month_to_date_usd: string | null;
    projected_usd: string | null;
    projected_p90_usd: string | null;
    threshold: number | null;
    percentage_used: number | null;
  };
  /** usage.runaway: the rate and the baseline it is measured against, USD per hour. */
  runaway?: {
    rate_usd_per_hour: string | null;
    baseline_usd_per_hour: string | null;
    threshold_usd_per_hour: string | null;
    since: string | null;
  };
  /** rotation.*: the key's deadline and the key that is taking over its traffic, when one was found. */
  rotation?: { deadline: string | null; successor: { id: string } | null; stage: string | number | null };
}

interface WebhookAlertPayload {
  version: typeof WEBHOOK_PAYLOAD_VERSION;
  /** The same as the `webhook-id` header: stable across retries, so a receiver can drop a second copy. */
  id: string;
  type: string;
  state: 'firing' | 'repeat' | 'resolved';
  severity: Severity;
  /** The alert's fingerprint, or the group's when one message speaks for several alerts. */
  fingerprint: string;
  organization: { name: string };
  title: string;
  summary: string;
  alerts: WebhookAlert[];
  links: { label: string; url: string }[];
}

interface WebhookDigestPayload {
  version: typeof WEBHOOK_PAYLOAD_VERSION;
  id: string;
  /** `digest.finance` or `digest.security`. */
  type: string;
  state: 'digest';
  organization: { name: string };
  title: string;
  summary: string;
  figures: { label: string; value: string }[];
  sections: { title: string; columns: string[]; rows: string[][]; more: number }[];
  links: { label: string; url: string }[];
  /** The finance digest's figures as data: what a FinOps pipeline loads without parsing "$1,234.56". */
  spend?: {
    /** The organization's local day the digest is for, and the days of its month so far. */
    date: string | null;
    timezone: string;
    month_to_date_usd: string;
    daily_usd: string[];
    limit_usd: string | null;
    projected_usd: string | null;
    projected_p10_usd: string | null;
    projected_p90_usd: string | null;
  };
}

interface WebhookContext {
  /** The outbox row's id, as `webhook-id` carries it. */
  id: string;
  organization: string;
}

export function renderWebhookAlert(
  n: Notification,
  fingerprint: string,
  alerts: readonly AlertFacts[],
  ctx: WebhookContext,
): WebhookAlertPayload {
  return {
    version: WEBHOOK_PAYLOAD_VERSION,
    id: ctx.id,
    type: n.kind,
    state: n.event,
    severity: n.severity,
    fingerprint,
    organization: { name: ctx.organization },
    title: n.title,
    summary: n.summary,
    alerts: alerts.map(webhookAlert),
    links: links(n.links),
  };
}

/**
 * `chart`: the finance digest's chart data, whose numbers become `spend`; `date`: the digest's period when it is a
 * day (the finance digest's), from the outbox row's fingerprint.
 */
export function renderWebhookDigest(
  d: DigestMessage,
  chart: SpendChart | null,
  date: string | null,
  ctx: WebhookContext,
): WebhookDigestPayload {
  return {
    version: WEBHOOK_PAYLOAD_VERSION,
    id: ctx.id,
    type: d.kind,
    state: 'digest',
    organization: { name: ctx.organization },
    title: d.title,
    summary: d.summary,
    figures: d.fields.map((f) => ({ label: f.label, value: f.value })),
    sections: d.sections.map((s) => ({
      title: s.title,
      columns: s.columns.map((c) => c.label),
      rows: s.rows,
      more: s.more ?? 0,
    })),
    links: links(d.links),
    ...(chart === null ? {} : { spend: digestSpend(chart, date) }),
  };
}

/**
 * The chart's figures as decimal strings. The chart keeps dollars as numbers (it only draws them), so they are
 * rounded to the micro-dollar here, which they hold exactly at any spend a month can reach.
 */
function digestSpend(chart: SpendChart, date: string | null): NonNullable<WebhookDigestPayload['spend']> {
  const amount = (v: number | null) => usd(pico(v));
  const cumulative = chart.cumulativeUsd.map((v) => pico(v) ?? 0n);
  return {
    date,
    timezone: chart.timezone,
    month_to_date_usd: usd(cumulative.at(-1) ?? 0n)!,
    daily_usd: cumulative.map((v, i) => usd(v - (i === 0 ? 0n : cumulative[i - 1]!))!),
    limit_usd: amount(chart.limitUsd),
    projected_usd: amount(chart.projection?.p50 ?? null),
    projected_p10_usd: amount(chart.projection?.p10 ?? null),
    projected_p90_usd: amount(chart.projection?.p90 ?? null),
  };
}

function links(list: readonly NotificationLink[]): { label: string; url: string }[] {
  return list.filter((l) => isWebUrl(l.url)).map((l) => ({ label: l.label, url: l.url }));
}

/** One alert as data: the webhook payload's `alerts[]` entry, and what PagerDuty's `custom_details` carry. */
export function webhookAlert(a: AlertFacts): WebhookAlert {
  const d = a.details;
  const out: WebhookAlert = {
    fingerprint: a.fingerprint,
    type: a.kind,
    severity: a.severity,
    title: a.title,
    scope: { type: a.scope.type, id: a.scope.id, name: a.scope.name },
    workspace: { id: a.workspace.id, name: a.workspace.name },
  };
  if (a.kind.startsWith('spend.')) {
    const limit = pico(d.limitUsd);
    const spent = pico(d.monthToDateUsd);
    out.spend = {
      month: text(d.month),
      limit_usd: usd(limit),
      month_to_date_usd: usd(spent),
      projected_usd: usd(pico(d.p50Usd)),
      projected_p90_usd: usd(pico(d.p90Usd)),
      threshold: typeof d.threshold === 'number' ? d.threshold : null,
      // to a hundredth of a percent, in integers: 823.40 of 1000 is 82.34, not 82.33999999
      percentage_used: limit !== null && spent !== null && limit > 0n ? Number((spent * 10_000n) / limit) / 100 : null,
    };
  }
  if (a.kind === 'usage.runaway') {
    out.runaway = {
      rate_usd_per_hour: usd(pico(d.currentHourlyUsd)),
      baseline_usd_per_hour: usd(pico(d.typicalHourlyUsd)),
      threshold_usd_per_hour: usd(pico(d.thresholdHourlyUsd)),
      since: text(d.startedAt),
    };
  }
  if (a.kind.startsWith('rotation.')) {
    const successor = text(d.successor);
    out.rotation = {
      deadline: text(d.deadline),
      successor: successor === null ? null : { id: successor },
      stage: typeof d.stage === 'number' || typeof d.stage === 'string' ? d.stage : null,
    };
  }
  return out;
}

function text(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/**
 * A figure from an alert's details as picodollars: the spend rules keep decimal strings, the runaway rule numbers
 * (rates, rounded here to the micro-dollar, which is all a float of dollars per hour can honestly say).
 */
function pico(v: unknown): Pico | null {
  if (typeof v === 'number' && Number.isFinite(v)) return usdToPico(v.toFixed(6));
  if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) return usdToPico(v);
  return null;
}

/** A decimal string with at least two places and no trailing zeros beyond them: `1000.00`, `412.503`. */
function usd(v: Pico | null): string | null {
  if (v === null) return null;
  return picoToUsd(v).replace(/(\.\d\d\d*?)0+$/, '$1');
}
