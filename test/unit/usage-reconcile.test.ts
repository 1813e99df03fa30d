import { describe, expect, it } from 'vitest';
import { usdToPico } from '../../src/money.ts';
import { compareCosts } from '../../src/usage/core/reconcile.ts';

const usd = (s: string) => usdToPico(s);
const day = '2026-11-16';

describe('compareCosts', () => {
  it.each([
    ['equal to the picodollar', '100', '100', false],
    ['2% exactly is within tolerance', '100', '102', false],
    ['just over 2% above', '100', '102.01', true],
    ['just over 2% below', '100', '97.99', true],
    ['priced usage the report does not know', '0', '0.01', true],
    ['nothing on either side', '0', '0', false],
  ])('%s', (_name, reported, priced, drifted) => {
    const [row] = compareCosts(
      [{ day, workspaceId: 'wrkspc_a', pico: usd(reported) }],
      [{ day, workspaceId: 'wrkspc_a', pico: usd(priced) }],
    );
    expect(row!.drifted).toBe(drifted);
    expect(row!.priced - row!.reported).toBe(usd(priced) - usd(reported));
  });

  it('compares each workspace and day on its own, the Default Workspace (null) included', () => {
    const rows = compareCosts(
      [
        { day, workspaceId: null, pico: usd('10') },
        { day, workspaceId: 'wrkspc_a', pico: usd('5') },
      ],
      [
        { day, workspaceId: null, pico: usd('10') },
        { day: '2026-11-17', workspaceId: 'wrkspc_a', pico: usd('5') },
      ],
    );
    expect(rows.map((r) => [r.day, r.workspaceId, r.drifted])).toEqual([
      [day, null, false],
      [day, 'wrkspc_a', true],
      ['2026-11-17', 'wrkspc_a', true],
    ]);
  });
});
