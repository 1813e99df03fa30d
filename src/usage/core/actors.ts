import type { Pico } from '../../money.ts';

/**
 * Who is behind the traffic (pure): the actors the analytics cost API attributes billed spend to (a user, a service
 * account, a federated identity, or the key itself when it has no principal), named for people and ranked by spend.
 * Names and emails are organization-controlled text: every renderer escapes them, nothing here does.
 */

/** One actor's billed spend over a range, as `billed_costs` sums it. */
export interface ActorSpend {
  /** user_actor, service_account_actor, federated_actor, api_actor; null where the API named no actor. */
  type: string | null;
  /** '' when the API gave none. */
  id: string;
  /** A user's email (or name). */
  label: string | null;
  billed: Pico;
  list: Pico;
  requests: number;
  /** API keys the actor's spend went through. */
  keys: number;
}

const TYPE_WORDS: Record<string, string> = {
  user_actor: 'user',
  service_account_actor: 'service account',
  federated_actor: 'federated identity',
  api_actor: 'API key',
};

/** The actor's type in words: "user", "service account", …; "unknown" where the API named none. */
export function actorTypeText(type: string | null): string {
  return type === null ? 'unknown' : (TYPE_WORDS[type] ?? type);
}

/**
 * How an actor is named: a user by email, a service account or federated identity by its id after its type, a key
 * with no principal as such ("API key apikey_…: no user or service account behind it").
 */
export function actorName(a: Pick<ActorSpend, 'type' | 'id' | 'label'>): string {
  if (a.type === 'user_actor') return a.label ?? (a.id === '' ? 'a user' : `user ${a.id}`);
  if (a.type === 'api_actor') return a.id === '' ? 'the key itself (no principal)' : `API key ${a.id} (no principal)`;
  if (a.type === null) return a.id === '' ? 'no actor named' : `actor ${a.id}`;
  const what = actorTypeText(a.type);
  return a.id === '' ? `a ${what}` : `${what} ${a.id}`;
}

/** Actors by billed spend, largest first; ties by name so a message does not change between runs. */
export function rankActors(actors: readonly ActorSpend[]): ActorSpend[] {
  return [...actors].sort((a, b) =>
    a.billed === b.billed ? actorName(a).localeCompare(actorName(b)) : a.billed > b.billed ? -1 : 1,
  );
}

/** Share of `total` in millionths, on the exact amounts; 0 when nothing was billed. */
export function billedShare(part: Pico, total: Pico): number {
  return total > 0n ? Number((part * 1_000_000n) / total) / 1_000_000 : 0;
}

/**
 * The actor a runaway alert names for a key: the one with the largest billed share of the key's recent spend, with
 * that share; null when nothing billed is stored for the key (no analytics access, or the ingest has not reached
 * it). A share is given only where more than one actor spent through the key: a key's spend is normally its
 * principal's alone, and "100%" would say nothing.
 */
export function leadingActor(actors: readonly ActorSpend[]): { name: string; share: number | null } | null {
  const ranked = rankActors(actors.filter((a) => a.billed > 0n));
  const top = ranked[0];
  if (top === undefined) return null;
  const total = ranked.reduce((sum, a) => sum + a.billed, 0n);
  return { name: actorName(top), share: ranked.length > 1 ? billedShare(top.billed, total) : null };
}
