import { existsSync, readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { mergePriceOverrides, PRICE_TABLE, type PriceTable } from '../usage/core/prices.ts';
import { describeIssue } from './describe-issue.ts';
import { type EnvConfig, readEnv } from './env.ts';
import { DEFAULT_ORGANIZATION_ID, type OrgConfig, resolveOrganizations } from './organizations.ts';
import { type OrganizationEntry, type Policy, policyFileSchema } from './policy.ts';
import { type Receivers, resolveReceivers, unknownReceiverReferences } from './receivers.ts';

export { type EnvConfig, insecureHttpWarning } from './env.ts';
export { connectionSchema, DEFAULT_ORGANIZATION_ID, type OrgConfig } from './organizations.ts';
export type * from './policy.ts';
export type { Receivers } from './receivers.ts';

export interface Config {
  readonly env: EnvConfig;
  /**
   * The policy: with `organization:` (or neither key) the one organization's; with an `organizations:` list the
   * file's own sections, which each entry's policy starts from (an organization's Context sees its own here).
   */
  readonly policy: Policy;
  /** Every organization watched, each with its own policy, key and schema: one for a file with `organization:`. */
  readonly organizations: readonly OrgConfig[];
  /** The dated price table with the policy's `pricing` merged in: built and checked here, so no job fails on it. */
  readonly prices: PriceTable;
  /** The policy's named receivers (PagerDuty, webhooks, Teams) with their secrets read from the environment. */
  readonly receivers: Receivers;
  /** Where the policy came from: a file path, or "(defaults)" when no file exists at the default path. */
  readonly policySource: string;
  /** In an organization's Context (orgConfig): which organization this view is of. */
  readonly organization?: OrgConfig;
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
  const file = parsePolicyFile(text, source, problems, options.knownJobs);
  const policy = file?.policy ?? null;
  const prices = policy ? mergePriceOverrides(PRICE_TABLE, policy.pricing, 'pricing') : null;
  for (const problem of prices?.problems ?? []) problems.push(`${source}: ${problem}`);
  const receiverProblems: string[] = [];
  const receivers = policy
    ? resolveReceivers(policy.receivers, env, { allowInsecureHttp: envConfig.allowInsecureHttp }, receiverProblems)
    : null;
  for (const problem of receiverProblems) problems.push(`${source}: ${problem}`);
  if (problems.length > 0 || !file || !policy || !prices || !receivers) throw new ConfigError(problems);
  let organizations: OrgConfig[];
  let env2 = envConfig;
  if (file.entries === null) {
    organizations = [
      {
        id: DEFAULT_ORGANIZATION_ID,
        name: policy.organization.name,
        schema: 'public',
        policy,
        prices: prices.table,
        receivers,
        adminKey: envConfig.adminKey,
        baseUrl: envConfig.anthropicBaseUrl,
      },
    ];
  } else {
    const checks = (p: Policy) => policyProblems(p, options.knownJobs);
    const resolved = resolveOrganizations(file.raw, file.entries, checks, env, envConfig, source, problems);
    if (problems.length > 0) throw new ConfigError(problems);
    organizations = resolved.organizations;
    env2 = { ...envConfig, insecureHttp: [...envConfig.insecureHttp, ...resolved.insecureHttp] };
  }
  return deepFreeze({ env: env2, policy, organizations, prices: prices.table, receivers, policySource: source });
}

/**
 * The Config an organization's Context sees: its own policy, prices and receivers where a single organization's
 * would be, and itself as `organization`; the rest (environment, the list) is the deployment's.
 */
export function orgConfig(config: Config, org: OrgConfig): Config {
  return Object.freeze({
    ...config,
    policy: org.policy,
    prices: org.prices,
    receivers: org.receivers,
    organization: org,
  });
}

/** Parses policy YAML text; problems are pushed as `<source>: <path>: <what is wrong>`. */
export function parsePolicy(
  text: string,
  source: string,
  problems: string[],
  knownJobs?: readonly string[],
): Policy | null {
  return parsePolicyFile(text, source, problems, knownJobs)?.policy ?? null;
}

interface PolicyFile {
  /** The file's sections (with a list, what each entry starts from). */
  policy: Policy;
  /** The `organizations:` entries, or null for a single organization. */
  entries: OrganizationEntry[] | null;
  /** The parsed YAML, which each entry's sections are laid over. */
  raw: Record<string, unknown>;
}

function parsePolicyFile(
  text: string,
  source: string,
  problems: string[],
  knownJobs?: readonly string[],
): PolicyFile | null {
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
  if ('organization' in raw && 'organizations' in raw) {
    problems.push(
      `${source}: organization and organizations: keep one (organizations: is the list, each entry with its own name and timezone)`,
    );
    return null;
  }
  // reportInput: an error can then quote the value it refused (`got string "90d"`)
  const result = policyFileSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${source}: ${describeIssue(issue)}`);
    return null;
  }
  const { organizations: entries, ...policy } = result.data;
  const topProblems = policyProblems(policy, knownJobs);
  for (const problem of topProblems) problems.push(`${source}: ${problem}`);
  if (topProblems.length > 0) return null;
  return { policy, entries: entries ?? null, raw: raw as Record<string, unknown> };
}

/** What the schema cannot see: schedules of unknown jobs, receivers no section defines, reminders past the deadline. */
function policyProblems(policy: Policy, knownJobs?: readonly string[]): string[] {
  const problems: string[] = [];
  if (knownJobs) {
    for (const name of Object.keys(policy.schedules)) {
      if (!knownJobs.includes(name)) {
        problems.push(`schedules.${name}: no job of that name (jobs: ${knownJobs.join(', ')})`);
      }
    }
  }
  problems.push(...unknownReceiverReferences(policy));
  for (const [i, stage] of policy.rotation.remind_before_days.entries()) {
    if (stage >= policy.rotation.max_age_days) {
      problems.push(
        `rotation.remind_before_days[${i}] = ${stage}: a reminder must come before the deadline (max_age_days is ${policy.rotation.max_age_days})`,
      );
    }
  }
  return problems;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !(value.constructor?.name === 'Secret')) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
