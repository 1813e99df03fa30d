import type { z } from 'zod';
import { formatPath } from '../issue-path.ts';
import { knownKeysAt } from './policy.ts';

/** A schema issue as a line of the policy file's words, naming the field (`spend.thresholds[1]: ...`). */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const at = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys
      .map((key) => {
        const known = knownKeysAt(issue.path);
        const guess = closest(key, known);
        const where = at ? `${at}.${key}` : key;
        return `${where}: unknown key${guess ? ` (did you mean ${guess}?)` : known.length ? ` (known: ${known.join(', ')})` : ''}`;
      })
      .join('; ');
  }
  const where = at || '(top)';
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return `${where}: missing (required, ${article(issue.expected)})`;
    return `${where}: expected ${article(issue.expected)}, got ${describeValue(issue.input)}`;
  }
  if (issue.code === 'invalid_value') {
    return `${where}: ${JSON.stringify(issue.input)} is not one of ${issue.values.map(String).join(', ')}`;
  }
  if ((issue.code === 'too_small' || issue.code === 'too_big') && typeof issue.input === 'number') {
    // a message the schema wrote itself says more than the bound ("a limit is a positive amount of USD")
    if (!/^Too (small|big)/.test(issue.message)) return `${where}: ${issue.input}: ${issue.message}`;
    const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
    const op =
      issue.code === 'too_small' ? (issue.inclusive ? 'at least' : 'above') : issue.inclusive ? 'at most' : 'below';
    return `${where}: ${issue.input}: must be ${op} ${String(bound)}`;
  }
  return `${where}: ${issue.message}`;
}

/** `int` → `a whole number`, `object` → `a mapping`: the words of a YAML file, not of a schema. */
function article(expected: string): string {
  const words: Record<string, string> = {
    int: 'a whole number',
    number: 'a number',
    string: 'a string',
    boolean: 'true or false',
    array: 'a list',
    object: 'a mapping',
  };
  return words[expected] ?? expected;
}

/** The refused value as the file has it, cut short: `string "90d"`, `number 2.5`, `a list`, `a mapping`. */
function describeValue(value: unknown): string {
  if (value === null) return 'null (an empty value)';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date) return `a date (${value.toISOString().slice(0, 10)})`;
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value).slice(0, 40)}`;
}

/** The known key within edit distance 2, for "did you mean". */
function closest(word: string, candidates: string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
