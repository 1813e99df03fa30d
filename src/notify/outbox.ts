import { sql } from 'kysely';
import type { Db } from '../db/index.ts';
import type { DeliveryChannel } from '../db/types.ts';
import type { Logger } from '../log.ts';
import { renderSpendChart, type SpendChart } from './chart.ts';
import type { EmailSender, InlineImage } from './email.ts';
import type { AlertFacts, DeliveryFailure, DigestMessage, Notification, NotificationEvent } from './message.ts';
import type { PagerDutyClient } from './pagerduty.ts';
import { renderPagerDutyEvent } from './pagerduty.ts';
import { renderDigestEmail, renderDigestSlack, renderEmail, renderSlack } from './render.ts';
import type { SlackClient } from './slack.ts';
import { renderTeamsMessage, type TeamsClient } from './teams.ts';
import type { WebhookSender } from './webhook.ts';
import { renderWebhookAlert, renderWebhookDigest } from './webhook-payload.ts';

/**
 * Delivers the outbox. A batch of rows is claimed with a lease (FOR UPDATE SKIP LOCKED, so replicas never take the
 * same row); then each row, just before its own Slack or SMTP call, is marked `sending` and COMMITTED, and the outcome
 * is recorded afterwards. A row still `sending` after its lease means the process died mid-call: nobody knows whether
 * the message went out, so it is retried and marked `possibly_duplicate` — at most one duplicate, and a visible one.
 * A failure that speaks for the whole service (Slack's 429, a server that does not answer) holds the run's other
 * messages to it until the failed one's next attempt, untried: one probe per wait, not one refusal per message, and
 * a long outage runs down the attempts of that one message only.
 */

/** The payload of an alert's outbox row: the message to render and the alerts it speaks for (for threading and `keywarden alerts`). */
export interface OutboxPayload {
  notification: Notification;
  fingerprints: string[];
  /** The alerts as data, for the receivers that carry data (webhooks, PagerDuty); absent on rows written before them. */
  alerts?: AlertFacts[];
}

/** One alert message for one target; `alertId` is set when the message speaks for a single alert. */
export interface AlertOutboxRow {
  alertId: string | null;
  fingerprint: string;
  event: NotificationEvent;
  channel: DeliveryChannel;
  target: string;
  payload: OutboxPayload;
}

/**
 * Writes one alert message to the outbox. Called inside the transaction that changes the alert's state, so the
 * state change and its message are both recorded or neither is.
 */
export async function insertAlertNotification(db: Db, row: AlertOutboxRow, now: Date): Promise<void> {
  await db
    .insertInto('notifications')
    .values({
      alert_id: row.alertId,
      fingerprint: row.fingerprint,
      event: row.event,
      // each repeat (and each new episode) of one alert gets its own row under the unique constraint
      sequence: sql<number>`(SELECT coalesce(max(sequence) + 1, 0) FROM notifications
        WHERE fingerprint = ${row.fingerprint} AND event = ${row.event} AND channel = ${row.channel} AND target = ${row.target})`,
      channel: row.channel,
      target: row.target,
      payload: JSON.stringify(row.payload),
      next_attempt_at: now,
    })
    .execute();
}

/**
 * The payload of an outbox row with event `digest`: the digest, and the chart its email shows inline. The chart is
 * kept as numbers and drawn when the email is sent: the row stays small and readable, and drawing is pure.
 */
export interface DigestPayload {
  digest: DigestMessage;
  chart: { spend: SpendChart; alt: string } | null;
}

/** The Content-ID the digest's HTML names its chart by. */
export const DIGEST_CHART_CID = 'spend-chart@keywarden';

export interface DeliveryAdapters {
  slack: SlackClient | null;
  email: EmailSender | null;
  /** The policy's receivers; absent where none are configured (each is built from `receivers:`). */
  pagerduty?: PagerDutyClient | null;
  webhook?: WebhookSender | null;
  teams?: TeamsClient | null;
  /** organization.name of the policy, for the webhook payload. */
  organization?: string;
}

export interface DeliverOptions {
  now: Date;
  /** How long a claimed send may take before another run assumes the process died. Default 5 min. */
  leaseMs?: number;
  /** Rows per run. Default 100. */
  batch?: number;
  /** After this many attempts a retryable failure becomes `failed`. Default 12. */
  maxAttempts?: number;
  log?: Logger;
}

export interface DeliverResult {
  sent: number;
  retrying: number;
  failed: number;
}

