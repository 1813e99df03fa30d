import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matchesGlob, singleLineName } from '../../src/glob.ts';

describe('matchesGlob', () => {
  it.each([
    ['ci-*', 'ci-runner', true],
    ['ci-*', 'ci-', true],
    ['ci-*', 'xci-runner', false],
    ['*-prod', 'api-prod', true],
    ['*-prod', 'api-prod-2', false],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['a?c', 'abbc', false],
    ['*', '', true],
    ['', '', true],
    ['', 'x', false],
    ['usage.*', 'usage.runaway', true],
    ['usage.*', 'usageXrunaway', false],
    ['a.b', 'aXb', false],
    ['(x)+[y]', '(x)+[y]', true],
    ['*a*b*c', 'xxaxxbxxc', true],
    ['*a*b*c', 'xxaxxcxxb', false],
    ['**', 'anything', true],
    ['?*?', 'ab', true],
    ['?*?', 'a', false],
  ])('%s against %s → %s', (glob, value, expected) => {
    expect(matchesGlob(glob, value)).toBe(expected);
  });

  it('agrees with an anchored regular expression on random globs and values', () => {
    const alphabet = fc.constantFrom('a', 'b', '*', '?');
    const value = fc.string({ unit: fc.constantFrom('a', 'b'), maxLength: 12 });
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 8 }), value, (glob, v) => {
        const re = new RegExp(`^${glob.replaceAll('*', '.*').replaceAll('?', '.')}$`, 's');
        expect(matchesGlob(glob, v)).toBe(re.test(v));
      }),
    );
  });

  // A compiled backtracking regex took 70 s on the first of these (bench/glob.ts); this matcher is linear.
  it('answers adversarial 5,000-character names', () => {
    const name = 'a'.repeat(5_000);
    expect(matchesGlob('*a*a*b', name)).toBe(false);
    expect(matchesGlob('*a*a*a*a*a*a*a*b', name)).toBe(false);
    expect(matchesGlob('*a*a*a*a*a*a*a*a', name)).toBe(true);
  });
});

describe('singleLineName', () => {
  it.each([
    ['ci-runner', 'ci-runner'],
    ['x\nci-runner', 'x ci-runner'],
    ['ci-\r\n\r\nrunner', 'ci- runner'],
    ['tab\there', 'tab here'],
    ['esc\u001b[2Jx', 'esc [2Jx'],
    ['del\u007fx', 'del x'],
    ['c1\u0085x', 'c1 x'],
    ['line\u2028sep\u2029para', 'line sep para'],
    ['  padded  ', 'padded'],
    ['nul\uFFFDmark', 'nul\uFFFDmark'],
  ])('%j → %j', (name, expected) => {
    expect(singleLineName(name)).toBe(expected);
  });

  it('a line break cannot take a name out of a ci-* override', () => {
    expect(matchesGlob('ci-*', singleLineName('ci-deploy\nProduction Backend'))).toBe(true);
  });
});
