import type { AlertObservation } from '../../alerts/core/lifecycle.ts';
import type { ApiKey } from '../../anthropic/types.ts';
import { CONSOLE_KEYS_URL } from '../../console.ts';

/**
 * Who is behind a key, from its `principal` (2026 shapes): a person (`user_actor`), a service account
 * (`service_account_actor`), or nobody (a legacy workspace key, `principal: null`). `unknown` when the response did
 * not say: classic shapes carry no `principal` at all, and reading their silence as "legacy" would call every key of
 * the organization legacy. Pure.
 */
export const KEY_IDENTITIES = ['personal', 'service_account', 'legacy', 'unknown'] as const;
export type KeyIdentity = (typeof KEY_IDENTITIES)[number];

export function keyIdentity(key: Pick<ApiKey, 'principal'>): KeyIdentity {
  if (key.principal === undefined) return 'unknown';
  if (key.principal === null) return 'legacy';
  if (key.principal.type === 'user_actor') return 'personal';
  if (key.principal.type === 'service_account_actor') return 'service_account';
  // a principal type the API adds later: someone is behind the key, but keywarden cannot say who
  return 'unknown';
}

/** The identity in words, for tables, digests and messages. */
export const IDENTITY_LABELS: Record<KeyIdentity, string> = {
  personal: 'personal (a user)',
  service_account: 'service account',
  legacy: 'legacy workspace key',
  unknown: 'not reported',
};

// ── Service-like traffic on a personal key ──────────────────────────────────────────────────────────────────

/**
 * "Traffic around the clock", from the hours a key was used in the organization's timezone. A person at work,
 * even on a long day with a night deploy, leaves hours without traffic; a service does not. A day counts when the
 * key had traffic in at least `minHours` of its hours, `minNightHours` of them between midnight and 06:00; the key
 * carries service-like traffic when at least `minDays` of the last `windowDays` complete days count, a Saturday or
 * Sunday among them. Hours before keywarden's first usage bucket read as quiet, so a short history never flags.
 */
export const AROUND_THE_CLOCK = {
  windowDays: 7,
  minDays: 5,
  minHours: 20,
  minNightHours: 4,
  nightEndsAt: 6,
} as const;

/** The local hours (0–23) with traffic on one local day (`YYYY-MM-DD`). */
export interface DayActivity {
  date: string;
  hours: readonly number[];
}

export interface AroundTheClock {
  /** Days of the window that count (see AROUND_THE_CLOCK). */
  days: number;
  /** Of those, Saturdays and Sundays. */
  weekendDays: number;
  flagged: boolean;
}

/** A calendar date's weekday needs no timezone: the date is already the organization's. */
function isWeekend(date: string): boolean {
  const d = new Date(`${date}T00:00:00Z`).getUTCDay();
  return d === 0 || d === 6;
}

/** Whether a key's hours of traffic over the window (one entry per day with any) look like a service's. Pure. */
export function aroundTheClock(days: readonly DayActivity[]): AroundTheClock {
  const rule = AROUND_THE_CLOCK;
  let counted = 0;
  let weekendDays = 0;
  for (const day of days) {
    const hours = new Set(day.hours.filter((h) => Number.isInteger(h) && h >= 0 && h < 24));
    const night = [...hours].filter((h) => h < rule.nightEndsAt).length;
    if (hours.size < rule.minHours || night < rule.minNightHours) continue;
    counted++;
    if (isWeekend(day.date)) weekendDays++;
  }
  return { days: counted, weekendDays, flagged: counted >= rule.minDays && weekendDays > 0 };
}

// ── Findings ───────────────────────────────────────────────────────────────────────────────────────────────────

/** What `key.identity` says of a key; each is its own alert (the finding is the alert's period). */
export const IDENTITY_FINDINGS = ['around_the_clock', 'owner_left', 'dead_in_use', 'legacy', 'no_expiry'] as const;
export type IdentityFinding = (typeof IDENTITY_FINDINGS)[number];

/** One active key as identity findings need it. Names, emails and hints are the organization's: untrusted text. */
export interface IdentityKey {
  id: string;
  name: string;
  hint: string | null;
  workspaceId: string | null;
  workspaceName: string;
  identity: KeyIdentity;
  expiresAt: Date | null;
  /** For a personal key: the user it acts as, while they are in the organization (null: gone, or never seen). */
  owner: { id: string; email: string } | null;
  /** For a personal key: the user id it acts as (also when they left). */
  principalUserId: string | null;
  /** For a personal key: that user's email as keywarden last saw it (null: gone before its first sync). */
  principalEmail: string | null;
  /** For a personal key whose user left: when keywarden saw them go (null: before its first sync). */
  ownerLeftAt: Date | null;
  /** The key's last usage bucket (null: none stored); read for a personal key whose owner is gone. */
  lastUsageAt: Date | null;
  /** The key's hours of traffic over the window; read for a personal key whose owner is here. */
  activity: readonly DayActivity[];
}

export interface IdentityPlanEntry {
  key: IdentityKey;
  finding: IdentityFinding;
  /** For around_the_clock: the rule's result. */
  aroundTheClock?: AroundTheClock;
}

/**
 * Every identity finding of every active key, in the keys' order: a personal key carrying service-like traffic
 * around the clock; a personal key whose user left (dead: the API stops it with its owner), and, apart, such a key
 * that still had traffic within the window after they left (a red flag: whoever calls it is not its owner; it
 * resolves a window after the traffic stops); a legacy workspace key (nobody's identity behind its traffic); a key
 * that never expires. Pure.
 */