const BASE_BACKOFF_MS = 30_000;
const MAX_BACKOFF_MS = 30 * 60_000;
/** A repeat waits this long for its thread's first post to go out rather than starting a thread of its own. */
const THREAD_WAIT_MS = 30_000;

/** Exponential backoff for a retryable failure: 30 s, 1 min, 2 min, … capped at 30 min. */
export function backoffMs(attempts: number): number {
  return Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** Math.max(0, attempts - 1));
}

type Claimed = {
  id: string;
  fingerprint: string;
  channel: DeliveryChannel;
  target: string;
  attempts: number;
} & ({ event: 'firing' | 'repeat' | 'resolved'; payload: OutboxPayload } | { event: 'digest'; payload: DigestPayload });
type ClaimedAlert = Extract<Claimed, { payload: OutboxPayload }>;

async function claim(db: Db, now: Date, leaseMs: number, batch: number): Promise<Claimed[]> {
  return db.transaction().execute(async (trx) => {
    const due = await trx
      .selectFrom('notifications')
      .select(['id', 'status'])
      .where('status', 'in', ['pending', 'sending'])
      .where('next_attempt_at', '<=', now)
      .orderBy('id')
      .limit(batch)
      .forUpdate()
      .skipLocked()
      .execute();
    if (due.length === 0) return [];
    const rows = await trx
      .updateTable('notifications')
      .set({
        // leased, not yet in flight: a process that dies before reaching this row leaves it pending, unflagged
        status: 'pending',
        attempts: sql`attempts + 1`,
        next_attempt_at: new Date(now.getTime() + leaseMs),
        // found in `sending`: its lease expired, the previous sender died between the call and the commit
        possibly_duplicate: sql`possibly_duplicate OR status = 'sending'`,
      })
      .where(
        'id',
        'in',
        due.map((d) => d.id),
      )
      .returning(['id', 'fingerprint', 'event', 'channel', 'target', 'payload', 'attempts'])
      .execute();
    // the payload's shape follows the event: alerts write OutboxPayload, digests DigestPayload
    return rows.map((r) => ({ ...r, payload: r.payload }) as unknown as Claimed);
  });
}

/** The first Slack post of these alerts' current episode in this channel, when it went out: repeats reply to it. */
async function threadRoot(db: Db, row: ClaimedAlert): Promise<{ root: string | null; waiting: boolean }> {
  const roots = await db
    .selectFrom('notifications')
    .select(['status', 'provider_id'])
    .where('channel', '=', 'slack')
    .where('target', '=', row.target)
    .where('event', '=', 'firing')
    .where('id', '<', row.id)
    .where(sql<boolean>`payload->'fingerprints' ?| ${sql.val(row.payload.fingerprints)}::text[]`)
    .orderBy('id', 'desc')
    .limit(1)
    .execute();
  const [root] = roots;
  if (root === undefined) return { root: null, waiting: false };
  if (root.status === 'sent') return { root: root.provider_id, waiting: false };
  return { root: null, waiting: root.status !== 'failed' };
}

type SendOutcome = { ok: true; providerId: string; threadTs: string | null } | { ok: false; failure: DeliveryFailure };

const notConfigured = {
  slack: { ok: false, failure: { kind: 'retryable', reason: 'Slack is not configured (SLACK_BOT_TOKEN)' } },
  email: { ok: false, failure: { kind: 'retryable', reason: 'email is not configured (SMTP_URL, EMAIL_FROM)' } },
  pagerduty: { ok: false, failure: { kind: 'retryable', reason: 'PagerDuty is not configured (receivers.pagerduty)' } },
  webhook: { ok: false, failure: { kind: 'retryable', reason: 'webhooks are not configured (receivers.webhook)' } },
  teams: { ok: false, failure: { kind: 'retryable', reason: 'Teams is not configured (receivers.teams)' } },
} as const;

/** The `webhook-id` of an outbox row: the same on every retry of it, so a receiver can drop a second copy. */
export function webhookId(rowId: string): string {
  return `keywarden-notification-${rowId}`;
}

/** The three receivers answer alike: an id for the row, or a failure the outbox knows how to treat. */
function fromReceiver(r: Awaited<ReturnType<WebhookSender['send']>>): SendOutcome {
  return r.ok ? { ok: true, providerId: r.providerId, threadTs: null } : r;
}

function permanent(err: unknown): SendOutcome {
  return { ok: false, failure: { kind: 'permanent', reason: err instanceof Error ? err.message : String(err) } };
}

