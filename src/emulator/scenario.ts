import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatPath } from '../issue-path.ts';
import { enterpriseSpendProblems } from './enterprise-scenario.ts';
import { buildLargeScenario } from './scenarios/large.ts';
import { spendLimitProblems, spendLimitsScenarioSchema } from './spend-limits.ts';

/**
 * A scenario: the simulated organization the emulator serves. Workspaces, users, keys and their traffic, and
 * events at offsets from the scenario start (negative offsets are before it). Ages are relative to the start too,
 * so a scenario reads the same whenever it runs. Names refer to things (`workspace: Research`,
 * `created_by: ana@acme.example`), ids are generated from the seed when not given.
 *
 * ```yaml
 * name: small
 * seed: 7
 * admin_keys: [sk-ant-admin01-my-local-test-key-0001]
 * freshness_delay_minutes: 5
 * traffic_defaults: { models: { claude-sonnet-4-5: 1 }, daily_amplitude: 0.5, noise: 0.2 }
 * workspaces: [{ name: Research, age_days: 200 }]
 * users: [{ name: Ana, email: ana@acme.example, role: developer, workspaces: { Research: workspace_developer } }]
 * keys:
 *   - { name: research-batch, workspace: Research, created_by: ana@acme.example, age_days: 120,
 *       traffic: { tokens_per_minute: 20000, batch_share: 0.5 } }
 *   - { name: research-v2, workspace: Research, created_by: ana@acme.example }
 * events:
 *   - { type: key_created, key: research-v2, at_minutes: -60 }
 *   - { type: migration, from: research-batch, to: research-v2, at_minutes: 0, ramp_minutes: 120 }
 *   - { type: runaway, key: research-v2, at_minutes: 30, factor: 20, duration_minutes: 15 }
 * ```
 */

export const BUILT_IN_SCENARIOS = ['demo', 'quiet', 'large'] as const;

/** Which response shapes the emulator serves: by `anthropic-version`, or one set under every version. */
export const API_SHAPES = ['by_version', 'classic', '2026'] as const;
export type ApiShape = (typeof API_SHAPES)[number];

/** The admin key a scenario accepts when it names none. Not a secret: it only opens the local emulator. */
export const DEFAULT_EMULATOR_ADMIN_KEY = 'sk-ant-admin01-keywarden-emulator-local-only-0000';

const share = z.number().min(0).max(1);

/** A key's traffic; every field optional here, completed from `traffic_defaults` and TRAFFIC_DEFAULTS. */
const trafficSchema = z.strictObject({
  /** Mean input-side tokens (uncached + cache reads + cache writes) per minute, on a weekday. */
  tokens_per_minute: z.number().nonnegative().optional(),
  /** Model id → weight (normalised); or one model id. */
  models: z.union([z.string(), z.record(z.string(), z.number().positive())]).optional(),
  /** Share of minutes with any traffic (bursty and idle-most-of-the-time keys); the mean is kept. */
  active_share: z.number().gt(0).max(1).optional(),
  /** Daily cycle: 0 flat, 1 from nothing at night to double at the peak. */
  daily_amplitude: share.optional(),
  peak_hour_utc: z.number().min(0).lt(24).optional(),
  /** Multiplier on Saturdays and Sundays (UTC). */
  weekend_factor: z.number().min(0).optional(),
  /** Standard deviation of the log of the per-minute noise (lognormal, mean 1). */
  noise: z.number().min(0).max(2).optional(),
  batch_share: share.optional(),
  /** Share of traffic in requests over 200k input tokens (`context_window: "200k-1M"`). */
  long_context_share: share.optional(),
  cache_read_ratio: share.optional(),
  cache_write_5m_ratio: share.optional(),
  cache_write_1h_ratio: share.optional(),
  /** Output tokens per input-side token. */
  output_ratio: z.number().min(0).optional(),
  web_search_per_minute: z.number().min(0).optional(),
  /**
   * Models whose requests from this key are blocked: the usage reports their tokens, the cost (classic and
   * analytics) bills nothing for them (a reported case: keywarden must not take that for a price drift).
   */
  blocked_models: z.array(z.string()).optional(),
  /** Changes this key's noise without touching any other key's. */
  seed: z.int().optional(),
});

