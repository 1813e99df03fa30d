/**
 * `npm run bench -- glob [lengths…]`: key-name globs against adversarial names (a run of one letter under a
 * pattern that almost matches), where a compiled backtracking regex takes seconds to minutes. Prints the time of
 * each match.
 */
import { matchesGlob } from '../src/glob.ts';

export async function run(args: string[]): Promise<void> {
  const lengths = args.length > 0 ? args.map(Number) : [1_000, 2_000, 5_000];
  for (const glob of ['*a*a*b', '*a*a*a*b', '*a*a*a*a*a*a*a*b', 'ci-*']) {
    for (const length of lengths) {
      const name = 'a'.repeat(length);
      const start = process.hrtime.bigint();
      const matched = matchesGlob(glob, name);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      console.log(
        `${glob.padEnd(18)} ${String(length).padStart(6)} chars: ${ms.toFixed(3)} ms (${matched ? 'match' : 'no match'})`,
      );
    }
  }
}
