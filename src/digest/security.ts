import { CONSOLE_KEYS_URL } from '../console.ts';
import { findingText, IDENTITY_LABELS, type IdentityPlanEntry, type KeyIdentity } from '../inventory/core/identity.ts';
import type { RotationStage } from '../kinds.ts';
import { formatUsd, type Pico } from '../money.ts';
import type { DigestMessage, DigestSection } from '../notify/message.ts';
import { DAY_MS } from '../time.ts';
import { formatDate, formatLongDate, localDate, mondayOf } from './period.ts';
import { IDENTITY_TRAFFIC_DAYS, type IdentityTraffic, type SecurityData, type SecurityKey } from './security-data.ts';

/**
 * The weekly security digest, composed from loaded data: keys by rotation stage (what is overdue, what is due
 * soon, what is exempt), keys whose creator left, who is behind the traffic (its share on service accounts against
 * personal and legacy keys, and the identity findings), keys without an expiry date, and who holds the admin role.
 * Pure: data in, message out.
 */

/** Keys without an expiry are often most of them; the oldest are the ones worth reading about. */
const NO_EXPIRY_ROWS = 25;
/** Federated subjects past this many are counted, not listed. */
const SUBJECT_ROWS = 10;
/** Identity findings past this many are counted, not listed. */
const FINDING_ROWS = 25;
/** Stages older than this mean enforce-rotation has stopped running: the digest says so. */
const STALE_STAGES_MS = 2 * DAY_MS;

/** The stages past the deadline (rotation_state.stage, see src/rotation/core/describe.ts), in words. */
const OVERDUE_STAGES: Partial<Record<RotationStage, string>> = {
  overdue: 'overdue',
  grace: 'overdue, in its grace period',
  blocked: 'overdue, still in use',
  hold: 'overdue, enforcement on hold',
  would_deactivate: 'would be deactivated (enforcement off)',
  deactivate: 'being deactivated',
  deferred: 'deactivation deferred (per-run cap)',
  ask_approval: 'overdue, waiting for approval in Slack',
  denied: 'overdue, deactivation denied in Slack (asked again after the grace period)',
};

/** A stage in words, for the count table. */
function stageLabel(k: Pick<SecurityKey, 'stage' | 'reminderDays'>): string {
  if (k.stage === null) return 'not evaluated yet';
  if (k.stage === 'ok') return 'within policy';
  if (k.stage === 'exempt') return 'exempt';
  if (k.stage === 'due_soon') return `due within ${k.reminderDays} days`;
  return OVERDUE_STAGES[k.stage] ?? k.stage;
}

function day(at: Date | null, timezone: string): string {
  return at === null ? '–' : formatDate(localDate(at, timezone));
}

/** Whole days from `from` to `to`, rounded down. */
function daysBetween(from: Date, to: Date): number {
  return Math.floor((to.getTime() - from.getTime()) / DAY_MS);
}

function owner(k: SecurityKey): string {
  if (k.ownerEmail !== null) return k.ownerEmail;
  if (k.departedCreatorId !== null) return departed(k);

  return 'no user (created by the API)';
}

