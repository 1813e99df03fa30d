import type { Repos } from '../db/repos/index.ts';
import { DAY_MS } from '../time.ts';
import { leadingActor } from './core/actors.ts';

/**
 * The actor behind a key's spend, for its runaway alert: from the billed cost the hourly ingest stored (the analytics
 * cost API grouped by actor), over yesterday's day row and today's hour rows. Read from the database rather than the
 * API at alert time: a key's actor is its principal, which the last day's bill names as well as the last minutes
 * would, and the detection run (and the kill switch after it) must not wait on, or fail with, a beta API. Null where
 * nothing billed is stored for the key (no analytics access, or a key newer than the last ingest).
 */
export async function keyActor(
  repos: Pick<Repos, 'billing'>,
  keyId: string,
  now: Date,
): Promise<{ name: string; share: number | null } | null> {
  const from = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS - DAY_MS);
  return leadingActor(await repos.billing.actorSpend(from, now, keyId));
}
