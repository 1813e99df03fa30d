import { describe, expect, it } from 'vitest';
import { leaseOf, type SendOutcome, type Settled, settle, threadStep } from '../../src/notify/delivery.ts';
import type { DeliveryFailure } from '../../src/notify/message.ts';

const NOW = new Date('2026-11-29T10:00:00Z');
const later = (ms: number) => new Date(NOW.getTime() + ms);
const SEC = 1000;
const MIN = 60 * SEC;

const failed = (failure: DeliveryFailure): SendOutcome => ({ ok: false, failure });
const sent: SendOutcome = { ok: true, providerId: 'C1:1700000000.0001', threadTs: null };
const rateLimited = failed({ kind: 'rate_limited', retryAfterMs: 30 * SEC, reason: 'Slack: 429' });
const refused = failed({ kind: 'retryable', reason: 'connect ECONNREFUSED', unreachable: true });
const flaky = failed({ kind: 'retryable', reason: 'socket hang up' });
const badAddress = failed({ kind: 'permanent', reason: 'channel_not_found' });

describe('settle: what a send means for its row and for the run', () => {
  it.each<[string, SendOutcome | 'wait', number, Settled]>([
    [
      'sent: recorded with its provider id',
      sent,
      1,
      {
        settlement: { status: 'sent', providerId: 'C1:1700000000.0001', threadTs: null },
        counted: 'sent',
        downUntil: null,
      },
    ],
    [
      "waiting for the thread's first post: 30 s, no attempt counted",
      'wait',
      1,
      {
        settlement: { status: 'pending', nextAttemptAt: later(30 * SEC), untried: true },
        counted: 'retrying',
        downUntil: null,
      },
    ],
    [
      '429: Retry-After counted from the answer (2 s into the run); the service is down until then',
      rateLimited,
      1,
      {
        settlement: { status: 'pending', nextAttemptAt: later(32 * SEC), untried: false, lastError: 'Slack: 429' },
        counted: 'retrying',
        downUntil: later(32 * SEC),
      },
    ],
    [
      '429 on the 12th attempt: still retried (the service asked to wait, the message is fine)',
      rateLimited,
      12,
      {
        settlement: { status: 'pending', nextAttemptAt: later(32 * SEC), untried: false, lastError: 'Slack: 429' },
        counted: 'retrying',
        downUntil: later(32 * SEC),
      },
    ],
    [
      'server refused, 1st attempt: 30 s backoff, the service is down',
      refused,
      1,
      {
        settlement: {
          status: 'pending',
          nextAttemptAt: later(30 * SEC),
          untried: false,
          lastError: 'connect ECONNREFUSED',
        },
        counted: 'retrying',
        downUntil: later(30 * SEC),
      },
    ],
    [
      'a failure of this message only, 3rd attempt: 2 min backoff, the service is not held',
      flaky,
      3,
      {
        settlement: { status: 'pending', nextAttemptAt: later(2 * MIN), untried: false, lastError: 'socket hang up' },
        counted: 'retrying',
        downUntil: null,
      },
    ],
    [
      'backoff is capped at 30 min',
      flaky,
      10,
      {
        settlement: { status: 'pending', nextAttemptAt: later(30 * MIN), untried: false, lastError: 'socket hang up' },
        counted: 'retrying',
        downUntil: null,
      },
    ],
    [
      'a retryable failure on the last attempt gives up',
      flaky,
      12,
      { settlement: { status: 'failed', lastError: 'socket hang up' }, counted: 'failed', downUntil: null },
    ],
    [
      'refused on the last attempt: given up, and the service is still held for the run',
      refused,
      12,
      {
        settlement: { status: 'failed', lastError: 'connect ECONNREFUSED' },
        counted: 'failed',
        downUntil: later(30 * MIN),
      },
    ],
    [
      'a permanent failure gives up at once',
      badAddress,
      1,
      { settlement: { status: 'failed', lastError: 'channel_not_found' }, counted: 'failed', downUntil: null },
    ],
  ])('%s', (_name, outcome, attempts, expected) => {
    expect(settle({ attempts, outcome, now: NOW, elapsedMs: 2 * SEC, maxAttempts: 12 })).toEqual(expected);
  });
});

describe('leaseOf', () => {
  it('marks the rows found in flight as possible duplicates: their sender died between the call and the commit', () => {
    const lease = leaseOf(
      [
        { id: '1', status: 'pending' },
        { id: '2', status: 'sending' },
        { id: '3', status: 'pending' },
      ],
      NOW,
      5 * MIN,
    );
    expect(lease).toEqual({ leasedUntil: later(5 * MIN), possiblyDuplicate: ['2'] });
  });
});

describe('threadStep: where a repeat or a resolve goes', () => {
  it.each([
    ['no first post: a post of its own', null, { replyTo: null }],
    ['first post sent: a reply to it', { status: 'sent' as const, providerId: 'C1:17.1' }, { replyTo: 'C1:17.1' }],
    ['first post still pending: wait for it', { status: 'pending' as const, providerId: null }, 'wait'],
    ['first post in flight: wait for it', { status: 'sending' as const, providerId: null }, 'wait'],
    [
      'first post failed for good: a post of its own',
      { status: 'failed' as const, providerId: null },
      { replyTo: null },
    ],
  ])('%s', (_name, root, expected) => {
    expect(threadStep(root)).toEqual(expected);
  });
});
