import { describe, expect, it } from 'vitest';
import { policySchema } from '../../src/config/policy.ts';
import { unmatchedReferences } from '../../src/config/references.ts';
import { usdToPico } from '../../src/money.ts';
import { routeAlert } from '../../src/notify/routing.ts';
import { resolveDeadline } from '../../src/rotation/core/policy.ts';
import type { KeyState } from '../../src/rotation/core/types.ts';
import { buildScopes } from '../../src/spend/core/scopes.ts';

const NOW = new Date('2026-06-15T09:00:00Z');
const CREATED = new Date('2026-05-01T12:00:00Z');

function key(over: Partial<KeyState> = {}): KeyState {
  return {
    id: 'apikey_01Plain',
    name: 'Production Backend',
    status: 'active',
    workspaceId: 'wrkspc_01Prod',
    workspaceName: 'Production',
    scope: 'workspace',
    createdAt: CREATED,
    expiresAt: null,
    createdByUserId: 'user_01Alice',
    ownerEmail: 'alice@acme.com',
    partialKeyHint: 'sk-ant-api03-R2D...igAA',
    ...over,
  };
}

const rotation = policySchema.parse({
  rotation: {
    overrides: [
      { key: 'ci-*', max_age_days: 14 },
      { workspace: 'wrkspc_01Batch', max_age_days: 60 },
    ],
    exemptions: [{ key: 'apikey_01Vendor', until: '2026-12-31', reason: 'vendor rotates with us' }],
  },
}).rotation;

describe('organization-controlled names do not override the policy', () => {
  it('a key named like an exempt key’s id is not exempt', () => {
    expect(resolveDeadline(key({ id: 'apikey_01Vendor' }), rotation, NOW).source.kind).toBe('exemption');
    expect(resolveDeadline(key({ name: 'apikey_01Vendor' }), rotation, NOW).source.kind).toBe('default');
  });

  it('a line break (or any control character) in a name does not take it out of a ci-* override', () => {
    for (const name of ['ci-deploy', 'ci-deploy\nnot ci', 'ci-\r\ndeploy', 'ci-\u001b[2Jdeploy', ' ci-\u200bdeploy']) {
      expect(resolveDeadline(key({ name }), rotation, NOW).source, JSON.stringify(name)).toMatchObject({
        kind: 'key_override',
        pattern: 'ci-*',
      });
    }
  });

  it('a workspace named like an overridden workspace’s id does not get its override', () => {
    expect(resolveDeadline(key({ workspaceId: 'wrkspc_01Batch' }), rotation, NOW).source.kind).toBe(
      'workspace_override',
    );
    expect(
      resolveDeadline(key({ workspaceId: 'wrkspc_01Other', workspaceName: 'wrkspc_01Batch' }), rotation, NOW).source
        .kind,
    ).toBe('default');
  });

  it('a key named like a limited key’s id does not take its spend limit', () => {
    const { scopes } = buildScopes(
      {
        clock: { asOf: NOW, today: '2026-06-15', monthStart: '2026-06-01', fractionElapsed: 0.5 },
        daily: [{ date: '2026-06-10', workspaceId: 'wrkspc_01Prod', keyId: 'apikey_01Evil', cost: usdToPico('1') }],
        workspaces: new Map([['wrkspc_01Prod', 'Production']]),
        keys: new Map([
          ['apikey_01Evil', { name: 'apikey_01Gone', workspaceId: 'wrkspc_01Prod', scope: 'workspace', hint: null }],
        ]),
      },
      { organization: null, workspaces: {}, keys: { apikey_01Gone: 100 } },
    );
    expect(scopes.find((s) => s.id === 'apikey_01Evil')?.limit).toBeNull();
  });

  it('a workspace named like a routed workspace’s id does not take its route', () => {
    const routes = policySchema.parse({
      routes: [
        { match: { workspace: 'wrkspc_01Secret' }, slack: ['#secret'] },
        { match: {}, slack: ['#all'] },
      ],
    }).routes;
    const alert = { kind: 'usage.runaway' as const, severity: 'warning' as const, keyOwnerEmail: null };
    const to = (workspaceId: string, workspaceName: string) =>
      routeAlert({ ...alert, workspaceId, workspaceName }, routes).targets.map((t) => t.target);
    expect(to('wrkspc_01Secret', 'Secret')).toEqual(['#secret']);
    expect(to('wrkspc_01Evil', 'wrkspc_01Secret')).toEqual(['#all']);
  });
});

describe('unmatchedReferences', () => {
  const policy = policySchema.parse({
    rotation: {
      overrides: [
        { key: 'ci-*', max_age_days: 14 },
        { key: 'nightly-*', max_age_days: 14 },
        { workspace: 'Research', max_age_days: 30 },
      ],
      exemptions: [{ key: 'apikey_01Gone', until: '2026-12-31', reason: 'vendor' }],
    },
    spend: { limits: { workspaces: { 'Customer chatbot': 100, Research: 50 }, keys: { 'Production Backend': 10 } } },
    routes: [{ match: { workspace: 'Customer chatbot' }, slack: ['#chat'] }],
  });
  const inventory = {
    keys: [
      { id: 'apikey_01Ci', name: 'ci-\nrunner' },
      { id: 'apikey_01Prod', name: 'Production Backend' },
      // named like the exempt key's id: it does not keep the exemption matched
      { id: 'apikey_01Evil', name: 'apikey_01Gone' },
    ],
    workspaces: [
      { id: 'wrkspc_01Res', name: 'Research' },
      // "Customer chatbot" renamed
      { id: 'wrkspc_01Chat', name: 'Chatbot' },
    ],
  };

  it('names each reference that matches no key or workspace', () => {
    expect(unmatchedReferences(policy, inventory).map((r) => r.path)).toEqual([
      'rotation.overrides[1].key',
      'rotation.exemptions[0].key',
      'spend.limits.workspaces["Customer chatbot"]',
      'routes[0].match.workspace',
    ]);
  });

  it('nothing when every reference matches', () => {
    expect(unmatchedReferences(policySchema.parse({}), inventory)).toEqual([]);
  });
});
