import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layout rule (DESIGN.md, Layout), checked on the import graph of src/ and jobs/. Type-only and dynamic imports
 * count: they are dependencies too. A "folder" is a node: every directory on its own (src/usage, src/usage/core,
 * src/notify/dev), every file at the root of src/ on its own (app.ts, log.ts: the composition root and the leaf
 * modules), and jobs/.
 */

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * Folder-level arrows that close a cycle today, each the one arrow that runs back up in its cycle. The test fails on
 * a cycle not broken by these, and on an entry that no longer closes a cycle (delete it then).
 */
const ALLOWED_BACK_ARROWS: Record<string, string> = {};

/** What a pure core may not reach (the Biome rule in biome.json says the same for the editor). */
const ROOMS_A_CORE_MAY_NOT_IMPORT = ['src/db', 'src/anthropic', 'src/notify', 'src/queue', 'src/http'];

/** The Admin API's data shapes (types and schemas, no I/O): the data a core takes, not a way to fetch it. */
const DATA_SHAPES_A_CORE_MAY_IMPORT = ['src/anthropic/types.ts'];

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const IMPORT =
  /(?:^|[;\n])\s*(?:import|export)\s(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Every relative import of every file in src/ and jobs/, as paths from the repository root. */
function imports(): Array<{ from: string; to: string }> {
  return [...sourceFiles('src'), ...sourceFiles('jobs')].flatMap((from) =>
    [...readFileSync(join(ROOT, from), 'utf8').matchAll(IMPORT)]
      .map((m) => (m[1] ?? m[2])!)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => ({ from, to: relative(ROOT, resolve(ROOT, dirname(from), spec)) })),
  );
}

function folderOf(path: string): string {
  return path.startsWith('src/') && path.split('/').length === 2 ? path : dirname(path);
}

/** The folder graph's strongly connected components of more than one folder: each one holds a cycle. */
function cycles(edges: ReadonlySet<string>): string[][] {
  const next = new Map<string, string[]>();
  for (const edge of edges) {
    const [a, b] = edge.split(' -> ') as [string, string];
    next.set(a, [...(next.get(a) ?? []), b]);
    if (!next.has(b)) next.set(b, []);
  }
  // Tarjan's algorithm
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return found;
}

const all = imports();
const folderEdges = new Map<string, string[]>();
for (const { from, to } of all) {
  const edge = `${folderOf(from)} -> ${folderOf(to)}`;
  if (folderOf(from) !== folderOf(to)) folderEdges.set(edge, [...(folderEdges.get(edge) ?? []), `${from} -> ${to}`]);
}

function describeCycle(component: string[]): string {
  const inside = [...folderEdges].filter(([edge]) => {
    const [a, b] = edge.split(' -> ');
    return component.includes(a!) && component.includes(b!);
  });
  return inside
    .map(([edge, files]) => `${edge}   (${files[0]}${files.length > 1 ? ` and ${files.length - 1} more` : ''})`)
    .join('\n');
}

describe('the layout', () => {
  it('reads the imports (the graph is not empty, and sees type-only and dynamic imports)', () => {
    expect(all.length).toBeGreaterThan(200);
    expect(all).toContainEqual({ from: 'src/context.ts', to: 'src/config/index.ts' }); // import type
    expect(all).toContainEqual({ from: 'src/cli/emulator.ts', to: 'src/emulator/command.ts' }); // import()
  });

  it('has no folder-level import cycle beyond the allowed back arrows', () => {
    const kept = new Set([...folderEdges.keys()].filter((edge) => !(edge in ALLOWED_BACK_ARROWS)));
    expect(cycles(kept).map(describeCycle)).toEqual([]);
  });

  it.each(Object.keys(ALLOWED_BACK_ARROWS))(
    'the allowed back arrow %s still closes a cycle (else delete it)',
    (edge) => {
      const inCycle = cycles(new Set(folderEdges.keys())).some((component) => {
        const [a, b] = edge.split(' -> ');
        return component.includes(a!) && component.includes(b!);
      });
      expect(inCycle).toBe(true);
    },
  );

  it('keeps every core/ pure: no import of db, anthropic, notify, queue or http', () => {
    const offending = all.filter(
      ({ from, to }) =>
        from.split('/').includes('core') &&
        ROOMS_A_CORE_MAY_NOT_IMPORT.some((room) => to === room || to.startsWith(`${room}/`)) &&
        !DATA_SHAPES_A_CORE_MAY_IMPORT.includes(to),
    );
    expect(offending).toEqual([]);
  });

  it('lets only the CLI (the composition root) import jobs/', () => {
    const offending = all.filter(
      ({ from, to }) => to.startsWith('jobs/') && from.startsWith('src/') && !from.startsWith('src/cli/'),
    );
    expect(offending).toEqual([]);
  });
});
