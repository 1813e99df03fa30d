import { createHash } from 'node:crypto';
import type { Receivers } from '../config/receivers.ts';
import type { Severity } from '../kinds.ts';
import { isWebUrl, singleLine, truncate } from './escape.ts';
import { type DeliveryResult, postJson } from './http-delivery.ts';
import type { AlertFacts, Notification } from './message.ts';
import { webhookAlert } from './webhook-payload.ts';

/**
 * PagerDuty through the Events API v2: `trigger` when an alert fires (and again on a repeat, which PagerDuty adds to
 * the open incident's log rather than paging twice), `acknowledge`, `resolve`; the alert's fingerprint is the
 * `dedup_key`, so the whole lifecycle lands on one incident.
 *
 * A plain fetch rather than @pagerduty/pdjs: pdjs builds `https://${server}/v2/enqueue` from a host name, so
 * PAGERDUTY_EVENTS_URL could not point it at a local stand-in (http, a port, a path), it retries 429s itself by
 * sleeping inside the call (the outbox owns retries), and it brings cross-fetch for what Node's fetch does.
 */

type PagerDutyAction = 'trigger' | 'acknowledge' | 'resolve';

/** The event without its routing key: what is rendered from the alert, and what a test can read. */
interface PagerDutyEvent {
  event_action: PagerDutyAction;
  dedup_key: string;
  /** Only on `trigger`: acknowledge and resolve name the incident by dedup_key alone. */
  payload?: {
    summary: string;
    source: string;
    severity: 'critical' | 'error' | 'warning' | 'info';
    component: string;
    group: string;
    class: string;
    custom_details: Record<string, unknown>;
  };
  links?: { href: string; text: string }[];
  client: string;
}

/** PagerDuty caps: summary 1024 characters, dedup_key 255. */
const SUMMARY_MAX = 1024;
const DEDUP_KEY_MAX = 255;

const SEVERITY: Record<Severity, NonNullable<PagerDutyEvent['payload']>['severity']> = {
  critical: 'critical',
  warning: 'warning',
  info: 'info',
};

/** The event for a notification about one alert. Pure. */
export function renderPagerDutyEvent(
  n: Notification,
  fingerprint: string,
  alert: AlertFacts | null,
  action: PagerDutyAction = n.event === 'resolved' ? 'resolve' : 'trigger',
): PagerDutyEvent {
  const event: PagerDutyEvent = { event_action: action, dedup_key: dedupKey(fingerprint), client: 'keywarden' };
  if (action !== 'trigger') return event;
  const details: Record<string, unknown> = { kind: n.kind, state: n.event };
  for (const f of n.fields) details[f.label] = f.value;
  if (n.summary) details.summary = n.summary;
  if (alert !== null) details.alert = webhookAlert(alert);
  return {
    ...event,
    payload: {
      // one line: PagerDuty shows the summary as an incident title, in push notifications and SMS
      summary: truncate(singleLine(n.title), SUMMARY_MAX),
      source: 'keywarden',
      severity: SEVERITY[n.severity],
      component: alert === null ? '' : truncate(singleLine(alert.scope.name ?? alert.scope.id), 255),
      group: alert?.workspace.name ? truncate(singleLine(alert.workspace.name), 255) : '',
      class: n.kind,
      custom_details: details,
    },
    links: n.links.filter((l) => isWebUrl(l.url)).map((l) => ({ href: l.url, text: singleLine(l.label) })),
  };
}

/** The fingerprint as PagerDuty's dedup_key; one past PagerDuty's limit is hashed, the same way each time. */
function dedupKey(fingerprint: string): string {
  if (fingerprint.length <= DEDUP_KEY_MAX) return fingerprint;
  return `keywarden-sha256:${createHash('sha256').update(fingerprint).digest('hex')}`;
}

export interface PagerDutyClient {
  /** `receiver`: the policy's name for it, whose routing key goes with the event. */
  send(receiver: string, event: PagerDutyEvent): Promise<DeliveryResult>;
}

interface PagerDutyOptions {
  receivers: Receivers['pagerduty'];
  /** PAGERDUTY_EVENTS_URL: `https://events.pagerduty.com` by default. */
  eventsUrl: string;
  timeoutMs?: number;
}

export function createPagerDutyClient(opts: PagerDutyOptions): PagerDutyClient {
  const url = new URL('v2/enqueue', opts.eventsUrl.endsWith('/') ? opts.eventsUrl : `${opts.eventsUrl}/`).toString();
  return {
    async send(receiver, event) {
      const r = opts.receivers[receiver];
      const what = `pagerduty "${receiver}" ${event.event_action}`;
      if (r === undefined) {
        return {
          ok: false,
          failure: { kind: 'retryable', reason: `${what}: not in the policy's receivers.pagerduty (was it renamed?)` },
        };
      }
      const routingKey = r.routingKey.reveal();
      const res = await postJson({
        what,
        url,
        body: JSON.stringify({ routing_key: routingKey, ...event }),
        timeoutMs: opts.timeoutMs ?? 10_000,
        secrets: [routingKey],
        // a 400 names the field PagerDuty refused in `errors`; the reason quotes it
        permanentHint: (status) =>
          status === 400
            ? ' (PagerDuty refused the event; a routing_key error means the integration key in the variable is wrong)'
            : status === 404
              ? ' (check PAGERDUTY_EVENTS_URL)'
              : '',
      });
      if (!('status' in res)) return res;
      let key = event.dedup_key;
      try {
        key = (JSON.parse(res.body) as { dedup_key?: string }).dedup_key ?? key;
      } catch {
        // a 202 with no JSON body still accepted the event
      }
      return { ok: true, providerId: `${receiver}:${key}` };
    },
  };
}
