import { describe, expect, it } from 'vitest';
import {
  type PageQuery,
  parsePageQuery,
  ROTATION_GROUPS,
  rotationGroup,
  scriptJson,
  selectKeys,
} from '../../src/http/status/page.ts';
import type { KeyRow } from '../../src/rotation/key-rows.ts';

function key(name: string, over: Partial<KeyRow> = {}): KeyRow {
  return {
    id: `apikey_${name}`,
    name,
    hint: null,
    workspace: 'Research',
    scope: 'workspace',
    status: 'active',
    ageDays: 10,
    deadline: '2027-01-01',
    policy: 'default',
    stage: 'ok',
    owner: 'ana@acme.example',
    lastUsage: null,
    successor: null,
    ...over,
  };
}

const view = (over: Partial<PageQuery> = {}): PageQuery => ({
  org: null,
  workspace: null,
  sort: 'group',
  descending: false,
  ...over,
});

describe('status page: keys by rotation stage', () => {
  it.each([
    ['ok', 'fine'],
    ['due_in_14d', 'due soon'],
    ['due_in_1d', 'due soon'],
    ['overdue', 'overdue'],
    ['grace', 'overdue'],
    ['blocked', 'overdue'],
    ['hold', 'overdue'],
    ['would_deactivate', 'overdue'],
    ['deferred', 'overdue'],
    ['exempt', 'exempt'],
    ['inactive', 'not active'],
    ['archived', 'not active'],
    ['expired', 'not active'],
  ])('stage %s is in the group "%s"', (stage, group) => {
    expect(rotationGroup(stage)).toBe(group);
    expect(ROTATION_GROUPS).toContain(group);
  });

  it('sorts by group first (most urgent first), then deadline; other sorts keep that as the tie-break', () => {
    const keys = [
      key('fine-late', { deadline: '2027-03-01' }),
      key('overdue', { stage: 'overdue', deadline: '2026-10-01' }),
      key('fine-early', { deadline: '2027-01-01' }),
      key('soon', { stage: 'due_in_7d', deadline: '2026-12-12' }),
    ];
    expect(selectKeys(keys, view()).map((k) => k.name)).toEqual(['overdue', 'soon', 'fine-early', 'fine-late']);
    expect(selectKeys(keys, view({ sort: 'deadline', descending: true })).map((k) => k.name)).toEqual([
      'fine-late',
      'fine-early',
      'soon',
      'overdue',
    ]);
  });

  it('keeps keys without a deadline or a last use at the end, whichever the direction', () => {
    const keys = [
      key('a', { deadline: null }),
      key('b', { deadline: '2027-01-01' }),
      key('c', { deadline: '2026-01-01' }),
    ];
    expect(selectKeys(keys, view({ sort: 'deadline' })).map((k) => k.name)).toEqual(['c', 'b', 'a']);
    expect(selectKeys(keys, view({ sort: 'deadline', descending: true })).at(-1)?.name).toBe('a');
  });

  it('filters by workspace name, exactly', () => {
    const keys = [key('a', { workspace: 'Research' }), key('b', { workspace: 'Research 2' })];
    expect(selectKeys(keys, view({ workspace: 'Research' })).map((k) => k.name)).toEqual(['a']);
  });

  it('reads the query string; an unknown sort falls back to the default view', () => {
    expect(parsePageQuery(new URLSearchParams('sort=owner&dir=desc&workspace=R'))).toEqual({
      org: null,
      workspace: 'R',
      sort: 'owner',
      descending: true,
    });
    expect(parsePageQuery(new URLSearchParams('sort=%22%3E%3Cscript%3E&workspace='))).toEqual(view());
  });
});

describe('status page: the chart data block', () => {
  it('cannot close its <script> element or open a comment, whatever a name holds, and parses back', () => {
    const value = { name: '</script><script>alert(1)</script><!-- \u2028 & >' };
    const json = scriptJson(value);
    expect(json).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(json)).toEqual(value);
  });
});
