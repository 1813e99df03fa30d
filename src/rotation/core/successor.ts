import type { KeyState, KeyTraffic, Successor } from './types.ts';

/**
 * The key that probably replaces `old`: the newest key in the same workspace (null = Default Workspace; an
 * organization-scoped key is in none, and is replaced by another organization-scoped key) that is
 * usable now and was created after `since`, the first reminder for `old`. The Admin API cannot create keys, so a
 * person made it in the Console after being reminded; nothing links it to the old key except place and time.
 *
 * `share` is the successor's part of the pair's tokens in the drain window: how far the traffic has moved. Tokens
 * rather than cost, because a move to a cheaper model is still a move.
 */
export function findSuccessor(
  old: KeyState,
  sameWorkspace: readonly KeyState[],
  since: Date,
  traffic: ReadonlyMap<string, KeyTraffic>,
  now: Date,
): Successor | null {
  let best: KeyState | undefined;
  for (const k of sameWorkspace) {
    if (k.id === old.id || k.workspaceId !== old.workspaceId || k.scope !== old.scope || !isUsable(k, now)) continue;
    if (k.createdAt.getTime() <= since.getTime()) continue;
    if (best === undefined || newer(k, best)) best = k;
  }
  if (best === undefined) return null;
  const oldTokens = traffic.get(old.id)?.windowTokens ?? 0n;
  const newTokens = traffic.get(best.id)?.windowTokens ?? 0n;
  const total = oldTokens + newTokens;
  return {
    keyId: best.id,
    name: best.name,
    partialKeyHint: best.partialKeyHint,
    createdAt: best.createdAt,
    share: total === 0n ? null : Number(newTokens) / Number(total),
  };
}

/**
 * Active and not past its own expiry. Anthropic flips the status to `expired` on its own schedule, so a key past
 * `expires_at` can still read `active` in the last sync; it no longer works either way.
 */
export function isUsable(key: KeyState, now: Date): boolean {
  return key.status === 'active' && (key.expiresAt === null || key.expiresAt.getTime() > now.getTime());
}

/** Newest first; ids break ties so the answer does not depend on the order keys were listed in. */
function newer(a: KeyState, b: KeyState): boolean {
  const d = a.createdAt.getTime() - b.createdAt.getTime();
  return d !== 0 ? d > 0 : a.id > b.id;
}
