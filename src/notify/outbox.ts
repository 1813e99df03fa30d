import { choicesFor } from '../action-ids.ts';
import type { Clock } from '../clock.ts';
import type { Repos } from '../db/repos/index.ts';
import type { LeasedDelivery } from '../db/repos/outbox.ts';
import type { Logger } from '../log.ts';
import { type Channel, type DeliveryAdapter, deliveryAdapters, NOT_CONFIGURED } from './adapters.ts';
import type { SpendChart } from './chart.ts';
import { leaseOf, type SendOutcome, settle, threadStep } from './delivery.ts';
import type { AlertFacts, DigestMessage, Notification } from './message.ts';
import type { Notifier } from './notifier.ts';

/**
 * Delivers the outbox: lease a batch (outboxRepo.lease), then for each row, just before its own call to the outside
 * system, mark it `sending` and COMMIT, send through the channel's adapter (adapters.ts), and record the outcome
 * afterwards. What each outcome means (retry, backoff, give up, hold a service that is down, possibly a duplicate)
 * is decided in delivery.ts. A row still `sending` after its lease means the process died mid-call: nobody knows
 * whether the message went out, so it is retried and marked `possibly_duplicate` — at most one duplicate, and a
 * visible one. A failure that speaks for the whole service (Slack's 429, a server that does not answer) holds the
 * run's other messages to it until the failed one's next attempt, untried: one probe per wait, not one refusal per
 * message, and a long outage runs down the attempts of that one message only.
 */

/** The payload of an alert's outbox row: the message to render and the alerts it speaks for (for threading and `keywarden alerts`). */
export interface OutboxPayload {
  notification: Notification;
  fingerprints: string[];
  /** The alerts as data, for the receivers that carry data (webhooks, PagerDuty); absent on rows written before them. */
  alerts?: AlertFacts[];
}

/**
 * The payload of an outbox row with event `digest`: the digest, and the chart its email shows inline. The chart is
 * kept as numbers and drawn when the email is sent: the row stays small and readable, and drawing is pure.
 */
export interface DigestPayload {
  digest: DigestMessage;
  chart: { spend: SpendChart; alt: string } | null;
}

/**
 * The parts of the Context the delivery uses, named from their own modules: notify/ builds the notifier the Context
 * carries, so it does not import the Context back.
 */
interface DeliveryParts {
  repos: Repos;
  notifier: Notifier;
  clock: Clock;
  log: Logger;
}

interface DeliverOptions {
  /** How long a claimed send may take before another run assumes the process died. Default 5 min. */
  leaseMs?: number;
  /** Rows per run. Default 100. */
  batch?: number;
  /** After this many attempts a retryable failure becomes `failed`. Default 12. */
  maxAttempts?: number;
  /** Put action buttons on Slack messages about one firing alert (src/actions/buttons.ts says when). */
  buttons?: boolean;
}

interface DeliverResult {
  sent: number;
  retrying: number;
  failed: number;
}

/** A leased row with its payload's shape known: alerts write OutboxPayload, digests DigestPayload. */
type Delivery = Omit<LeasedDelivery, 'event' | 'payload'> &
  (
    | { event: 'firing' | 'repeat' | 'resolved' | 'acknowledged'; payload: OutboxPayload }
    | { event: 'digest'; payload: DigestPayload }
  );

