import type { AlertKind, Severity } from '../kinds.ts';

/**
 * One notification, as the alert lifecycle hands it to the renderer. Every string in here is plain, untrusted text:
 * key, workspace and user names end up in titles, fields and items, so the renderer escapes all of it for each
 * medium and adds all the markup itself. Callers never pre-format (no mrkdwn, no HTML).
 */
export interface Notification {
  /** The alert kind (`usage.runaway`, `rotation.overdue`, ...): shown in the context line, not interpreted. */
  kind: AlertKind;
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
  /** `unreachable`: the server did not answer at all (refused, timed out, 5xx), so every message to it would fail. */
  | { kind: 'retryable'; reason: string; unreachable?: true }
  | { kind: 'permanent'; reason: string };

/**
 * A scheduled digest (the daily finance digest, the weekly security digest): headline figures, then tables. Like a
 * Notification, every string is plain untrusted text (key and workspace names); the renderer adds all markup.
 */
export interface DigestMessage {
  /** `digest.finance` or `digest.security`: shown in the context line. */
  kind: string;
  /** One line, e.g. `Finance digest: Acme AI, Mon 16 Nov 2026`. */
  title: string;
  /** A few sentences; line breaks are kept. */
  summary: string;
  /** The headline figures (spend to date, projection, limit; admin count). */
  fields: NotificationField[];
  sections: DigestSection[];
  links: NotificationLink[];
  footer?: string;
}

/** One table of a digest: the top keys, the overdue keys, the drifted days. */
export interface DigestSection {
  title: string;
  columns: DigestColumn[];
  /** Cells in column order, already formatted for people. */
  rows: string[][];
  /** What an empty table says instead (`No key is overdue.`): an empty list is news too. */
  empty: string;
  /** Rows that exist but were left out of a long list: rendered as "…and N more". */
  more?: number;
}

interface DigestColumn {
  label: string;
  /** Figures are right-aligned so their digits line up. Default left. */
  align?: 'left' | 'right';
}

/**
 * One alert a notification speaks for, as data rather than prose: what a webhook payload, a PagerDuty event's
 * `custom_details` and its `dedup_key` are made of. Names in here are untrusted text like everything else.
 */
export interface AlertFacts {
  fingerprint: string;
  kind: string;
  severity: Severity;
  title: string;
  scope: { type: string; id: string; name: string | null };
  workspace: { id: string | null; name: string | null };
  /** The rule's own figures (`limitUsd`, `currentHourlyUsd`, `deadline`, …): each receiver picks what it documents. */
  details: Record<string, unknown>;
}
