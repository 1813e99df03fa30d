import type { Repos } from '../db/repos/index.ts';
import type { IdentityPlanEntry, KeyIdentity } from '../inventory/core/identity.ts';
import { keyWorkspaceName } from '../inventory/core/key-place.ts';
import { identityFindings } from '../inventory/identity.ts';
import type { RotationStage } from '../kinds.ts';
import { type Pico, usdToPico } from '../money.ts';
import { DAY_MS } from '../time.ts';

/**
 * Reads what the weekly security digest shows: every active key with its rotation stage (kept by
 * enforce-rotation in rotation_state), its owner and whether that owner is still in the organization, its expiry;
 * who is behind the keys' traffic (the identity findings, and the last 7 days' spend and tokens by identity, with
 * federated identities' spend from the stored bill); and the members who hold the organization's admin role.
 */

/** The traffic share window: the last 7 days up to the digest's instant. */
export const IDENTITY_TRAFFIC_DAYS = 7;

/** Spend and tokens of the window on one kind of identity. */
export interface IdentityTraffic {
  /** Distinct keys with traffic (0 for usage without a key). */
  keys: number;
  usd: Pico;
  /** null: not reported (the bill, which federated traffic comes from, has spend and requests, no tokens). */
  tokens: bigint | null;
}

/** Federated traffic of the window, from the stored bill: spend in total and per subject. */
export interface FederatedTraffic extends IdentityTraffic {
  /** Largest spend first; a subject is organization-controlled text ('' when the API gave none). */
  subjects: Array<{ subject: string; usd: Pico }>;
}

export interface SecurityKey {
  id: string;
  name: string;
  hint: string | null;
  workspaceName: string;
  createdAt: Date;
  expiresAt: Date | null;
  /** null: enforce-rotation has not evaluated the key yet. */
  stage: RotationStage | null;
  /** The reminder stage (days before the deadline) of a `due_soon` key; null otherwise. */
  reminderDays: number | null;
  deadline: Date | null;
  policySource: string | null;
  /** The creator's email while they are in the organization. */
  ownerEmail: string | null;
  /** The creating user's id when that user is no longer in the organization (the key is orphaned). */
  departedCreatorId: string | null;
  /** Name or email of a creator who left, when keywarden saw them before they did. */
  departedCreatorName: string | null;
}

export interface SecurityData {
  organizationName: string;
  timezone: string;
  asOf: Date;
  keys: SecurityKey[];
  admins: { name: string; email: string }[];
  /** When enforce-rotation last evaluated any key: stages older than a day or two are stale. */
  rotationEvaluatedAt: Date | null;
  /** The window's traffic by the identity of its key; `no_key`: usage without one (Console, Workbench). */
  identityTraffic: Map<KeyIdentity | 'no_key', IdentityTraffic>;
  /**
   * Traffic by federated (workload-identity) actors: they have no key, so only the analytics API's actors show
   * them (billed_costs, stored by the billed-cost ingest). Null where that API is refused or the window's bill has
   * no federated spend.
   */
  federatedTraffic: FederatedTraffic | null;
  /** Every identity finding of the active keys (the key.identity alerts say the same). */
  identityFindings: IdentityPlanEntry[];
}

export async function loadSecurityData(
  repos: Pick<Repos, 'keys' | 'billing'>,
  now: Date,
  opts: { organizationName: string; timezone: string },
): Promise<SecurityData> {
  const from = new Date(now.getTime() - IDENTITY_TRAFFIC_DAYS * DAY_MS);
  const [keys, admins, traffic, identity, federatedTraffic] = await Promise.all([
    repos.keys.activeKeysWithOwners(),
    repos.keys.admins(),
    repos.keys.trafficByIdentity(from, now),
    identityFindings(repos, now, opts.timezone),
    loadFederatedTraffic(repos, from, now),
  ]);
  let rotationEvaluatedAt: Date | null = null;
  for (const k of keys) {
    if (k.evaluated_at !== null && (rotationEvaluatedAt === null || k.evaluated_at > rotationEvaluatedAt)) {
      rotationEvaluatedAt = k.evaluated_at;
    }
  }
  return {
    organizationName: opts.organizationName,
    timezone: opts.timezone,
    asOf: now,
    admins,
    rotationEvaluatedAt,
    identityTraffic: new Map(
      traffic.map((t) => [t.identity, { keys: t.keys, usd: usdToPico(t.usd), tokens: BigInt(t.tokens) }]),
    ),
    federatedTraffic,
    identityFindings: identity.findings,
    keys: keys.map((k) => {
      const byUser = k.created_by_type === 'user' && k.created_by_id !== null;
      // a creator keywarden never saw (left before the first sync) is as gone as one marked left
      const departed = byUser && (k.creator_email === null || k.creator_left_at !== null);
      return {
        id: k.id,
        name: k.name,
        hint: k.partial_key_hint,
        workspaceName: keyWorkspaceName(k.scope_type, k.workspace_id, k.workspace_name),
        createdAt: k.created_at,
        expiresAt: k.expires_at,
        stage: k.stage,
        reminderDays: k.reminder_days,
        deadline: k.deadline,
        policySource: k.policy_source,
        ownerEmail: byUser && !departed ? k.creator_email : null,
        departedCreatorId: departed ? k.created_by_id : null,
        departedCreatorName: departed ? (k.creator_email ?? k.creator_name) : null,
      };
    }),
  };
}

/**
 * The window's federated spend from the stored bill (its 1h and 1d periods starting in the window); null when the
 * analytics cost API was refused when last asked (what is stored is stale) or the bill has no federated spend.
 */
async function loadFederatedTraffic(
  repos: Pick<Repos, 'billing'>,
  from: Date,
  to: Date,
): Promise<FederatedTraffic | null> {
  const access = await repos.billing.access('analytics.cost');
  if (access !== null && !access.available) return null;
  const actors = (await repos.billing.actorSpend(from, to)).filter((a) => a.type === 'federated_actor');
  if (actors.length === 0) return null;
  const subjects = actors
    .map((a) => ({ subject: a.id, usd: a.billed }))
    .sort((a, b) => (a.usd === b.usd ? a.subject.localeCompare(b.subject) : a.usd > b.usd ? -1 : 1));
  return { keys: 0, usd: subjects.reduce<Pico>((sum, a) => sum + a.usd, 0n), tokens: null, subjects };
}
