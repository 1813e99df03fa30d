import { describe, expect, it } from 'vitest';
import { MAX_BUCKETS } from '../../src/anthropic/client.ts';
import { nextPageBuckets } from '../../src/usage/core/window.ts';

describe('usage page size (rows per page, not buckets)', () => {
  it.each([
    ['5,000 keys, ~1,150 rows a minute', '1m', 3, 1150, 4000, 3],
    ['a small organization: grows 4× a page, not to the limit at once', '1m', 1, 8, 4000, 4],
    ['a small organization after a few pages: the whole day', '1m', 1024, 8, 4000, 500],
    ['never past the API maximum for the width', '1h', 168, 2, 4000, 168],
    ['a bucket larger than the target still makes a page', '1m', 5, 9000, 4000, 1],
    ['an empty page counts as one row a bucket', '1h', 2, 0, 4000, 8],
  ] as const)('%s', (_name, width, current, rows, target, expected) => {
    expect(nextPageBuckets(MAX_BUCKETS[width], current, rows, target)).toBe(expected);
  });
});
