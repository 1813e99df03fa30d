import { describe, expect, it } from 'vitest';
import { usdToPico } from '../../src/money.ts';
import { driverFields, spendDrivers } from '../../src/spend/core/drivers.ts';
import type { DriverCost } from '../../src/spend/core/inputs.ts';

const row = (
  workspaceId: string | null,
  keyId: string | null,
  model: string,
  mtd: string,
  last7: string,
  previous7: string,
): DriverCost => ({
  workspaceId,
  keyId,
  model,
  monthToDate: usdToPico(mtd),
  last7: usdToPico(last7),
  previous7: usdToPico(previous7),
});

const names = {
  workspaces: new Map([
    ['wrkspc_chat', 'Customer chatbot'],
    ['wrkspc_research', 'Research'],
  ]),
  keys: new Map([
    ['apikey_old', { name: 'Production Backend' }],
    ['apikey_new', { name: 'Production Backend' }],
    ['apikey_nb', { name: 'Notebook' }],
  ]),
};

const rows = [
  row('wrkspc_chat', 'apikey_old', 'claude-sonnet-4-5', '600', '100', '300'),
  row('wrkspc_chat', 'apikey_new', 'claude-sonnet-4-5', '300', '250', '0'),
  row('wrkspc_research', 'apikey_nb', 'claude-opus-4-1', '90', '60', '20'),
  row('wrkspc_research', 'apikey_nb', 'claude-sonnet-4-5', '10', '5', '5'),
  row(null, null, 'claude-haiku-4-5', '0.004', '0', '0'),
  // grew by $1, under 1% of the organization's $325 week before: noise, not a driver
  row('wrkspc_research', 'apikey_nb', 'claude-haiku-4-5', '0', '1', '0'),
];

describe('spendDrivers', () => {
  it('ranks the organization by workspace, key and model, by month share and by recent growth', () => {
    const fields = driverFields(spendDrivers(rows, { type: 'organization', id: 'organization' }, names));
    expect(fields).toEqual([
      {
        label: 'Top workspaces this month',
        value: 'Customer chatbot $900.00 (90%); Research $100.00 (10.0%); Default Workspace $0.00 (0.0%)',
      },
      {
        label: 'Fastest growing workspaces (last 7 days vs the 7 before)',
        value: 'Customer chatbot +$50.00 (+17%); Research +$41.00 (+164%)',
      },
      // two keys share a name (a successor): kept apart
      {
        label: 'Top keys this month',
        value: 'Production Backend $600.00 (60%); Production Backend $300.00 (30%); Notebook $100.00 (10.0%)',
      },
      {
        label: 'Fastest growing keys (last 7 days vs the 7 before)',
        value: 'Production Backend +$250.00 (new); Notebook +$41.00 (+164%)',
      },
      {
        label: 'Top models this month',
        value: 'claude-sonnet-4-5 $910.00 (91%); claude-opus-4-1 $90.00 (9.0%); claude-haiku-4-5 $0.00 (0.0%)',
      },
      {
        label: 'Fastest growing models (last 7 days vs the 7 before)',
        value: 'claude-sonnet-4-5 +$50.00 (+16%); claude-opus-4-1 +$40.00 (+200%)',
      },
    ]);
  });

  it('breaks a workspace down by its keys and models, and a key by its models', () => {
    const research = spendDrivers(rows, { type: 'workspace', id: 'wrkspc_research' }, names);
    expect(research.map((d) => [d.dimension, d.top.map((t) => [t.name, t.share])])).toEqual([
      ['key', [['Notebook', 1]]],
      [
        'model',
        [
          ['claude-opus-4-1', 0.9],
          ['claude-sonnet-4-5', 0.1],
        ],
      ],
    ]);
    const key = spendDrivers(rows, { type: 'key', id: 'apikey_old' }, names);
    expect(key.map((d) => [d.dimension, d.top.map((t) => t.name), d.growing])).toEqual([
      ['model', ['claude-sonnet-4-5'], []],
    ]);
    const fallback = spendDrivers(rows, { type: 'workspace', id: 'default' }, names);
    expect(fallback[0]?.top.map((t) => t.name)).toEqual(['no API key (Console)']);
  });

  it('an organization-scoped key is in no workspace: not a Default Workspace driver, "(organization)" among workspaces', () => {
    // usage rows say no workspace (null) for it, as they say the Default Workspace; the key's scope tells them apart
    const scoped = [
      row(null, 'apikey_agent', 'claude-sonnet-4-5', '40', '10', '10'),
      row(null, 'apikey_dflt', 'claude-sonnet-4-5', '10', '5', '5'),
    ];
    const scopedNames = {
      workspaces: names.workspaces,
      keys: new Map([
        ['apikey_agent', { name: 'Agent', scope: 'organization' }],
        ['apikey_dflt', { name: 'Default key', scope: 'workspace' }],
      ]),
    };
    const org = driverFields(spendDrivers(scoped, { type: 'organization', id: 'organization' }, scopedNames));
    expect(org[0]).toEqual({
      label: 'Top workspaces this month',
      value: '(organization) $40.00 (80%); Default Workspace $10.00 (20%)',
    });
    const dflt = driverFields(spendDrivers(scoped, { type: 'workspace', id: 'default' }, scopedNames));
    expect(dflt[0]).toEqual({ label: 'Top keys this month', value: 'Default key $10.00 (100%)' });
  });
});
