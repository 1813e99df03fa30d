import { describe, expect, it } from 'vitest';
import { usdToPico } from '../../src/money.ts';
import { buildScopes } from '../../src/spend/core/scopes.ts';

const clock = {
  asOf: new Date('2026-11-10T12:00:00Z'),
  today: '2026-11-10',
  monthStart: '2026-11-01',
  fractionElapsed: 0.5,
};
const cost = (date: string, workspaceId: string | null, keyId: string | null, usd: string) => ({
  date,
  workspaceId,
  keyId,
  cost: usdToPico(usd),
});
const inputs = {
  clock,
  daily: [
    cost('2026-10-30', 'wrkspc_chat', 'apikey_old', '10.000000000001'),
    cost('2026-11-01', 'wrkspc_chat', 'apikey_old', '20'),
    cost('2026-11-01', null, null, '0.5'),
    cost('2026-11-08', 'wrkspc_chat', 'apikey_new', '7'),
    cost('2026-11-10', 'wrkspc_chat', 'apikey_new', '3.25'),
  ],
  workspaces: new Map([
    ['wrkspc_chat', 'Customer chatbot'],
    ['wrkspc_idle', 'Idle'],
  ]),
  keys: new Map([
    ['apikey_old', { name: 'Production Backend', workspaceId: 'wrkspc_chat', scope: 'workspace', hint: null }],
    ['apikey_new', { name: 'Production Backend', workspaceId: 'wrkspc_chat', scope: 'workspace', hint: null }],
    ['apikey_quiet', { name: 'Quiet', workspaceId: 'wrkspc_idle', scope: 'workspace', hint: null }],
  ]),
};
const noLimits = { organization: null, workspaces: {}, keys: {} };

describe('buildScopes', () => {
  it('the organization, every workspace and key that spent, with exact month-to-date and history from its first day', () => {
    const { scopes, problems } = buildScopes(inputs, noLimits);
    expect(problems).toEqual([]);
    expect(scopes.map((s) => [s.type, s.id, s.name, s.monthToDate, s.todaySoFar])).toEqual([
      ['organization', 'organization', 'Organization', usdToPico('30.75'), usdToPico('3.25')],
      ['workspace', 'default', 'Default Workspace', usdToPico('0.5'), 0n],
      ['workspace', 'wrkspc_chat', 'Customer chatbot', usdToPico('30.25'), usdToPico('3.25')],
      ['key', 'apikey_new', 'Production Backend', usdToPico('10.25'), usdToPico('3.25')],
      ['key', 'apikey_old', 'Production Backend', usdToPico('20'), 0n],
    ]);
    const [org, , , fresh] = scopes;
    // complete days only (today is not history); a new key's history starts on its first day, not with zeros
    expect(org?.history.map((d) => d.date)).toEqual(['2026-10-30', '2026-11-01', '2026-11-08']);
    expect(fresh?.history).toEqual([{ date: '2026-11-08', usd: 7 }]);
  });

  it('applies limits named by name or id; a name shared by two keys limits each; unknown names are reported', () => {
    const { scopes, problems } = buildScopes(inputs, {
      organization: 5000,
      workspaces: { 'Default Workspace': 10, wrkspc_idle: 20, Nowhere: 30 },
      keys: { 'Production Backend': 1000.5, apikey_quiet: 5 },
    });
    expect(scopes.map((s) => [s.id, s.limit])).toEqual([
      ['organization', usdToPico('5000')],
      ['default', usdToPico('10')],
      ['wrkspc_chat', null],
      ['wrkspc_idle', usdToPico('20')], // no spend, but a limit: listed
      ['apikey_new', usdToPico('1000.5')],
      ['apikey_old', usdToPico('1000.5')],
      ['apikey_quiet', usdToPico('5')],
    ]);
    expect(problems).toEqual([
      'spend.limits.workspaces["Nowhere"]: no workspace has this name or id (yet); the limit is not applied',
      'spend.limits.keys["Production Backend"]: 2 keys have this name (apikey_old, apikey_new); the limit applies to each; name one by id to be precise',
    ]);
  });

  it('an organization-scoped key spends for the organization and itself, not for the Default Workspace', () => {
    // usage rows say no workspace (null) for it, as they say the Default Workspace; the key's scope tells them apart
    const { scopes } = buildScopes(
      {
        ...inputs,
        daily: [cost('2026-11-02', null, 'apikey_agent', '4'), cost('2026-11-02', null, 'apikey_dflt', '1')],
        keys: new Map([
          ['apikey_agent', { name: 'Agent', workspaceId: null, scope: 'organization', hint: null }],
          ['apikey_dflt', { name: 'Default key', workspaceId: null, scope: 'workspace', hint: null }],
        ]),
      },
      noLimits,
    );
    expect(scopes.map((s) => [s.type, s.id, s.workspaceName, s.monthToDate])).toEqual([
      ['organization', 'organization', null, usdToPico('5')],
      ['workspace', 'default', 'Default Workspace', usdToPico('1')],
      ['key', 'apikey_agent', '(organization)', usdToPico('4')],
      ['key', 'apikey_dflt', 'Default Workspace', usdToPico('1')],
    ]);
  });
});
