import type { Repos } from '../db/repos/index.ts';
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
  /** The policy's webhook receivers by name: the digest as a signed JSON payload. */
  webhook: readonly string[];
}

function digestFingerprint(kind: DigestKind, period: string): string {
  return `digest|${kind}|${period}`;
}

function targetRows(targets: DigestTargets) {
  return [
    ...targets.slack.map((target) => ({ channel: 'slack' as const, target })),
    ...targets.email.map((target) => ({ channel: 'email' as const, target })),
    ...targets.webhook.map((target) => ({ channel: 'webhook' as const, target })),
  ];
}

/** Targets that have no row of this digest yet: when there are none, composing it again is wasted work. */
export async function targetsWithoutDigest(
  repos: Pick<Repos, 'outbox'>,
  kind: DigestKind,
  period: string,
  targets: DigestTargets,
): Promise<number> {
  const wanted = targetRows(targets);
  if (wanted.length === 0) return 0;
  const existing = await repos.outbox.digestTargets(digestFingerprint(kind, period));
  const have = new Set(existing.map((r) => `${r.channel}|${r.target}`));
  return wanted.filter((w) => !have.has(`${w.channel}|${w.target}`)).length;
}

/** Inserts the digest for every target that does not have it yet; returns how many rows were new. */
export async function enqueueDigest(
  repos: Pick<Repos, 'outbox'>,
  digest: { kind: DigestKind; period: string; payload: DigestPayload },
  targets: DigestTargets,
  now: Date,
): Promise<number> {
  return repos.outbox.insertDigest(
    digestFingerprint(digest.kind, digest.period),
    JSON.stringify(digest.payload),
    targetRows(targets),
    now,
  );
}