export type TrafficInput = z.output<typeof trafficSchema>;

/** The traffic of a key after defaults: what traffic.ts compiles. */
export interface TrafficSpec {
  tokens_per_minute: number;
  models: Record<string, number>;
  active_share: number;
  daily_amplitude: number;
  peak_hour_utc: number;
  weekend_factor: number;
  noise: number;
  batch_share: number;
  long_context_share: number;
  cache_read_ratio: number;
  cache_write_5m_ratio: number;
  cache_write_1h_ratio: number;
  output_ratio: number;
  web_search_per_minute: number;
  blocked_models: string[];
  seed: number;
}

export const TRAFFIC_DEFAULTS: Omit<TrafficSpec, 'models'> = {
  tokens_per_minute: 0,
  active_share: 1,
  daily_amplitude: 0.5,
  peak_hour_utc: 16,
  weekend_factor: 0.4,
  noise: 0.2,
  batch_share: 0,
  long_context_share: 0,
  cache_read_ratio: 0.3,
  cache_write_5m_ratio: 0.05,
  cache_write_1h_ratio: 0,
  output_ratio: 0.2,
  web_search_per_minute: 0,
  blocked_models: [],
  seed: 0,
};

const limitValues = z.record(z.string(), z.number().nonnegative());

const rateLimitGroupSchema = z.strictObject({
  group_type: z.string(),
  models: z.array(z.string()).nullable().default(null),
  /** A model group's name for people, in 2026 shapes (`group.display_name`); default from its first model. */
  display_name: z.string().optional(),
  /** Limiter type → value, e.g. `{ requests_per_minute: 4000, output_tokens_per_minute: 400000 }`. */
  limits: limitValues,
});

export type RateLimitGroup = z.output<typeof rateLimitGroupSchema>;