async function send(
  ctx: Pick<DeliveryParts, 'repos'>,
  adapter: DeliveryAdapter | null,
  row: Delivery,
  buttons: { now: Date } | null,
): Promise<SendOutcome | 'wait'> {
  if (adapter === null) return { ok: false, failure: { kind: 'retryable', reason: NOT_CONFIGURED[row.channel] } };
  if (row.event === 'digest') return adapter.sendDigest(row);
  // An alert's events reach each target in order, on every channel: PagerDuty drops a resolve for an incident it
  // has not opened yet, then opens it from the late trigger and keeps it open for good; a new episode's trigger
  // overtaken by the last episode's resolve would be closed while it fires.
  if (await ctx.repos.outbox.unsentBefore(row.id, row.channel, row.target, row.payload.fingerprints)) return 'wait';
  let thread: string | null = null;
  if (adapter.threads && row.event !== 'firing') {
    const root = await ctx.repos.outbox.threadRoot(row.id, row.channel, row.target, row.payload.fingerprints);
    const step = threadStep(root);
    if (step === 'wait') return 'wait';
    thread = step.replyTo;
  }
  // a resolve answers nothing; a repeat carries them too (the first post may have scrolled away)
  const offered =
    buttons !== null && row.channel === 'slack' && row.event !== 'resolved'
      ? await ctx.repos.actions.offer(
          row.id,
          choicesFor(row.payload.notification.kind, row.payload.alerts?.[0]?.details),
          buttons.now,
        )
      : null;
  return adapter.sendAlert({ ...row, event: row.event, thread, buttons: offered?.size ? offered : null });
}

/** The row with its title naming the organization, where the deployment watches several (Notifier.organizationTag). */
function tagged(row: Delivery, tag: string | undefined): Delivery {
  if (tag === undefined) return row;
  if (row.event === 'digest') {
    return {
      ...row,
      payload: { ...row.payload, digest: { ...row.payload.digest, title: `[${tag}] ${row.payload.digest.title}` } },
    };
  }
  const { notification } = row.payload;
  return {
    ...row,
    payload: { ...row.payload, notification: { ...notification, title: `[${tag}] ${notification.title}` } },
  };
}

export async function deliverNotifications(ctx: DeliveryParts, opts: DeliverOptions = {}): Promise<DeliverResult> {
  const now = ctx.clock.now();
  const leaseMs = opts.leaseMs ?? 5 * 60_000;
  const maxAttempts = opts.maxAttempts ?? 12;
  const adapters = deliveryAdapters(ctx.notifier);
  const outbox = ctx.repos.outbox;
  const result: DeliverResult = { sent: 0, retrying: 0, failed: 0 };
  const runStarted = performance.now();
  const leased = await outbox.lease(now, opts.batch ?? 100, (due) => leaseOf(due, now, leaseMs));
  // Per service, until when the rest of this run's messages wait: set by a failure of the service, not the message.
  const holds = new Map<string, { channel: Channel; until: Date; held: number; reason: string }>();
  // the payload's shape follows the event: alerts write OutboxPayload, digests DigestPayload
  for (const leasedRow of leased as unknown as Delivery[]) {
    const row = tagged(leasedRow, ctx.notifier.organizationTag);
    const adapter = adapters[row.channel];
    const service = adapter?.service(row.target) ?? row.channel;
    const hold = holds.get(service);
    if (hold !== undefined) {
      await outbox.hold(row, hold.until);
      hold.held++;
      result.retrying++;
      continue;
    }
    // In flight from here: only this row, so a crash flags the one message whose fate is unknown, not the batch.
    if (!(await outbox.startSending(row))) continue;
    let outcome: SendOutcome | 'wait';
    try {
      outcome = await send(ctx, adapter, row, opts.buttons ? { now } : null);
    } catch (err) {
      outcome = { ok: false, failure: { kind: 'retryable', reason: err instanceof Error ? err.message : String(err) } };
    }
    const elapsedMs = performance.now() - runStarted;
    const { settlement, counted, downUntil } = settle({ attempts: row.attempts, outcome, now, elapsedMs, maxAttempts });
    await outbox.record(row, settlement.status === 'sent' ? { ...settlement, sentAt: now } : settlement);
    result[counted]++;
    if (outcome !== 'wait' && !outcome.ok) {
      const f = outcome.failure;
      if (downUntil !== null) holds.set(service, { channel: row.channel, until: downUntil, held: 0, reason: f.reason });
      ctx.log.warn(
        { notificationId: row.id, channel: row.channel, failure: f.kind, reason: f.reason },
        'notification not delivered',
      );
    }
  }
  for (const hold of holds.values()) {
    if (hold.held === 0) continue;
    ctx.log.warn(
      { channel: hold.channel, held: hold.held, until: hold.until, reason: hold.reason },
      'notifications held: the service refused or did not answer, the next attempt is one message',
    );
  }
  return result;
}
