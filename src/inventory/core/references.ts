import type { AlertObservation } from '../../alerts/core/lifecycle.ts';
import type { Policy } from '../../config/policy.ts';
import { unmatchedReferences } from '../../config/references.ts';
import type { AlertKind } from '../../kinds.ts';
import type { InventorySnapshot } from './plan.ts';

export const POLICY_UNMATCHED_KIND = 'keywarden.policy_unmatched' satisfies AlertKind;

/**
 * One `keywarden.policy_unmatched` per policy reference (override, exemption, spend limit, workspace route) that
 * names no key or workspace of the organization any more: a renamed workspace would otherwise lose its limit or
 * its route with a log line only. Resolves when the reference matches again (or is removed). Pure.
 */
export function policyReferenceObservations(policy: Policy, snapshot: InventorySnapshot): AlertObservation[] {
  return unmatchedReferences(policy, snapshot).map((u) => ({
    kind: POLICY_UNMATCHED_KIND,
    severity: 'warning',
    scopeType: 'policy',
    scopeId: u.path,
    workspaceId: null,
    period: '',
    title: `Policy ${u.path} names no ${u.what}`,
    summary:
      `The policy file's ${u.path} ("${u.ref}") matches no ${u.what} of the organization, so it applies to nothing. ` +
      `Was the ${u.what} renamed or removed? Name it by id (${u.what === 'key' ? 'apikey_…' : 'wrkspc_…'}) to survive renames.`,
    fields: [
      { label: 'Policy field', value: u.path },
      { label: 'Names', value: u.ref },
    ],
    details: { path: u.path, ref: u.ref, what: u.what },
  }));
}