export function planIdentityFindings(keys: readonly IdentityKey[], windowStart: Date): IdentityPlanEntry[] {
  const out: IdentityPlanEntry[] = [];
  for (const key of keys) {
    if (key.identity === 'personal') {
      if (key.owner === null) {
        out.push({ key, finding: 'owner_left' });
        const since = key.ownerLeftAt !== null && key.ownerLeftAt > windowStart ? key.ownerLeftAt : windowStart;
        if (key.lastUsageAt !== null && key.lastUsageAt >= since) out.push({ key, finding: 'dead_in_use' });
      } else {
        const result = aroundTheClock(key.activity);
        if (result.flagged) out.push({ key, finding: 'around_the_clock', aroundTheClock: result });
      }
    }
    if (key.identity === 'legacy') out.push({ key, finding: 'legacy' });
    if (key.expiresAt === null) out.push({ key, finding: 'no_expiry' });
  }
  return out;
}

/** A finding in a few words (a digest cell: under 48 characters), beside the key's identity. */
export function findingText(e: IdentityPlanEntry): string {
  switch (e.finding) {
    case 'around_the_clock':
      return `service traffic around the clock (${e.aroundTheClock!.days} of ${AROUND_THE_CLOCK.windowDays} days)`;
    case 'owner_left':
      return 'dead: its owner left';
    case 'dead_in_use':
      return 'dead (its owner left), still in use';
    case 'legacy':
      return 'no user or service account behind it';
    case 'no_expiry':
      return 'never expires';
  }
}

/** The user a dead key acted as: by email when keywarden knew them, else by id. */
function formerOwner(k: IdentityKey): string {
  return k.principalEmail ?? k.principalUserId ?? 'a former member';
}

function keyField(k: IdentityKey) {
  return { label: 'Key', value: `${k.name} (${k.hint ?? k.id})` };
}

/** The `key.identity` alert of one finding. */
export function identityObservation(e: IdentityPlanEntry): AlertObservation {
  const k = e.key;
  const base = {
    kind: 'key.identity' as const,
    scopeType: 'key' as const,
    scopeId: k.id,
    workspaceId: k.workspaceId,
    period: e.finding,
    details: { keyId: k.id, finding: e.finding, identity: k.identity, hint: k.hint },
    links: [{ label: 'API keys in the Console', url: CONSOLE_KEYS_URL }],
    scopeName: k.name,
    workspaceName: k.workspaceName,
    keyOwnerEmail: k.owner?.email ?? null,
  };
  const fields = [
    keyField(k),
    { label: 'Workspace', value: k.workspaceName },
    { label: 'Identity', value: IDENTITY_LABELS[k.identity] },
  ];
  switch (e.finding) {
    case 'around_the_clock': {
      const r = e.aroundTheClock!;
      return {
        ...base,
        severity: 'warning',
        title: `Personal API key "${k.name}" carries service traffic around the clock`,
        summary:
          `This key acts as ${k.owner!.email}, yet it had traffic in at least ${AROUND_THE_CLOCK.minHours} of 24 hours, ` +
          `nights included, on ${r.days} of the last ${AROUND_THE_CLOCK.windowDays} days (${r.weekendDays} on a weekend): ` +
          'a service runs on a person. It stops working the day that person leaves the organization. ' +
          'Move the service to a service-account key.',
        fields: [...fields, { label: 'Acts as', value: k.owner!.email }],
        details: { ...base.details, days: r.days, weekendDays: r.weekendDays },
      };
    }
    case 'owner_left':
      return {
        ...base,
        severity: 'warning',
        title: `API key "${k.name}" is dead: its owner left the organization`,
        summary:
          `This personal key acts as ${formerOwner(k)}, who is no longer in the organization: it stops with its ` +
          'owner. Retire it; whatever still needs it needs a service-account key.',
        fields: [...fields, { label: 'Acted as', value: `${formerOwner(k)} (left)` }],
        details: { ...base.details, principalUserId: k.principalUserId },
      };
    case 'dead_in_use': {
      const last = k.lastUsageAt!.toISOString().slice(0, 16).replace('T', ' ');
      return {
        ...base,
        severity: 'critical',
        title: `Dead API key "${k.name}" still carries traffic`,
        summary:
          `This personal key acts as ${formerOwner(k)}, who is no longer in the organization, and it had traffic ` +
          `after they left (last at ${last} UTC). Whoever calls it is not its owner: find the caller, and retire the key.`,
        fields: [
          ...fields,
          { label: 'Acted as', value: `${formerOwner(k)} (left)` },
          { label: 'Last usage', value: `${last} UTC` },
        ],
        details: { ...base.details, principalUserId: k.principalUserId, lastUsageAt: k.lastUsageAt!.toISOString() },
      };
    }
    case 'legacy':
      return {
        ...base,
        severity: 'info',
        title: `API key "${k.name}" is a legacy workspace key`,
        summary:
          'No user or service account is behind this key, so its traffic is nobody’s in the audit trail. ' +
          'Replace it with a service-account key, and retire it once its traffic has moved.',
        fields,
      };
    case 'no_expiry':
      return {
        ...base,
        severity: 'info',
        title: `API key "${k.name}" never expires`,
        summary:
          'This key has no expiry date: if it leaks, it works until someone retires it. ' +
          'Its successor can be made with an expiry in the Console.',
        fields,
      };
  }
}
