import { type IncreaseRequest, NotEnterpriseError } from '../anthropic/enterprise-spend.ts';
import { AdminApiError, AdminKeyRejectedError } from '../anthropic/errors.ts';
import type { Context } from '../context.ts';
import { singleLineName } from '../glob.ts';
import type { Pico } from '../money.ts';

/** A member's pending request for a higher spend limit, as the finance digest lists it. */
export interface PendingIncrease {
  /** The member's name on one line, else their address, else their id (organization text: data only). */
  who: string;
  email: string | null;
  period: IncreaseRequest['period'];
  /** The member's limit and spend now (picodollars); null where the API gave no summary or no limit. */
  limit: Pico | null;
  spent: Pico | null;
  since: Date;
}

/**
 * The pending increase requests of a Claude Enterprise organization, oldest first (the longest waiting on top).
 * `null`: not an Enterprise organization (the digest has no such section); `'unavailable'`: the read failed this
 * time (the digest says so rather than claiming there are none). A refused admin key is not swallowed.
 */
export async function pendingIncreases(
  ctx: Pick<Context, 'admin' | 'log'>,
): Promise<PendingIncrease[] | 'unavailable' | null> {
  let requests: IncreaseRequest[];
  try {
    requests = await ctx.admin.listIncreaseRequests({ statuses: ['pending'] }).toArray();
  } catch (err) {
    if (err instanceof NotEnterpriseError) return null;
    if (!(err instanceof AdminApiError) || err instanceof AdminKeyRejectedError) throw err;
    ctx.log.warn({ err, endpoint: err.endpoint }, 'could not read the spend limit increase requests for the digest');
    return 'unavailable';
  }
  return requests
    .filter((r) => r.status === 'pending')
    .map((r) => {
      const user = r.requester.type === 'user' ? r.requester : null;
      const name = user?.name == null ? '' : singleLineName(user.name);
      const email = user?.email ?? null;
      const usd = r.summary !== null && r.summary.currency === 'USD';
      return {
        who: name || (email === null ? (user?.userId ?? 'an admin API key') : singleLineName(email)),
        email,
        period: r.period,
        limit: usd ? r.summary!.limit : null,
        spent: usd ? r.summary!.spent : null,
        since: r.createdAt,
      };
    })
    .sort((a, b) => a.since.getTime() - b.since.getTime());
}