const id = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[A-Za-z0-9]+$`), { error: `an id like ${prefix}_01…` });

const workspaceSchema = z.strictObject({
  name: z.string().min(1),
  id: id('wrkspc').optional(),
  age_days: z.number().min(0).default(365),
  /** Archived this many days before the start (its keys are archived with it). */
  archived_days_ago: z.number().min(0).nullable().default(null),
  display_color: z.string().default('#6a5acd'),
  /** Lower-than-organization limits for this workspace. */
  rate_limits: z.array(rateLimitGroupSchema).default([]),
});

const userSchema = z.strictObject({
  name: z.string().min(1),
  email: z.string().min(3),
  id: id('user').optional(),
  role: z.string().default('developer'),
  age_days: z.number().min(0).default(365),
  /** Workspace name → workspace role. Admins are workspace_admin everywhere without listing. */
  workspaces: z.record(z.string(), z.string()).default({}),
});

const keySchema = z.strictObject({
  name: z.string().min(1).max(500),
  id: id('apikey').optional(),
  /** Workspace name or id; null or absent: the Default Workspace. */
  workspace: z.string().nullable().default(null),
  /** A user's email or id, or a service account's id (`svac_…`); null: a key without a recorded creator. */
  created_by: z.string().nullable().default(null),
  /**
   * Who the key acts as, in 2026 shapes: a user's email or id (`user_actor`) or a service account's id
   * (`service_account_actor`); null: a plain workspace key.
   */
  principal: z.string().nullable().default(null),
  /** `organization`: a principal-bound key in no workspace (needs `principal`, no `workspace`). */
  scope: z.enum(['workspace', 'organization']).default('workspace'),
  /** Created this many days before the start (ignored when a key_created event dates it). */
  age_days: z.number().min(0).default(30),
  status: z.enum(['active', 'inactive', 'archived']).default('active'),
  /** Expires this many days after the start (negative: already expired); null: never. */
  expires_in_days: z.number().nullable().default(null),
  traffic: trafficSchema.optional(),
});

/**
 * A workload that calls the API through workload-identity federation: short-lived OAuth tokens, no API key. Its
 * usage has no key and only the analytics API names it (`federated_actor` with its `subject`).
 */
const federatedSchema = z.strictObject({
  /** The federation rule's subject (organization-controlled text, e.g. a CI job's OIDC subject). */
  subject: z.string().min(1).max(500),
  /** Workspace name or id; null or absent: the Default Workspace. */
  workspace: z.string().nullable().default(null),
  /** Calls from this many days before the start. */
  age_days: z.number().min(0).default(30),
  traffic: trafficSchema.optional(),
});

const inviteSchema = z.strictObject({
  email: z.string().min(3),
  role: z.string().default('developer'),
  status: z.enum(['pending', 'accepted', 'expired']).default('pending'),
  /** Sent this many days before the start; invites expire 21 days after. */
  invited_days_ago: z.number().min(0).default(1),
});

const offset = z.number().int();

const eventSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('runaway'),
    key: z.string(),
    at_minutes: offset,
    factor: z.number().positive(),
    duration_minutes: z.int().positive(),
    /** A slow ramp: the multiple rises linearly from 1 to `factor` over these minutes, then holds (0: a step). */
    ramp_minutes: z.int().nonnegative().default(0),
  }),
  z.strictObject({ type: z.literal('key_created'), key: z.string(), at_minutes: offset }),
  z.strictObject({ type: z.literal('user_removed'), user: z.string(), at_minutes: offset }),
  z.strictObject({
    type: z.literal('key_status'),
    key: z.string(),
    at_minutes: offset,
    status: z.enum(['active', 'inactive', 'archived']),
  }),
  z.strictObject({
    type: z.literal('migration'),
    from: z.string(),
    to: z.string(),
    at_minutes: offset,
    ramp_minutes: z.int().positive(),
    /** Share of the old key's traffic that moves in the end. */
    share: z.number().gt(0).max(1).default(1),
  }),
]);

export type ScenarioEvent = z.output<typeof eventSchema>;

const priceOverrideSchema = z.strictObject({
  input: z.union([z.string(), z.number()]).optional(),
  output: z.union([z.string(), z.number()]).optional(),
  cache_read: z.union([z.string(), z.number()]).optional(),
  cache_write_5m: z.union([z.string(), z.number()]).optional(),
  cache_write_1h: z.union([z.string(), z.number()]).optional(),
});

/** What an organization on a standard tier sees; a scenario may replace it. */
const DEFAULT_RATE_LIMITS: RateLimitGroup[] = [
  {
    group_type: 'model_group',
    models: ['claude-opus-4-7', 'claude-opus-4-6', 'claude-opus-4-5'],
    limits: { requests_per_minute: 4000, input_tokens_per_minute: 2_000_000, output_tokens_per_minute: 400_000 },
  },
  {
    group_type: 'model_group',
    models: ['claude-sonnet-4-6', 'claude-sonnet-4-5', 'claude-sonnet-4'],
    limits: { requests_per_minute: 4000, input_tokens_per_minute: 2_000_000, output_tokens_per_minute: 400_000 },
  },
  {
    group_type: 'model_group',
    models: ['claude-haiku-4-5', 'claude-3-5-haiku'],
    limits: { requests_per_minute: 4000, input_tokens_per_minute: 4_000_000, output_tokens_per_minute: 800_000 },
  },
  { group_type: 'batch', models: null, limits: { enqueued_batch_requests: 500_000 } },
  { group_type: 'web_search', models: null, limits: { tool_uses_per_second: 30 } },
];

const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  seed: z.int().default(1),
  organization: z.strictObject({ name: z.string().min(1), id: z.uuid().optional() }).default({ name: 'Emulated Org' }),
  admin_keys: z
    .array(z.string().startsWith('sk-ant-admin', { error: 'an admin key starts with sk-ant-admin' }))
    .min(1)
    .default([DEFAULT_EMULATOR_ADMIN_KEY]),
  /** Usage of minute m is visible from m + 1 minute + this delay. */
  freshness_delay_minutes: z.number().min(0).default(0),
  /**
   * Response shapes. `by_version`: classic shapes under `anthropic-version: 2023-06-01`, the SDK's (1.16.0) under
   * `2026-10-21`. `classic` or `2026`: those shapes whatever the version (an API that answers 2023-06-01 clients
   * with the new shapes, or the reverse).
   */
  api_shape: z.enum(API_SHAPES).default('by_version'),
  /** The Default Workspace's real id, as 2026 shapes and `include_default=true` show it; default from the seed. */
  default_workspace_id: id('wrkspc').optional(),
  /**
   * The Usage and Cost Analytics API (beta): `available`, or `refused` with a 403 for every request, as for an
   * organization without access (keywarden then falls back to the classic cost report).
   */
  analytics_api: z.enum(['available', 'refused']).default('available'),
  /** Prices for models the table lacks (or to change one), merged into the built-in table. */
  prices: z.record(z.string(), priceOverrideSchema).default({}),
  rate_limits: z.array(rateLimitGroupSchema).default(DEFAULT_RATE_LIMITS),
  traffic_defaults: trafficSchema.default({}),
  workspaces: z.array(workspaceSchema).default([]),
  users: z.array(userSchema).default([]),
  keys: z.array(keySchema).default([]),
  federated: z.array(federatedSchema).default([]),
  invites: z.array(inviteSchema).default([]),
  events: z.array(eventSchema).default([]),
  /** The Spend Limits API's answers (spend-limits.ts). */
  spend_limits: spendLimitsScenarioSchema,
});

export type Scenario = z.output<typeof scenarioSchema>;
export type ScenarioKey = Scenario['keys'][number];

export class ScenarioError extends Error {
  readonly problems: string[];

  constructor(source: string, problems: string[]) {
    super(`scenario ${source}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ScenarioError';
    this.problems = problems;
  }
}

