import type { Severity } from '../alerts/kinds.ts';

/**
 * One notification, as the alert lifecycle hands it to the renderer. Every string in here is plain, untrusted text:
 * key, workspace and user names end up in titles, fields and items, so the renderer escapes all of it for each
 * medium and adds all the markup itself. Callers never pre-format (no mrkdwn, no HTML).
 */
export interface Notification {
  /** The alert kind (`usage.runaway`, `rotation.overdue`, ...): shown in the context line, not interpreted. */
  kind: string;
  event: NotificationEvent;
  severity: Severity;
  /** One line, e.g. `Runaway spend on key "Production Backend"`. */
  title: string;
  /** A few sentences; line breaks are kept. */
  summary: string;
  fields: NotificationField[];
  /** Console pages and the like: rendered as buttons (Slack) and links (email). Only http(s) URLs are kept. */
  links: NotificationLink[];
  /** For grouped alerts: one message listing many subjects (e.g. 40 runaway keys). */
  items?: NotificationItem[];
  footer?: string;
}

/** firing: the first post; repeat: still firing after the repeat interval; resolved: the condition cleared. */
export type NotificationEvent = 'firing' | 'repeat' | 'resolved';

export interface NotificationField {
  label: string;
  value: string;
}

export interface NotificationLink {
  label: string;
  url: string;
}

export interface NotificationItem {
  title: string;
  fields: NotificationField[];
}

/**
 * What an adapter (Slack, email) says about a send that did not go through, so the outbox knows what to do next:
 * wait the server's `retryAfterMs`, retry with its own backoff, or give up and record the reason.
 * `reason` is for people (logs, the outbox row); it never carries a token or password.
 */
export type DeliveryFailure =
  | { kind: 'rate_limited'; retryAfterMs: number; reason: string }
  | { kind: 'retryable'; reason: string }
  | { kind: 'permanent'; reason: string };
