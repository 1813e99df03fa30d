import { describe, expect, it } from 'vitest';
import { policySchema } from '../../src/config/policy.ts';
import { describePolicySource, resolveDeadline } from '../../src/rotation/core/policy.ts';
import type { KeyState } from '../../src/rotation/core/types.ts';

const NOW = new Date('2026-06-15T09:00:00Z');
const CREATED = new Date('2026-05-01T12:00:00Z');

const policy = policySchema.parse({
  rotation: {
    max_age_days: 90,
    overrides: [
      // Listed before the key override on purpose: a key override still wins.
      { workspace: 'Research', max_age_days: 30 },
      { key: 'ci-*', max_age_days: 14 },
      { workspace: 'wrkspc_01Batch', max_age_days: 60 },
      { key: 'apikey_01Pinned', max_age_days: 180 },
      { key: 'ci-nightly', max_age_days: 7 },
    ],
    exemptions: [
      { key: 'vendor-*', until: '2026-07-01', reason: 'vendor rotates with us in July' },
      { key: 'apikey_01Lapsed', until: '2026-06-14', reason: 'ended yesterday' },
      { key: 'apikey_01LastDay', until: '2026-06-15', reason: 'ends tonight' },
    ],
  },
}).rotation;

function key(over: Partial<KeyState> = {}): KeyState {
  return {
    id: 'apikey_01Plain',
    name: 'Production Backend',
    status: 'active',
    workspaceId: 'wrkspc_01Prod',
    scope: 'workspace',
    workspaceName: 'Production',
    createdAt: CREATED,
    expiresAt: null,
    createdByUserId: 'user_01Alice',
    ownerEmail: 'alice@acme.com',
    partialKeyHint: 'sk-ant-api03-R2D...igAA',
    ...over,
  };
}

const research = { workspaceId: 'wrkspc_01Res', workspaceName: 'Research' };

describe('rotation policy resolution: exemption > key override > workspace override > default; earlier expires_at wins', () => {
  it.each([
    ['no rule names the key', key(), 'default', '2026-07-30T12:00:00.000Z'],
    [
      'Default Workspace key (no workspace id)',
      key({ workspaceId: null, workspaceName: null }),
      'default',
      '2026-07-30T12:00:00.000Z',
    ],
    ['workspace named by name', key(research), 'workspace Research', '2026-05-31T12:00:00.000Z'],
    [
      'workspace named by id',
      key({ workspaceId: 'wrkspc_01Batch', workspaceName: 'Batch jobs' }),
      'workspace wrkspc_01Batch',
      '2026-06-30T12:00:00.000Z',
    ],
    [
      'workspace names match exactly (case counts)',
      key({ workspaceName: 'research' }),
      'default',
      '2026-07-30T12:00:00.000Z',
    ],
    [
      'key glob on the name beats the workspace override above it',
      key({ ...research, name: 'ci-deploy' }),
      'override key ci-*',
      '2026-05-15T12:00:00.000Z',
    ],
    [
      'first matching key override in file order wins',
      key({ name: 'ci-nightly' }),
      'override key ci-*',
      '2026-05-15T12:00:00.000Z',
    ],
    [
      'key override naming the id',
      key({ id: 'apikey_01Pinned' }),
      'override key apikey_01Pinned',
      '2026-10-28T12:00:00.000Z',
    ],
    ['glob does not match a longer name', key({ name: 'prod-ci-deploy' }), 'default', '2026-07-30T12:00:00.000Z'],
    [
      'exemption by name glob beats key and workspace overrides',
      key({ ...research, name: 'vendor-ci' }),
      'exemption until 2026-07-01',
      null,
    ],
    [
      'exemption by id on its last day still holds',
      key({ id: 'apikey_01LastDay' }),
      'exemption until 2026-06-15',
      null,
    ],
    [
      'exemption that ended is ignored',
      key({ id: 'apikey_01Lapsed', ...research }),
      'workspace Research',
      '2026-05-31T12:00:00.000Z',
    ],
    [
      'expires_at before the max age is the deadline',
      key({ expiresAt: new Date('2026-06-20T00:00:00Z') }),
      'expires_at',
      '2026-06-20T00:00:00.000Z',
    ],
    [
      'expires_at after the max age changes nothing',
      key({ ...research, expiresAt: new Date('2026-12-31T00:00:00Z') }),
      'workspace Research',
      '2026-05-31T12:00:00.000Z',
    ],
    [
      'exempt key still has its own expiry as deadline',
      key({ name: 'vendor-sync', expiresAt: new Date('2026-06-20T00:00:00Z') }),
      'expires_at',
      '2026-06-20T00:00:00.000Z',
    ],
  ])('%s → %s', (_case, k, source, deadline) => {
    const r = resolveDeadline(k, policy, NOW);
    expect(describePolicySource(r.source)).toBe(source);
    expect(r.deadline?.toISOString() ?? null).toBe(deadline);
  });

  it('an exempt key carries the exemption reason and end for the table', () => {
    const r = resolveDeadline(key({ name: 'vendor-sync' }), policy, NOW);
    expect(r.source).toEqual({
      kind: 'exemption',
      key: 'vendor-*',
      until: '2026-07-01',
      reason: 'vendor rotates with us in July',
    });
  });

  it('an exemption stops holding at midnight UTC after its last day', () => {
    const k = key({ id: 'apikey_01LastDay' });
    expect(resolveDeadline(k, policy, new Date('2026-06-15T23:59:59Z')).deadline).toBeNull();
    expect(resolveDeadline(k, policy, new Date('2026-06-16T00:00:00Z')).deadline?.toISOString()).toBe(
      '2026-07-30T12:00:00.000Z',
    );
  });

  it('expires_at remembers which max-age rule it beat', () => {
    const r = resolveDeadline(key({ ...research, expiresAt: new Date('2026-05-10T00:00:00Z') }), policy, NOW);
    expect(r.source).toMatchObject({ kind: 'expires_at', instead: { kind: 'workspace_override', maxAgeDays: 30 } });
  });

  it('the organization default follows max_age_days', () => {
    const strict = policySchema.parse({ rotation: { max_age_days: 30 } }).rotation;
    expect(resolveDeadline(key(), strict, NOW).deadline?.toISOString()).toBe('2026-05-31T12:00:00.000Z');
  });
});
