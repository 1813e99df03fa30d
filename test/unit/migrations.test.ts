import { describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index.ts';

describe('migrations', () => {
  it('go forward only: none has a down(), since nothing runs one and a rollback is a restore plus the older image', () => {
    const withDown = Object.entries(migrations)
      .filter(([, m]) => m.down !== undefined)
      .map(([name]) => name);
    expect(withDown).toEqual([]);
  });

  it('are listed in the order of their numbers, each number once', () => {
    const names = Object.keys(migrations);
    expect(names).toEqual([...names].sort());
    const numbers = names.map((n) => n.slice(0, 3));
    expect(new Set(numbers).size).toBe(numbers.length);
  });
});
