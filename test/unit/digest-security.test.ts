import { describe, expect, it } from 'vitest';
import { composeSecurityDigest } from '../../src/digest/security.ts';
import type { SecurityData, SecurityKey } from '../../src/digest/security-data.ts';
import type { IdentityKey } from '../../src/inventory/core/identity.ts';
import type { RotationStage } from '../../src/kinds.ts';

const NOW = new Date('2026-11-18T09:00:00Z'); // a Wednesday
const DAY = 86_400_000;
const daysFromNow = (d: number) => new Date(NOW.getTime() + d * DAY);

function key(name: string, stage: RotationStage | null, extra: Partial<SecurityKey> = {}): SecurityKey {
  return {
    id: `key_${name}`,
    name,
    hint: null,
    workspaceName: 'Research',
    createdAt: daysFromNow(-100),
    expiresAt: null,
    stage,
    reminderDays: null,
    deadline: daysFromNow(-10),
    policySource: 'default',
    ownerEmail: 'ana@acme.example',
    departedCreatorId: null,
    departedCreatorName: null,
    ...extra,
  };
}

function data(keys: SecurityKey[], extra: Partial<SecurityData> = {}): SecurityData {
  return {
    organizationName: 'Acme AI',
    timezone: 'UTC',
    asOf: NOW,
    keys,
    admins: [{ name: 'Dana Admin', email: 'dana@acme.example' }],
    rotationEvaluatedAt: new Date(NOW.getTime() - 3_600_000),
    identityTraffic: new Map(),
    federatedTraffic: null,
    identityFindings: [],
    ...extra,
  };
}

const section = (d: ReturnType<typeof composeSecurityDigest>, title: string) => {
  const s = d.sections.find((x) => x.title.startsWith(title));
  if (!s) throw new Error(`no section ${title}`);
  return s;
};

describe('composeSecurityDigest', () => {
  const keys = [
    key('blocked key', 'blocked', { deadline: daysFromNow(-30) }),
    key('late key', 'overdue', { deadline: daysFromNow(-3) }),
    key('graceful', 'grace', { deadline: daysFromNow(-1) }),
    key('soon', 'due_soon', { reminderDays: 7, deadline: daysFromNow(6), expiresAt: daysFromNow(6) }),
    key('later', 'due_soon', { reminderDays: 14, deadline: daysFromNow(12) }),
    key('fine', 'ok', { deadline: daysFromNow(60) }),
    key('vendor', 'exempt', { deadline: null, policySource: 'exemption until 2027-01-31' }),
    key('new', null, { deadline: null, createdAt: daysFromNow(-0.5) }),
    key('orphan', 'ok', {
      ownerEmail: null,
      departedCreatorId: 'user_bob',
      departedCreatorName: 'bob@acme.example',
      deadline: daysFromNow(40),
    }),
    key('unknown leaver', 'ok', { ownerEmail: null, departedCreatorId: 'user_zed', deadline: daysFromNow(41) }),
  ];
  const d = composeSecurityDigest(data(keys));

  it('counts keys by stage, most urgent first', () => {
    expect(section(d, 'Active keys by rotation stage').rows).toEqual([
      ['overdue', '1'],
      ['overdue, in its grace period', '1'],
      ['overdue, still in use', '1'],
      ['due within 7 days', '1'],
      ['due within 14 days', '1'],
      ['within policy', '3'],
      ['exempt', '1'],
      ['not evaluated yet', '1'],
    ]);
  });

  it('lists overdue keys longest overdue first, with how long and what stage', () => {
    expect(section(d, 'Overdue for rotation').rows).toEqual([
      ['blocked key', 'Research', 'ana@acme.example', '19 Oct 2026', '30 days', 'overdue, still in use'],
      ['late key', 'Research', 'ana@acme.example', '15 Nov 2026', '3 days', 'overdue'],
      ['graceful', 'Research', 'ana@acme.example', '17 Nov 2026', '1 day', 'overdue, in its grace period'],
    ]);
    expect(d.summary).toContain('3 overdue for rotation (1 still in use), 2 due soon');
  });

  it('keeps keys waiting on a Slack approval, or denied there, among the overdue, in words', () => {
    const waiting = composeSecurityDigest(
      data([
        key('asked', 'ask_approval', { deadline: daysFromNow(-9) }),
        key('kept', 'denied', { deadline: daysFromNow(-20) }),
      ]),
    );
    expect(section(waiting, 'Overdue for rotation').rows.map((r) => [r[0], r[5]])).toEqual([
      ['kept', 'overdue, deactivation denied in Slack (asked again after the grace period)'],
      ['asked', 'overdue, waiting for approval in Slack'],
    ]);
    expect(waiting.summary).toContain('2 overdue for rotation');
  });

  it('lists keys due soon with the days left, and exemptions with their reason', () => {
    expect(section(d, 'Due for rotation soon').rows.map((r) => [r[0], r[4]])).toEqual([
      ['soon', '6'],
      ['later', '12'],
    ]);
    expect(section(d, 'Exempt from rotation').rows).toEqual([['vendor', 'Research', 'exemption until 2027-01-31']]);
  });

  it('names the creator of an orphaned key by email when known, else by user id', () => {
    expect(section(d, 'Orphaned keys').rows.map((r) => r[2])).toEqual([
      'bob@acme.example (left)',
      'former member user_zed',
    ]);
    expect(d.fields.find((f) => f.label === 'Orphaned')?.value).toBe('2');
  });

  it('lists keys without an expiry, oldest first, and counts the rest past 25', () => {
    const many = Array.from({ length: 30 }, (_, i) => key(`k${i}`, 'ok', { createdAt: daysFromNow(-(i + 1)) }));
    const noExpiry = section(composeSecurityDigest(data(many.reverse())), 'Keys without an expiry date');
    expect(noExpiry.rows).toHaveLength(25);
    expect(noExpiry.more).toBe(5);
    expect(noExpiry.rows[0]?.slice(0, 1)).toEqual(['k29']);
    expect(noExpiry.rows[0]?.[3]).toBe('30 days');
    expect(section(d, 'Keys without an expiry date').rows.map((r) => r[0])).not.toContain('soon');
  });

  it('counts and lists the admins', () => {
    expect(d.fields.find((f) => f.label === 'Admins')?.value).toBe('1');
    expect(section(d, 'Members with the admin role').rows).toEqual([['Dana Admin', 'dana@acme.example']]);
    const none = composeSecurityDigest(data(keys, { admins: [] }));
    expect(none.summary).toContain('0 members hold the admin role.');
    expect(section(none, 'Members with the admin role').empty).toBe('Nobody in the organization holds the admin role.');
  });

  it('says when the stages are stale because enforce-rotation stopped running', () => {
    expect(d.summary).not.toMatch(/has not run/);
    const stale = composeSecurityDigest(data(keys, { rotationEvaluatedAt: daysFromNow(-5) }));
    expect(stale.summary).toContain('Rotation stages are from Fri, 13 Nov 2026: enforce-rotation has not run since.');
    const never = composeSecurityDigest(data(keys, { rotationEvaluatedAt: null }));
    expect(never.summary).toContain('Rotation stages have not been evaluated yet');
  });

  it('titles the digest by the week it belongs to', () => {
    expect(d.title).toBe('Security digest: Acme AI, week of Mon, 16 Nov 2026');
  });
});