/** The key's traffic after `traffic_defaults` and the built-in defaults. */
export function resolveTraffic(scenario: Scenario, key: Pick<ScenarioKey, 'traffic'>): TrafficSpec {
  const merged = { ...TRAFFIC_DEFAULTS, ...scenario.traffic_defaults, ...key.traffic };
  const models = typeof merged.models === 'string' ? { [merged.models]: 1 } : (merged.models ?? {});
  return { ...merged, models };
}

/** Cross-references and rules a schema cannot say: names that exist, one creation per key, ratios that fit. */
function checkReferences(s: Scenario): string[] {
  const problems: string[] = [];
  const unique = (what: string, values: string[]) => {
    const seen = new Set<string>();
    values.forEach((v, i) => {
      if (seen.has(v)) problems.push(`${what}[${i}]: "${v}" appears twice`);
      seen.add(v);
    });
  };
  unique(
    'workspaces',
    s.workspaces.map((w) => w.name),
  );
  unique(
    'users',
    s.users.map((u) => u.email),
  );
  unique(
    'keys',
    s.keys.map((k) => k.name),
  );
  unique(
    '(ids)',
    [...s.workspaces, ...s.users, ...s.keys].flatMap((x) => (x.id ? [x.id] : [])),
  );

  const workspaces = new Set(s.workspaces.flatMap((w) => [w.name, ...(w.id ? [w.id] : [])]));
  const users = new Set(s.users.flatMap((u) => [u.email, ...(u.id ? [u.id] : [])]));
  const keys = new Set(s.keys.flatMap((k) => [k.name, ...(k.id ? [k.id] : [])]));
  const known = (set: Set<string>, value: string, where: string, what: string) => {
    if (!set.has(value)) problems.push(`${where}: "${value}" is not a ${what} of this scenario`);
  };

  s.users.forEach((u, i) => {
    for (const ws of Object.keys(u.workspaces)) known(workspaces, ws, `users[${i}].workspaces`, 'workspace');
  });
  s.keys.forEach((k, i) => {
    if (k.workspace !== null) known(workspaces, k.workspace, `keys[${i}].workspace`, 'workspace');
    if (k.created_by !== null && !k.created_by.startsWith('svac_')) {
      known(users, k.created_by, `keys[${i}].created_by`, 'user (email or id) or service account (svac_…)');
    }
    if (k.principal !== null && !k.principal.startsWith('svac_')) {
      known(users, k.principal, `keys[${i}].principal`, 'user (email or id) or service account (svac_…)');
    }
    if (k.scope === 'organization' && (k.principal === null || k.workspace !== null)) {
      problems.push(`keys[${i}].scope: an organization-scoped key needs a principal and no workspace`);
    }
    const traffic = resolveTraffic(s, k);
    const cache = traffic.cache_read_ratio + traffic.cache_write_5m_ratio + traffic.cache_write_1h_ratio;
    if (cache > 1) problems.push(`keys[${i}].traffic: cache ratios add up to ${cache}, more than 1`);
    if (traffic.tokens_per_minute > 0 && Object.keys(traffic.models).length === 0) {
      problems.push(`keys[${i}].traffic.models: required when tokens_per_minute > 0 (here or in traffic_defaults)`);
    }
  });
  s.federated.forEach((f, i) => {
    if (f.workspace !== null) known(workspaces, f.workspace, `federated[${i}].workspace`, 'workspace');
    const traffic = resolveTraffic(s, f);
    if (traffic.tokens_per_minute > 0 && Object.keys(traffic.models).length === 0) {
      problems.push(
        `federated[${i}].traffic.models: required when tokens_per_minute > 0 (here or in traffic_defaults)`,
      );
    }
  });
  unique(
    'federated',
    s.federated.map((f) => f.subject),
  );
  const created = new Map<string, number>();
  const incoming = new Set<string>();
  s.events.forEach((e, i) => {
    const where = `events[${i}]`;
    if (e.type === 'user_removed') known(users, e.user, `${where}.user`, 'user (email or id)');
    else if (e.type === 'migration') {
      known(keys, e.from, `${where}.from`, 'key');
      known(keys, e.to, `${where}.to`, 'key');
      if (e.from === e.to) problems.push(`${where}: a key cannot migrate to itself`);
      if (incoming.has(e.to)) problems.push(`${where}.to: "${e.to}" already receives a migration`);
      incoming.add(e.to);
    } else known(keys, e.key, `${where}.key`, 'key');
    if (e.type === 'key_created') {
      if (created.has(e.key)) problems.push(`${where}: "${e.key}" is already created by events[${created.get(e.key)}]`);
      created.set(e.key, i);
    }
  });
  problems.push(...spendLimitProblems(s.spend_limits, workspaces));
  problems.push(...enterpriseSpendProblems(s.spend_limits, users));
  return problems;
}

