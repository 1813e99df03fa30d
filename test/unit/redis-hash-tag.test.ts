import { describe, expect, it } from 'vitest';
import { hashTagOf } from '../../src/queue/connection.ts';

/** Redis Cluster's rule: the first `{`, the first `}` after it, and something between them; else no tag. */
describe('hashTagOf', () => {
  it('finds the tag Redis hashes a key by', () => {
    expect(hashTagOf('{keywarden}')).toBe('keywarden');
    expect(hashTagOf('acme-{kw}-prod')).toBe('kw');
    expect(hashTagOf('{a}{b}')).toBe('a');
    expect(hashTagOf('x{{y}')).toBe('{y');
  });

  it('finds none where Redis would hash the whole key', () => {
    expect(hashTagOf('keywarden')).toBeNull();
    expect(hashTagOf('{}keywarden')).toBeNull();
    expect(hashTagOf('{keywarden')).toBeNull();
    expect(hashTagOf('keywarden}')).toBeNull();
  });
});