/** A digest goes out as it is: no threads (each is news of its own period), the chart inline in the email. */
async function sendDigest(adapters: DeliveryAdapters, row: Claimed & { event: 'digest' }): Promise<SendOutcome> {
  const { digest, chart } = row.payload;
  if (row.channel === 'webhook') {
    if (!adapters.webhook) return notConfigured.webhook;
    // the row's fingerprint names the digest's period (`digest|finance|2026-11-16`): a day for the finance digest
    const period = row.fingerprint.split('|').at(-1) ?? '';
    const date = /^\d{4}-\d{2}-\d{2}$/.test(period) ? period : null;
    const ctx = { id: webhookId(row.id), organization: adapters.organization ?? '' };
    const body = JSON.stringify(renderWebhookDigest(digest, chart?.spend ?? null, date, ctx));
    return fromReceiver(await adapters.webhook.send(row.target, webhookId(row.id), body));
  }
  if (row.channel === 'pagerduty' || row.channel === 'teams') {
    return permanent(new Error(`digests go to Slack, email or webhooks, not ${row.channel}`));
  }
  if (row.channel === 'slack') {
    if (adapters.slack === null) return notConfigured.slack;
    const r = await adapters.slack.postMessage({ channel: row.target, ...renderDigestSlack(digest) });
    return r.ok ? { ok: true, providerId: `${r.channel}:${r.ts}`, threadTs: null } : r;
  }
  if (adapters.email === null) return notConfigured.email;
  let content: ReturnType<typeof renderDigestEmail>;
  const attachments: InlineImage[] = [];
  try {
    // drawing and rendering are pure: what fails here fails the same way next time
    if (chart !== null) {
      attachments.push({ cid: DIGEST_CHART_CID, filename: 'spend-chart.png', content: renderSpendChart(chart.spend) });
    }
    content = renderDigestEmail(digest, { images: chart === null ? [] : [{ cid: DIGEST_CHART_CID, alt: chart.alt }] });
  } catch (err) {
    return permanent(err);
  }
  const r = await adapters.email.sendEmail({ to: [row.target], ...content, attachments });
  return r.ok ? { ok: true, providerId: r.messageId, threadTs: null } : r;
}

async function send(db: Db, adapters: DeliveryAdapters, row: Claimed): Promise<SendOutcome | 'wait'> {
  if (row.event === 'digest') return sendDigest(adapters, row);
  const n = row.payload.notification;
  if (row.channel === 'pagerduty') {
    if (!adapters.pagerduty) return notConfigured.pagerduty;
    // routing writes one alert per PagerDuty row: its fingerprint is the incident's dedup_key
    const alert = row.payload.alerts?.[0] ?? null;
    const event = renderPagerDutyEvent(n, alert?.fingerprint ?? row.fingerprint, alert);
    return fromReceiver(await adapters.pagerduty.send(row.target, event));
  }
  if (row.channel === 'webhook') {
    if (!adapters.webhook) return notConfigured.webhook;
    const ctx = { id: webhookId(row.id), organization: adapters.organization ?? '' };
    const body = JSON.stringify(renderWebhookAlert(n, row.fingerprint, row.payload.alerts ?? [], ctx));
    return fromReceiver(await adapters.webhook.send(row.target, webhookId(row.id), body));
  }
  if (row.channel === 'teams') {
    if (!adapters.teams) return notConfigured.teams;
    return fromReceiver(await adapters.teams.send(row.target, renderTeamsMessage(n)));
  }
  if (row.channel === 'slack') {
    if (adapters.slack === null) return notConfigured.slack;
    let channel = row.target;
    let threadTs: string | null = null;
    if (row.event !== 'firing') {
      const t = await threadRoot(db, row);
      if (t.waiting) return 'wait';
      if (t.root !== null) {
        // provider_id is `channelId:ts`: replies must name the channel by the ID Slack returned
        const sep = t.root.indexOf(':');
        channel = t.root.slice(0, sep);
        threadTs = t.root.slice(sep + 1);
      }
    }
    const msg = renderSlack(n);
    const r = await adapters.slack.postMessage({ channel, ...msg, ...(threadTs === null ? {} : { threadTs }) });
    return r.ok ? { ok: true, providerId: `${r.channel}:${r.ts}`, threadTs } : r;
  }
  if (adapters.email === null) return notConfigured.email;
  let content: ReturnType<typeof renderEmail>;
  try {
    content = renderEmail(n);
  } catch (err) {
    // e.g. a CR/LF in a subject: sending it again will not change that
    return permanent(err);
  }
  const r = await adapters.email.sendEmail({ to: [row.target], ...content });
  return r.ok ? { ok: true, providerId: r.messageId, threadTs: null } : r;
}

