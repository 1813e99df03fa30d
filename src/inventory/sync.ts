import { raiseAlerts } from '../alerts/store.ts';
import type { JobContext } from '../context.ts';
import { identityObservation } from './core/identity.ts';
import { orphanObservations } from './core/orphans.ts';
import { planInventory } from './core/plan.ts';
import { POLICY_UNMATCHED_KIND, policyReferenceObservations } from './core/references.ts';
import { identityFindings } from './identity.ts';
import { readInventory } from './read.ts';

type Ctx = Pick<JobContext, 'repos' | 'admin' | 'clock' | 'config' | 'signal'>;

/**
 * One inventory sync: read the organization from the Admin API and what keywarden stored, compare (pure), store
 * the snapshot with its changes, and raise `key.orphaned`, `key.identity` (who is behind each key, from what was
 * just stored and the keys' usage) and `keywarden.policy_unmatched`.
 */
export async function syncInventory(ctx: Ctx) {
  const snapshot = await readInventory(ctx);
  const known = await ctx.repos.keys.knownInventory();
  const changes = planInventory(known, snapshot);
  await ctx.repos.keys.saveInventory(snapshot, changes, ctx.clock.now());
  const identity = await identityFindings(ctx.repos, ctx.clock.now(), ctx.config.policy.organization.timezone);
  const alerts = await raiseAlerts(
    ctx,
    {
      kinds: ['key.orphaned', 'key.identity', POLICY_UNMATCHED_KIND],
      observations: [
        ...orphanObservations(snapshot, changes),
        ...identity.findings.map(identityObservation),
        ...policyReferenceObservations(ctx.config.policy, snapshot),
      ],
    },
    ctx.config.policy.routes,
    ctx.clock.now(),
  );
  return {
    workspaces: snapshot.workspaces.length,
    users: snapshot.users.length,
    keys: snapshot.keys.length,
    statusChanges: changes.statusChanges.length,
    usersLeft: changes.usersLeft,
    keysGone: changes.keysGone,
    orphanedKeys: changes.orphanedKeys.map((o) => o.keyId),
    identityFindings: identity.findings.length,
    alerts: { fired: alerts.fired, resolved: alerts.resolved, notifications: alerts.notifications },
  };
}