describe('composeSecurityDigest: who is behind the traffic', () => {
  const usd = (dollars: number) => BigInt(dollars) * 1_000_000_000_000n;
  const identityKey = (name: string, identity: IdentityKey['identity'], extra: Partial<IdentityKey> = {}) => ({
    id: `key_${name}`,
    name,
    hint: null,
    workspaceId: null,
    workspaceName: 'Research',
    identity,
    expiresAt: null,
    owner: null,
    principalUserId: null,
    principalEmail: null,
    ownerLeftAt: null,
    lastUsageAt: null,
    activity: [],
    ...extra,
  });
  const d = composeSecurityDigest(
    data([key('fine', 'ok', { deadline: daysFromNow(60) })], {
      identityTraffic: new Map([
        ['service_account', { keys: 3, usd: usd(600), tokens: 6_000_000n }],
        ['personal', { keys: 2, usd: usd(300), tokens: 3_000_000n }],
        ['legacy', { keys: 1, usd: usd(100), tokens: 1_000_000n }],
      ]),
      identityFindings: [
        { key: identityKey('legacy app', 'legacy'), finding: 'legacy' },
        { key: identityKey('legacy app', 'legacy'), finding: 'no_expiry' },
        {
          key: identityKey('chloe batch', 'personal'),
          finding: 'around_the_clock',
          aroundTheClock: { days: 6, weekendDays: 2, flagged: true },
        },
        { key: identityKey("bob's notebook", 'personal'), finding: 'owner_left' },
        { key: identityKey("bob's notebook", 'personal'), finding: 'dead_in_use' },
        { key: identityKey("zed's script", 'personal'), finding: 'owner_left' },
      ],
    }),
  );

  it('shows the share of spend and tokens on service accounts against personal and legacy keys', () => {
    expect(section(d, 'Traffic by identity, last 7 days').rows).toEqual([
      ['Service accounts', '3', '$600.00', '60%', '6,000,000', '60%'],
      ['Personal keys (a user)', '2', '$300.00', '30%', '3,000,000', '30%'],
      ['Legacy workspace keys', '1', '$100.00', '10%', '1,000,000', '10%'],
    ]);
    expect(d.summary).toContain(
      "Of the last 7 days' spend, 60% ran on service-account keys, 30% on personal keys and 10% on legacy workspace keys.",
    );
  });

  it('lists the identity findings, dead keys in use first (once), then dead keys; keys without expiry stay apart', () => {
    expect(section(d, 'Identity findings').rows).toEqual([
      ["bob's notebook", 'Research', 'personal (a user)', 'dead (its owner left), still in use'],
      ["zed's script", 'Research', 'personal (a user)', 'dead: its owner left'],
      ['chloe batch', 'Research', 'personal (a user)', 'service traffic around the clock (6 of 7 days)'],
      ['legacy app', 'Research', 'legacy workspace key', 'no user or service account behind it'],
    ]);
    expect(d.summary).toContain('4 identity findings (1 dead key still in use).');
    expect(d.fields).toContainEqual({ label: 'Identity findings', value: '4' });
  });

  it('says when there is no traffic and no finding', () => {
    const quiet = composeSecurityDigest(data([]));
    expect(section(quiet, 'Traffic by identity').rows).toEqual([]);
    expect(section(quiet, 'Traffic by identity').empty).toBe('No usage stored for the last 7 days.');
    expect(section(quiet, 'Identity findings').rows).toEqual([]);
    expect(quiet.summary).not.toContain("Of the last 7 days' spend");
  });

  it('shows federated identities once they are read (the analytics API’s actors)', () => {
    const withFederated = composeSecurityDigest(
      data([], {
        identityTraffic: new Map([['service_account', { keys: 1, usd: usd(50), tokens: 500n }]]),
        federatedTraffic: { keys: 0, usd: usd(50), tokens: null, subjects: [{ subject: 'ci', usd: usd(50) }] },
      }),
    );
    expect(section(withFederated, 'Traffic by identity').rows.map((r) => [r[0], r[3]])).toEqual([
      ['Service accounts', '50%'],
      ['Federated identities (workload identity)', '50%'],
    ]);
  });

  it('counts federated spend in the whole: its share beside the static keys, its tokens not reported', () => {
    const d = composeSecurityDigest(
      data([], {
        identityTraffic: new Map([
          ['service_account', { keys: 2, usd: usd(300), tokens: 3_000_000n }],
          ['personal', { keys: 1, usd: usd(100), tokens: 1_000_000n }],
          ['legacy', { keys: 1, usd: usd(100), tokens: 1_000_000n }],
        ]),
        federatedTraffic: {
          keys: 0,
          usd: usd(500),
          tokens: null,
          subjects: [
            { subject: 'repo:acme/deploy:ref:refs/heads/main', usd: usd(400) },
            { subject: '<b>@here</b> *bold*', usd: usd(75) },
            { subject: '', usd: usd(25) },
          ],
        },
      }),
    );
    expect(section(d, 'Traffic by identity').rows).toEqual([
      ['Service accounts', '2', '$300.00', '30%', '3,000,000', '60%'],
      ['Personal keys (a user)', '1', '$100.00', '10%', '1,000,000', '20%'],
      ['Legacy workspace keys', '1', '$100.00', '10%', '1,000,000', '20%'],
      ['Federated identities (workload identity)', '0', '$500.00', '50%', 'not reported', '–'],
    ]);
    expect(d.summary).toContain(
      "Of the last 7 days' spend, 30% ran on service-account keys, 50% on federated identities (no key), " +
        '10% on personal keys and 10% on legacy workspace keys.',
    );
    // subjects are organization-controlled text: the section carries them as they are, every renderer escapes
    expect(section(d, 'Federated identities (workload identity)').rows).toEqual([
      ['repo:acme/deploy:ref:refs/heads/main', '$400.00', '40%'],
      ['<b>@here</b> *bold*', '$75.00', '7.5%'],
      ['(no subject reported)', '$25.00', '2.5%'],
    ]);
  });

  it('lists the largest federated subjects and counts the rest', () => {
    const subjects = Array.from({ length: 12 }, (_, i) => ({ subject: `job-${i}`, usd: usd(12 - i) }));
    const d = composeSecurityDigest(data([], { federatedTraffic: { keys: 0, usd: usd(78), tokens: null, subjects } }));
    const s = section(d, 'Federated identities (workload identity)');
    expect(s.rows.map((r) => r[0])).toEqual(subjects.slice(0, 10).map((x) => x.subject));
    expect(s.more).toBe(2);
  });

  it('has no federated section while nothing federated is known', () => {
    const d = composeSecurityDigest(data([]));
    expect(d.sections.some((x) => x.title.startsWith('Federated'))).toBe(false);
  });
});
