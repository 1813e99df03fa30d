import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import { type IncreaseRequest, NotEnterpriseError } from '../anthropic/enterprise-spend.ts';
import { AdminApiError, AdminKeyRejectedError } from '../anthropic/errors.ts';
import type { Context } from '../context.ts';
import { askIncreaseRequests, type PendingIncreaseFact } from './core/increase-requests.ts';

type AskContext = Pick<Context, 'repos' | 'admin' | 'log' | 'clock' | 'config'>;

/**
 * Asks about each new pending spend limit increase request of a Claude Enterprise organization (core/
 * increase-requests.ts): records it (the amount its Approve sets is fixed here, once) and raises its
 * `spend.limit_changed` notice, which the routes send and the Slack message carries Approve and Deny on. A Console
 * organization (`NotEnterpriseError`) has none, silently; a read that fails otherwise is logged and asks nothing this
 * run (the notices already sent stay as they are). Returns null when nothing was read.
 */
export async function askAboutIncreaseRequests(ctx: AskContext): Promise<RaiseAlertsResult | null> {
  let requests: IncreaseRequest[];
  try {
    requests = await ctx.admin.listIncreaseRequests({ statuses: ['pending'] }).toArray();
  } catch (err) {
    if (err instanceof NotEnterpriseError) return null;
    if (!(err instanceof AdminApiError) || err instanceof AdminKeyRejectedError) throw err;
    ctx.log.warn(
      { err, endpoint: err.endpoint },
      'could not read the spend limit increase requests; none asked this run',
    );
    return null;
  }
  const now = ctx.clock.now();
  const facts: PendingIncreaseFact[] = [];
  for (const r of requests) {
    // a scoped admin key asking has no member to raise; a departed member's request is the Console's to close
    if (r.status !== 'pending' || r.requester.type !== 'user' || r.requester.deleted) continue;
    facts.push({
      requestId: r.id,
      userId: r.requester.userId,
      name: r.requester.name,
      email: r.requester.email,
      period: r.period,
      currency: r.summary?.currency ?? null,
      limit: r.summary?.limit ?? null,
      spent: r.summary?.spent ?? null,
      requestedAt: r.createdAt,
    });
  }
  const { asked, observations } = askIncreaseRequests(facts);
  await ctx.repos.increaseRequests.recordSeen(asked);
  // the notices of requests no longer pending end (silently: a notice's end is not told); other limit changes are
  // not this run's to end
  const members = await ctx.repos.increaseRequests.members();
  return raiseAlerts(
    ctx,
    { kinds: ['spend.limit_changed'], scopes: members.map((m) => `member:${m}`), observations },
    ctx.config.policy.routes,
    now,
  );
}
