import { existsSync, readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { formatPath } from '../issue-path.ts';
import { mergePriceOverrides, PRICE_TABLE, type PriceTable } from '../usage/core/prices.ts';
import { type EnvConfig, readEnv } from './env.ts';
import { knownKeysAt, type Policy, policySchema } from './policy.ts';
import { type Receivers, resolveReceivers, unknownReceiverReferences } from './receivers.ts';

export { type EnvConfig, insecureHttpWarning } from './env.ts';
export type * from './policy.ts';
export type { Receivers } from './receivers.ts';

export interface Config {
  readonly env: EnvConfig;
  readonly policy: Policy;
  /** The dated price table with the policy's `pricing` merged in: built and checked here, so no job fails on it. */
  readonly prices: PriceTable;
  /** The policy's named receivers (PagerDuty, webhooks, Teams) with their secrets read from the environment. */
  readonly receivers: Receivers;
  /** Where the policy came from: a file path, or "(defaults)" when no file exists at the default path. */
  readonly policySource: string;
}

/** Bad configuration. `problems` holds one line per problem, each naming the variable or field path. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Job names the `schedules` section may name; unknown names are errors. */
  knownJobs?: readonly string[];
}

/** Reads the environment and the policy file once, into a deep-frozen Config; throws ConfigError listing every problem. */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const envConfig = readEnv(env, problems);

  let text = '';
  let source = envConfig.configPath;
  if (existsSync(envConfig.configPath)) {
    text = readFileSync(envConfig.configPath, 'utf8');
  } else if (env.KEYWARDEN_CONFIG) {
    problems.push(`KEYWARDEN_CONFIG: no file at ${envConfig.configPath}`);
  } else {
    source = '(defaults)';
  }
  const policy = parsePolicy(text, source, problems, options.knownJobs);
  const prices = policy ? mergePriceOverrides(PRICE_TABLE, policy.pricing, 'pricing') : null;
  for (const problem of prices?.problems ?? []) problems.push(`${source}: ${problem}`);
  const receiverProblems: string[] = [];
  const receivers = policy
    ? resolveReceivers(policy.receivers, env, { allowInsecureHttp: envConfig.allowInsecureHttp }, receiverProblems)
    : null;
  for (const problem of receiverProblems) problems.push(`${source}: ${problem}`);
  if (problems.length > 0 || !policy || !prices || !receivers) throw new ConfigError(problems);
  return deepFreeze({ env: envConfig, policy, prices: prices.table, receivers, policySource: source });
}

/** Parses policy YAML text; problems are pushed as `<source>: <path>: <what is wrong>`. */
export function parsePolicy(
  text: string,
  source: string,
  problems: string[],
  knownJobs?: readonly string[],
): Policy | null {
  // prettyErrors: the errors then carry their line and column (only the first line of each message is kept)
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const line = e.linePos?.[0];
      // the position is already in front: drop the message's own "at line 2, column 1:"
      const message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      problems.push(`${source}${line ? `:${line.line}:${line.col}` : ''}: YAML: ${message}`);
    }
    return null;
  }
  const raw = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push(`${source}: the policy file must be a mapping of sections (organization, rotation, spend, …)`);
    return null;
  }
  // reportInput: an error can then quote the value it refused (`got string "90d"`)
  const result = policySchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${source}: ${describeIssue(issue)}`);
    return null;
  }
  if (knownJobs) {
    for (const name of Object.keys(result.data.schedules)) {
      if (!knownJobs.includes(name)) {
        problems.push(`${source}: schedules.${name}: no job of that name (jobs: ${knownJobs.join(', ')})`);
      }
    }
  }
  for (const problem of unknownReceiverReferences(result.data)) problems.push(`${source}: ${problem}`);
  for (const [i, stage] of result.data.rotation.remind_before_days.entries()) {
    if (stage >= result.data.rotation.max_age_days) {
      problems.push(
        `${source}: rotation.remind_before_days[${i}] = ${stage}: a reminder must come before the deadline (max_age_days is ${result.data.rotation.max_age_days})`,
      );
    }
  }
  return problems.length > 0 ? null : result.data;
}

function describeIssue(issue: z.core.$ZodIssue): string {
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

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !(value.constructor?.name === 'Secret')) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
