import type { Repos } from '../db/repos/index.ts';
import { DAY_MS } from '../time.ts';
import { AROUND_THE_CLOCK, type IdentityKey, type IdentityPlanEntry, planIdentityFindings } from './core/identity.ts';

/**
 * The identity findings of the organization at `now` (src/inventory/core/identity.ts): every active key with who is
 * behind it, and for personal keys (the only ones whose traffic the rules read) their hours of traffic over the
 * window in the organization's timezone (owner here) or their last use (owner gone). Read by sync-inventory (key.identity alerts) and the
 * security digest (its list), so both say the same.
 */
export async function identityFindings(
  repos: Pick<Repos, 'keys'>,
  now: Date,
  timezone: string,
): Promise<{ keys: IdentityKey[]; findings: IdentityPlanEntry[] }> {
  const stored = await repos.keys.identityKeys();
  const personal = stored.filter((k) => k.identity === 'personal');
  // the clock rule reads the keys whose owner is here; the last use matters only for the dead ones
  const [activity, lastUsage] = await Promise.all([
    repos.keys.hourlyActivity(
      personal.filter((k) => k.owner !== null).map((k) => k.id),
      now,
      timezone,
      AROUND_THE_CLOCK.windowDays,
    ),
    repos.keys.lastUsage(personal.filter((k) => k.owner === null).map((k) => k.id)),
  ]);
  const keys = stored.map((k) => ({
    ...k,
    activity: activity.get(k.id) ?? [],
    lastUsageAt: lastUsage.get(k.id) ?? null,
  }));
  const windowStart = new Date(now.getTime() - AROUND_THE_CLOCK.windowDays * DAY_MS);
  return { keys, findings: planIdentityFindings(keys, windowStart) };
}