/**
 * The service a row's failure speaks for, whose other messages it holds: Slack, the SMTP server, PagerDuty's Events
 * API and Teams are one service each; every webhook receiver is a server of its own, so one that is down holds
 * nobody else's messages.
 */
function serviceOf(row: Pick<Claimed, 'channel' | 'target'>): string {
  return row.channel === 'webhook' ? `webhook:${row.target}` : row.channel;
}

export async function deliverNotifications(
  db: Db,
  adapters: DeliveryAdapters,
  opts: DeliverOptions,
): Promise<DeliverResult> {
  const { now } = opts;
  const leaseMs = opts.leaseMs ?? 5 * 60_000;
  const maxAttempts = opts.maxAttempts ?? 12;
  const result: DeliverResult = { sent: 0, retrying: 0, failed: 0 };
  const runStarted = performance.now();
  const rows = await claim(db, now, leaseMs, opts.batch ?? 100);
  // Per channel, until when the rest of this run's messages wait: set by a failure of the service, not the message.
  const holds = new Map<string, { until: Date; held: number; reason: string }>();
  for (const row of rows) {
    const hold = holds.get(serviceOf(row));
    if (hold !== undefined) {
      // Asking again now only earns another 429 or another timeout (seconds each, for a server that hangs, while
      // the batch's other messages wait behind it): untried, so no attempt is counted.
      await db
        .updateTable('notifications')
        .set({ attempts: row.attempts - 1, next_attempt_at: hold.until })
        .where('id', '=', row.id)
        .where('status', '=', 'pending')
        .where('attempts', '=', row.attempts)
        .execute();
      hold.held++;
      result.retrying++;
      continue;
    }
    // In flight from here: only this row, so a crash flags the one message whose fate is unknown, not the batch.
    // No row back means another run took it over after our lease expired: it is theirs now.
    const inFlight = await db
      .updateTable('notifications')
      .set({ status: 'sending' })
      .where('id', '=', row.id)
      .where('status', '=', 'pending')
      .where('attempts', '=', row.attempts)
      .returning('id')
      .executeTakeFirst();
    if (!inFlight) continue;
    let outcome: SendOutcome | 'wait';
    try {
      outcome = await send(db, adapters, row);
    } catch (err) {
      outcome = { ok: false, failure: { kind: 'retryable', reason: err instanceof Error ? err.message : String(err) } };
    }
    // Only the claimant of this attempt records its outcome: a run that took the row over after the lease wins.
    const mine = db
      .updateTable('notifications')
      .where('id', '=', row.id)
      .where('status', '=', 'sending')
      .where('attempts', '=', row.attempts);
    if (outcome === 'wait') {
      await mine
        .set({
          status: 'pending',
          attempts: row.attempts - 1,
          next_attempt_at: new Date(now.getTime() + THREAD_WAIT_MS),
        })
        .execute();
      result.retrying++;
    } else if (outcome.ok) {
      await mine
        .set({
          status: 'sent',
          provider_id: outcome.providerId,
          thread_ts: outcome.threadTs,
          sent_at: now,
          last_error: null,
        })
        .execute();
      result.sent++;
    } else {
      const f = outcome.failure;
      const giveUp = f.kind === 'permanent' || (f.kind === 'retryable' && row.attempts >= maxAttempts);
      // Retry-After counts from the answer, which may come well into a long batch: add the run's time so far
      const wait =
        f.kind === 'rate_limited' ? performance.now() - runStarted + f.retryAfterMs : backoffMs(row.attempts);
      await mine
        .set(
          giveUp
            ? { status: 'failed', last_error: f.reason }
            : { status: 'pending', last_error: f.reason, next_attempt_at: new Date(now.getTime() + wait) },
        )
        .execute();
      if (f.kind === 'rate_limited' || (f.kind === 'retryable' && f.unreachable)) {
        holds.set(serviceOf(row), { until: new Date(now.getTime() + wait), held: 0, reason: f.reason });
      }
      if (giveUp) result.failed++;
      else result.retrying++;
      opts.log?.warn(
        { notificationId: row.id, channel: row.channel, failure: f.kind, reason: f.reason },
        'notification not delivered',
      );
    }
  }
  for (const [service, hold] of holds) {
    if (hold.held === 0) continue;
    opts.log?.warn(
      { channel: service, held: hold.held, until: hold.until, reason: hold.reason },
      'notifications held: the service refused or did not answer, the next attempt is one message',
    );
  }
  return result;
}