/** A creator who left: by email when keywarden knew them, else by user id (they left before its first sync). */
function departed(k: SecurityKey): string {
  return k.departedCreatorName === null ? `former member ${k.departedCreatorId}` : `${k.departedCreatorName} (left)`;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function percent(part: bigint, whole: bigint): string {
  if (whole === 0n) return '–';
  // basis points in bigint, then one decimal for people
  const bp = (part * 10_000n) / whole;
  return `${(Number(bp) / 100).toFixed(bp < 1000n ? 1 : 0)}%`;
}

/** The traffic rows in a fixed order: the identities a security team wants to grow first. */
const TRAFFIC_ROWS: Array<[KeyIdentity | 'no_key', string]> = [
  ['service_account', 'Service accounts'],
  ['personal', 'Personal keys (a user)'],
  ['legacy', 'Legacy workspace keys'],
  ['unknown', 'Keys whose identity the API did not report'],
  ['no_key', 'Usage without a key (Console, Workbench)'],
];

/**
 * Who is behind the window's traffic, by spend and by tokens, federated identities (from the bill) among them; shares
 * against the whole. The bill reports no tokens: a federated row's tokens are "not reported", and token shares are of
 * the tokens known.
 */
function identityTrafficSection(data: SecurityData): {
  section: DigestSection;
  subjects: DigestSection | null;
  sentence: string | null;
} {
  const rows: Array<[string, IdentityTraffic]> = [];
  for (const [identity, label] of TRAFFIC_ROWS) {
    const t = data.identityTraffic.get(identity);
    if (t !== undefined) rows.push([label, t]);
  }
  if (data.federatedTraffic !== null) rows.push(['Federated identities (workload identity)', data.federatedTraffic]);
  const usd = rows.reduce<Pico>((sum, [, t]) => sum + t.usd, 0n);
  const tokens = rows.reduce((sum, [, t]) => sum + (t.tokens ?? 0n), 0n);
  const share = (identity: KeyIdentity) => {
    const t = data.identityTraffic.get(identity);
    return percent(t?.usd ?? 0n, usd);
  };
  const federated = data.federatedTraffic;
  const sentence =
    usd === 0n
      ? null
      : `Of the last ${IDENTITY_TRAFFIC_DAYS} days' spend, ${share('service_account')} ran on service-account keys, ` +
        (federated === null
          ? `${share('personal')} on personal keys and ${share('legacy')} on legacy workspace keys.`
          : `${percent(federated.usd, usd)} on federated identities (no key), ${share('personal')} on personal keys ` +
            `and ${share('legacy')} on legacy workspace keys.`);
  const subjects: DigestSection | null =
    federated === null
      ? null
      : {
          title: `Federated identities (workload identity), last ${IDENTITY_TRAFFIC_DAYS} days`,
          columns: [{ label: 'Subject' }, { label: 'Spend', align: 'right' }, { label: 'Share', align: 'right' }],
          rows: federated.subjects
            .slice(0, SUBJECT_ROWS)
            .map((f) => [
              f.subject === '' ? '(no subject reported)' : f.subject,
              formatUsd(f.usd),
              percent(f.usd, usd),
            ]),
          empty: '',
          more: Math.max(0, federated.subjects.length - SUBJECT_ROWS),
        };
  return {
    sentence,
    subjects,
    section: {
      title: `Traffic by identity, last ${IDENTITY_TRAFFIC_DAYS} days`,
      columns: [
        { label: 'Identity' },
        { label: 'Keys', align: 'right' },
        { label: 'Spend', align: 'right' },
        { label: 'Share', align: 'right' },
        { label: 'Tokens', align: 'right' },
        { label: 'Share', align: 'right' },
      ],
      rows: rows.map(([label, t]) => [
        label,
        String(t.keys),
        formatUsd(t.usd),
        percent(t.usd, usd),
        t.tokens === null ? 'not reported' : t.tokens.toLocaleString('en-US'),
        t.tokens === null ? '–' : percent(t.tokens, tokens),
      ]),
      empty: `No usage stored for the last ${IDENTITY_TRAFFIC_DAYS} days.`,
    },
  };
}

/** Dead keys in use first, then services on people, dead keys, legacy keys. */
const FINDING_RANK: Record<IdentityPlanEntry['finding'], number> = {
  dead_in_use: 0,
  owner_left: 1,
  around_the_clock: 2,
  legacy: 3,
  no_expiry: 4,
};

export function composeSecurityDigest(data: SecurityData): DigestMessage {
  const tz = data.timezone;
  const now = data.asOf;
  const overdue = data.keys
    .filter((k) => k.stage !== null && k.stage in OVERDUE_STAGES)
    .sort((a, b) => (a.deadline?.getTime() ?? 0) - (b.deadline?.getTime() ?? 0));
  const dueSoon = data.keys
    .filter((k) => k.stage === 'due_soon')
    .sort((a, b) => (a.deadline?.getTime() ?? 0) - (b.deadline?.getTime() ?? 0));
  const exempt = data.keys.filter((k) => k.stage === 'exempt');
  const orphaned = data.keys.filter((k) => k.departedCreatorId !== null);
  const noExpiry = data.keys.filter((k) => k.expiresAt === null); // oldest first, as loaded
  const inUse = overdue.filter((k) => k.stage === 'blocked').length;
  // a key without expiry has its own section below, and a dead key in use is said once: the list holds the rest
  const deadInUse = new Set(data.identityFindings.filter((e) => e.finding === 'dead_in_use').map((e) => e.key.id));
  const findings = data.identityFindings
    .filter((e) => e.finding !== 'no_expiry' && !(e.finding === 'owner_left' && deadInUse.has(e.key.id)))
    .sort((a, b) => FINDING_RANK[a.finding] - FINDING_RANK[b.finding]);
  const traffic = identityTrafficSection(data);

  const counts = new Map<string, number>();
  for (const k of data.keys) counts.set(stageLabel(k), (counts.get(stageLabel(k)) ?? 0) + 1);
  const byStage: DigestSection = {
    title: 'Active keys by rotation stage',
    columns: [{ label: 'Stage' }, { label: 'Keys', align: 'right' }],
    // most urgent first: the order of the lists below
    rows: [...counts]
      .sort(([a], [b]) => stageRank(a) - stageRank(b) || a.localeCompare(b))
      .map(([label, n]) => [label, String(n)]),
    empty: 'The organization has no active keys.',
  };

  const sections: DigestSection[] = [
    byStage,
    {
      title: 'Overdue for rotation',
      columns: [
        { label: 'Key' },
        { label: 'Workspace' },
        { label: 'Owner' },
        { label: 'Deadline', align: 'right' },
        { label: 'Overdue by', align: 'right' },
        { label: 'Stage' },
      ],
      rows: overdue.map((k) => [
        k.name,
        k.workspaceName,
        owner(k),
        day(k.deadline, tz),
        k.deadline === null ? '–' : plural(Math.max(0, daysBetween(k.deadline, now)), 'day', 'days'),
        stageLabel(k),
      ]),
      empty: 'No key is past its rotation deadline.',
    },
    {
      title: 'Due for rotation soon',
      columns: [
        { label: 'Key' },
        { label: 'Workspace' },
        { label: 'Owner' },
        { label: 'Deadline', align: 'right' },
        { label: 'Days left', align: 'right' },
      ],
      rows: dueSoon.map((k) => [
        k.name,
        k.workspaceName,
        owner(k),
        day(k.deadline, tz),
        k.deadline === null ? '–' : String(Math.max(0, Math.ceil((k.deadline.getTime() - now.getTime()) / DAY_MS))),
      ]),
      empty: 'No key reaches its rotation deadline within the reminder window.',
    },
    {
      title: 'Orphaned keys (their creator left the organization)',
      columns: [
        { label: 'Key' },
        { label: 'Workspace' },
        { label: 'Created by' },
        { label: 'Created', align: 'right' },
      ],
      rows: orphaned.map((k) => [k.name, k.workspaceName, departed(k), day(k.createdAt, tz)]),
      empty: 'Every active key was created by someone still in the organization (or by the API).',
    },
    traffic.section,
    ...(traffic.subjects === null ? [] : [traffic.subjects]),
    {
      title: 'Identity findings',
      columns: [{ label: 'Key' }, { label: 'Workspace' }, { label: 'Identity' }, { label: 'Finding' }],
      rows: findings
        .slice(0, FINDING_ROWS)
        .map((e) => [e.key.name, e.key.workspaceName, IDENTITY_LABELS[e.key.identity], findingText(e)]),
      empty:
        'No personal key carries service traffic, no key outlived its owner, and no legacy workspace key is active.',
      more: Math.max(0, findings.length - FINDING_ROWS),
    },
    {
      title: 'Keys without an expiry date',
      columns: [
        { label: 'Key' },
        { label: 'Workspace' },
        { label: 'Owner' },
        { label: 'Age', align: 'right' },
        { label: 'Rotation deadline', align: 'right' },
      ],
      rows: noExpiry
        .slice(0, NO_EXPIRY_ROWS)
        .map((k) => [
          k.name,
          k.workspaceName,
          owner(k),
          plural(daysBetween(k.createdAt, now), 'day', 'days'),
          k.stage === 'exempt' ? 'exempt' : day(k.deadline, tz),
        ]),
      empty: 'Every active key has an expiry date.',
      more: Math.max(0, noExpiry.length - NO_EXPIRY_ROWS),
    },
  ];
  if (exempt.length > 0) {
    sections.push({
      title: 'Exempt from rotation',
      columns: [{ label: 'Key' }, { label: 'Workspace' }, { label: 'Exemption' }],
      rows: exempt.map((k) => [k.name, k.workspaceName, k.policySource ?? '']),
      empty: '',
    });
  }
  sections.push({
    title: 'Members with the admin role',
    columns: [{ label: 'Name' }, { label: 'Email' }],
    rows: data.admins.map((a) => [a.name, a.email]),
    empty: 'Nobody in the organization holds the admin role.',
  });

  const sentences = [
    `${data.organizationName} has ${plural(data.keys.length, 'active API key', 'active API keys')}: ` +
      `${overdue.length} overdue for rotation${inUse > 0 ? ` (${inUse} still in use)` : ''}, ` +
      `${dueSoon.length} due soon, ${orphaned.length} without an owner in the organization, ` +
      `${noExpiry.length} without an expiry date.`,
    ...(traffic.sentence === null ? [] : [traffic.sentence]),
    `${plural(findings.length, 'identity finding', 'identity findings')}` +
      `${deadInUse.size > 0 ? ` (${plural(deadInUse.size, 'dead key', 'dead keys')} still in use)` : ''}.`,
    `${plural(data.admins.length, 'member holds', 'members hold')} the admin role.`,
  ];
  const evaluated = data.rotationEvaluatedAt;
  if (data.keys.length > 0 && (evaluated === null || now.getTime() - evaluated.getTime() > STALE_STAGES_MS)) {
    sentences.push(
      evaluated === null
        ? 'Rotation stages have not been evaluated yet: enforce-rotation has not run.'
        : `Rotation stages are from ${formatLongDate(localDate(evaluated, tz))}: enforce-rotation has not run since.`,
    );
  }

  const today = localDate(now, tz);
  return {
    kind: 'digest.security',
    title: `Security digest: ${data.organizationName}, week of ${formatLongDate(mondayOf(today))}`,
    summary: sentences.join(' '),
    fields: [
      { label: 'Active keys', value: String(data.keys.length) },
      { label: 'Overdue', value: String(overdue.length) },
      { label: 'Due soon', value: String(dueSoon.length) },
      { label: 'Orphaned', value: String(orphaned.length) },
      { label: 'Without expiry', value: String(noExpiry.length) },
      { label: 'Identity findings', value: String(findings.length) },
      { label: 'Admins', value: String(data.admins.length) },
    ],
    sections,
    links: [{ label: 'API keys in the Console', url: CONSOLE_KEYS_URL }],
    footer: `Stages as of ${evaluated === null ? 'never' : `${evaluated.toISOString().slice(0, 16).replace('T', ' ')} UTC`}; dates in ${tz}.`,
  };
}

/** Overdue stages first, then due soon (nearest first), then the calm ones. */
function stageRank(label: string): number {
  if (Object.values(OVERDUE_STAGES).includes(label)) return 0;
  const due = /^due within (\d+) days$/.exec(label);
  if (due) return 1 + Number(due[1]) / 1000;
  if (label === 'within policy') return 2;
  if (label === 'exempt') return 3;
  return 4;
}
