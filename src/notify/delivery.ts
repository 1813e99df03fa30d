import { MINUTE_MS } from '../time.ts';
import type { DeliveryFailure } from './message.ts';

/**
 * The outbox's decisions, pure: which leased rows may be duplicates, whether a reply waits for its thread, and what
 * a send's outcome means for its row (sent, retried after a backoff or a Retry-After, given up) and for the rest of
 * the run (a service that refused or did not answer is down: its other messages wait behind one probe).
 * outbox.ts leases, sends through the adapters and records what these say.
 */

/** A row the lease found due, as it was before the lease. */
interface DueDelivery {
  id: string;
  status: 'pending' | 'sending';
}

interface Lease {
  /** Until when the rows are this run's: a run that finds one later assumes its sender died. */
  leasedUntil: Date;
  /**
   * Found `sending`: its lease expired, so the previous sender died between its call and its commit, and nobody knows
   * whether the message went out. It is retried once more and marked: at most one duplicate, and a visible one.
   */
  possiblyDuplicate: string[];
}

export function leaseOf(due: readonly DueDelivery[], now: Date, leaseMs: number): Lease {
  return {
    leasedUntil: new Date(now.getTime() + leaseMs),
    possiblyDuplicate: due.filter((d) => d.status === 'sending').map((d) => d.id),
  };
}

/** What an adapter answers for one send. `providerId` names the message (Slack's `channelId:ts`, a Message-ID). */
export type SendOutcome =
  | { ok: true; providerId: string; threadTs: string | null }
  | { ok: false; failure: DeliveryFailure };

/** The first post of the episode in this target, as the outbox holds it: repeats and resolves reply to it. */
interface ThreadRoot {
  status: 'pending' | 'sending' | 'sent' | 'failed';
  providerId: string | null;
}

/** A message waits this long for an earlier one about the same alerts (its thread's root in Slack) to go out. */
const THREAD_WAIT_MS = 30_000;

/** Reply in the root's thread, post on its own (no root, or a root that will never go out), or wait for the root. */
export function threadStep(root: ThreadRoot | null): { replyTo: string | null } | 'wait' {
  if (root === null || root.status === 'failed') return { replyTo: null };
  if (root.status === 'sent') return { replyTo: root.providerId };
  return 'wait';
}

const BASE_BACKOFF_MS = 30_000;
const MAX_BACKOFF_MS = 30 * MINUTE_MS;

/** Exponential backoff for a retryable failure: 30 s, 1 min, 2 min, … capped at 30 min. */
function backoffMs(attempts: number): number {
  return Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** Math.max(0, attempts - 1));
}

/** What becomes of a row after its turn. */
type Settlement =
  | { status: 'sent'; providerId: string; threadTs: string | null }
  /**
   * Tried again at `nextAttemptAt`. `untried`: this turn did not call the service, so it counts no attempt (and the
   * last error stays what it was).
   */
  | { status: 'pending'; nextAttemptAt: Date; untried: true }
  | { status: 'pending'; nextAttemptAt: Date; untried: false; lastError: string }
  | { status: 'failed'; lastError: string };

interface SettleInput {
  /** The row's attempts, this one included. */
  attempts: number;
  /** `wait`: an earlier message about the same alerts to this target (or its thread root) has not gone out yet. */
  outcome: SendOutcome | 'wait';
  /** The run's time. */
  now: Date;
  /** How long the run had been going when the answer came: a Retry-After counts from the answer. */
  elapsedMs: number;
  /** After this many attempts a retryable failure becomes `failed`. */
  maxAttempts: number;
}

export interface Settled {
  settlement: Settlement;
  counted: 'sent' | 'retrying' | 'failed';
  /** Set when the failure speaks for the whole service (a 429, no answer): hold the run's other messages to it. */
  downUntil: Date | null;
}

export function settle(input: SettleInput): Settled {
  const { outcome, now } = input;
  if (outcome === 'wait') {
    const nextAttemptAt = new Date(now.getTime() + THREAD_WAIT_MS);
    return {
      settlement: { status: 'pending', nextAttemptAt, untried: true },
      counted: 'retrying',
      downUntil: null,
    };
  }
  if (outcome.ok) {
    return {
      settlement: { status: 'sent', providerId: outcome.providerId, threadTs: outcome.threadTs },
      counted: 'sent',
      downUntil: null,
    };
  }
  const f = outcome.failure;
  const waitMs = f.kind === 'rate_limited' ? input.elapsedMs + f.retryAfterMs : backoffMs(input.attempts);
  const nextAttemptAt = new Date(now.getTime() + waitMs);
  const down = f.kind === 'rate_limited' || (f.kind === 'retryable' && f.unreachable === true);
  const downUntil = down ? nextAttemptAt : null;
  if (f.kind === 'permanent' || (f.kind === 'retryable' && input.attempts >= input.maxAttempts)) {
    return { settlement: { status: 'failed', lastError: f.reason }, counted: 'failed', downUntil };
  }
  return {
    settlement: { status: 'pending', nextAttemptAt, untried: false, lastError: f.reason },
    counted: 'retrying',
    downUntil,
  };
}
