/**
 * `npm run bench -- <name> [args]` runs bench/<name>.ts, whose `run(args)` prints its figures. Benchmarks measure
 * speed and accuracy; tests never assert on timings.
 */
import { readdirSync } from 'node:fs';

const available = readdirSync(import.meta.dirname)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();

const [name, ...args] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(
    `${name ? `no benchmark named "${name}". ` : ''}usage: npm run bench -- <name> [args]\nbenchmarks: ${available.join(', ')}`,
  );
  process.exit(2);
}
const mod = (await import(`./${name}.ts`)) as { run(args: string[]): Promise<void> };
await mod.run(args);