/** Validates a scenario (already parsed from YAML or JSON). Problems name the field. */
export function parseScenario(input: unknown, source = '(inline)'): Scenario {
  const result = scenarioSchema.safeParse(input);
  if (!result.success) {
    throw new ScenarioError(
      source,
      result.error.issues.map((issue) => `${formatPath(issue.path) || '(top)'}: ${issue.message}`),
    );
  }
  const problems = checkReferences(result.data);
  if (problems.length > 0) throw new ScenarioError(source, problems);
  return result.data;
}

/** A built-in scenario by name (`demo`, `quiet`, `large`), or a YAML or JSON file. */
export function loadScenario(nameOrPath: string): Scenario {
  if (nameOrPath === 'large') return parseScenario(buildLargeScenario(), 'large (built in)');
  const builtIn = (BUILT_IN_SCENARIOS as readonly string[]).includes(nameOrPath);
  const path = builtIn ? new URL(`./scenarios/${nameOrPath}.yaml`, import.meta.url) : nameOrPath;
  const source = builtIn ? `${nameOrPath} (built in)` : nameOrPath;
  if (!builtIn && !existsSync(path)) {
    throw new ScenarioError(source, [
      `no such file, and not a built-in scenario (built in: ${BUILT_IN_SCENARIOS.join(', ')})`,
    ]);
  }
  const text = readFileSync(path, 'utf8');
  let raw: unknown;
  try {
    raw = extname(String(path)) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ScenarioError(source, [
      `not valid ${extname(String(path)) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    ]);
  }
  return parseScenario(raw, source);
}
