import type { AlertObservation } from '../alerts/core/lifecycle.ts';
import { type MemberSpend, NotEnterpriseError } from '../anthropic/enterprise-spend.ts';
import { AdminApiError, AdminKeyRejectedError } from '../anthropic/errors.ts';
import type { Context } from '../context.ts';
import { type MemberSpendFact, memberThresholdObservations } from './core/members.ts';

type MembersContext = Pick<Context, 'repos' | 'admin' | 'log' | 'clock'>;

/**
 * The per-member threshold alerts of a Claude Enterprise organization (core/members.ts), from the Spend Limits API's
 * per-member report. A Console organization (`NotEnterpriseError`) has none, silently; a read that fails otherwise
 * is logged and yields none this run (a threshold already said stays said: the lifecycle keeps it per period). A
 * member the report gives no address for is emailed at the address keywarden knows from the users list.
 */
export async function memberSpendObservations(ctx: MembersContext): Promise<AlertObservation[]> {
  let rows: MemberSpend[];
  try {
    rows = await ctx.admin.listMemberSpend().toArray();
  } catch (err) {
    if (err instanceof NotEnterpriseError) return [];
    if (!(err instanceof AdminApiError) || err instanceof AdminKeyRejectedError) throw err;
    ctx.log.warn(
      { err, endpoint: err.endpoint },
      'could not read the members’ spend limits; no member thresholds this run',
    );
    return [];
  }
  const known = await ctx.repos.keys.userEmails();
  const facts: MemberSpendFact[] = [];
  for (const r of rows) {
    // keywarden prices in USD; a limit in another currency cannot be read as dollars
    if (r.actor.type !== 'user' || r.actor.deleted || r.currency !== 'USD') continue;
    facts.push({
      userId: r.actor.userId,
      email: r.actor.email ?? known.get(r.actor.userId) ?? null,
      name: r.actor.name,
      period: r.period,
      limit: r.limit,
      spent: r.spent,
      source: r.source,
    });
  }
  return memberThresholdObservations(facts, ctx.clock.now().toISOString().slice(0, 10));
}
