import type { Db } from '../db/index.ts';
import type { DigestPayload } from '../notify/outbox.ts';

/**
 * Digests into the outbox, once per (kind, period, target). The row's fingerprint names the digest and its period
 * (`digest|finance|2026-11-16`, `digest|security|2026-W47`), and the outbox's unique key
 * (fingerprint, event, sequence, channel, target) does the rest: a rerun, a restart or a second replica inserting the
 * same digest inserts nothing. Each target is its own row, so one failing address never holds the others.
 */

export type DigestKind = 'finance' | 'security';

interface DigestTargets {
  slack: readonly string[];
  email: readonly string[];
}

function digestFingerprint(kind: DigestKind, period: string): string {
  return `digest|${kind}|${period}`;
}

function targetRows(targets: DigestTargets) {
  return [
    ...targets.slack.map((target) => ({ channel: 'slack' as const, target })),
    ...targets.email.map((target) => ({ channel: 'email' as const, target })),
  ];
}

/** Targets that have no row of this digest yet: when there are none, composing it again is wasted work. */
export async function targetsWithoutDigest(
  db: Db,
  kind: DigestKind,
  period: string,
  targets: DigestTargets,
): Promise<number> {
  const wanted = targetRows(targets);
  if (wanted.length === 0) return 0;
  const existing = await db
    .selectFrom('notifications')
    .select(['channel', 'target'])
    .where('fingerprint', '=', digestFingerprint(kind, period))
    .where('event', '=', 'digest')
    .execute();
  const have = new Set(existing.map((r) => `${r.channel}|${r.target}`));
  return wanted.filter((w) => !have.has(`${w.channel}|${w.target}`)).length;
}

/** Inserts the digest for every target that does not have it yet; returns how many rows were new. */
export async function enqueueDigest(
  db: Db,
  digest: { kind: DigestKind; period: string; payload: DigestPayload },
  targets: DigestTargets,
  now: Date,
): Promise<number> {
  const rows = targetRows(targets);
  if (rows.length === 0) return 0;
  const inserted = await db
    .insertInto('notifications')
    .values(
      rows.map((r) => ({
        alert_id: null,
        fingerprint: digestFingerprint(digest.kind, digest.period),
        event: 'digest' as const,
        sequence: 0,
        channel: r.channel,
        target: r.target,
        payload: JSON.stringify(digest.payload),
        next_attempt_at: now,
        created_at: now,
      })),
    )
    .onConflict((oc) => oc.columns(['fingerprint', 'event', 'sequence', 'channel', 'target']).doNothing())
    .returning('id')
    .execute();
  return inserted.length;
}
