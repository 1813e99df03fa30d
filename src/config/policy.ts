import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { PERMISSIONS, type Permission } from '../action-ids.ts';
import { kindPatternMatchesAny, SEVERITIES } from '../kinds.ts';
import { HOUR_MS } from '../time.ts';
import { parseDuration } from './duration.ts';

/**
 * The policy file (YAML). Field names are the file's own (snake_case) all the way into the typed Config, so a
 * name in an error message, in the README and in the code is the same name. Structural defaults are those of
 * DESIGN.md; site-specific sections (limits, routes, digests, overrides, exemptions) default to empty.
 */

const positiveInt = z.int().positive();
const nonNegativeInt = z.int().nonnegative();

const isoDate = z.union([z.string(), z.date()]).transform((v, ctx) => {
  const text = v instanceof Date ? v.toISOString().slice(0, 10) : v;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text) || Number.isNaN(Date.parse(`${text}T00:00:00Z`))) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a date (YYYY-MM-DD)` });
    return z.NEVER;
  }
  return text;
});

export const cronExpression = z.string().superRefine((expr, ctx) => {
  try {
    CronExpressionParser.parse(expr);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `"${expr}" is not a valid cron expression: ${(err as Error).message}` });
  }
});

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    ctx.addIssue({ code: 'custom', message: `${v} has no unit: write a duration like 30m, 1h, 2d` });
    return z.NEVER;
  }
  const ms = parseDuration(v);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (like 30m, 1h, 2d)` });
    return z.NEVER;
  }
  return ms;
});

const threshold = z.number().superRefine((t, ctx) => {
  if (t > 0 && t <= 1) return;
  const hint = t > 1 && t <= 100 ? `; did you mean ${t / 100}?` : '';
  ctx.addIssue({ code: 'custom', message: `${t}: a threshold is a fraction of the limit (0 < t ≤ 1)${hint}` });
});

// Limits are held to the micro-dollar (spend scopes round them so) and stored as numeric(30,12): below a millionth
// of a dollar a limit would be zero, from 10^15 up it would not fit
const usd = z
  .number()
  .positive({ error: 'a limit is a positive amount of USD per month', abort: true })
  .refine((v) => v >= 0.000001 && v < 1e15, {
    error: (issue) => `${String(issue.input)}: a limit is from 0.000001 up to (not including) 1e15 USD per month`,
  });

const slackChannel = z.string().regex(/^(#[a-z0-9][a-z0-9._-]*|[CGD][A-Z0-9]{6,})$/, {
  error: 'a Slack channel is "#name" (lowercase) or a channel id like C0123ABCD',
});

const emailTarget = z.union([z.literal('key_owner'), z.email({ error: 'not an email address (or "key_owner")' })]);

const kindPattern = z.string().refine(kindPatternMatchesAny, {
  error: (issue) =>
    `"${String(issue.input)}" matches no alert kind (kinds: rotation.*, key.orphaned, key.identity, spend.*, usage.runaway, ratelimit.headroom, pricing.unknown_model, cost.drift, keywarden.*)`,
});

const timezone = z.string().refine(
  (tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { error: (issue) => `"${String(issue.input)}" is not an IANA time zone (like UTC or Europe/Paris)` },
);

const override = z
  .strictObject({
    workspace: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    max_age_days: positiveInt,
  })
  .refine((o) => (o.workspace === undefined) !== (o.key === undefined), {
    error: 'an override names exactly one of workspace or key',
  });

const exemption = z.strictObject({
  key: z.string().min(1),
  until: isoDate,
  reason: z.string().min(1, { error: 'an exemption needs a reason' }),
});

// Slack user ids are U… (W… in an Enterprise Grid org), user-group ids S…; "*" is everyone in the workspace
const slackPresser = z.string().regex(/^(\*|[UWS][A-Z0-9]{2,})$/, {
  error: 'who may press is a Slack user id (U0123ABCD), a user-group id (S0123ABCD) or "*"',
});

/** Who may press what when the section says nothing: anyone may acknowledge or snooze, nobody may change a key. */
const DEFAULT_ALLOW: Record<Permission, string[]> = {
  acknowledge: ['*'],
  snooze: ['*'],
  mark_expected: [],
  approve_deactivation: [],
  reactivate: [],
  approve_spend_increase: [],
};

const slackActions = z
  .strictObject({
    enabled: z.boolean().default(false),
    allow: z
      .strictObject(
        Object.fromEntries(PERMISSIONS.map((p) => [p, z.array(slackPresser).default(DEFAULT_ALLOW[p])])) as Record<
          Permission,
          z.ZodDefault<z.ZodArray<typeof slackPresser>>
        >,
      )
      .prefault({}),
  })
  .prefault({});

/** A route's `repeat_every` when it sets none (4 h, Alertmanager's default repeat interval). */
export const DEFAULT_REPEAT_EVERY_MS = 4 * HOUR_MS;

// A receiver's name is the policy's own handle for it (routes name it); the outside system never sees it.
const receiverName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, {
  error: 'a receiver name is letters, digits, ".", "_" or "-" (like oncall or finance-teams)',
});

// The policy names the variable that holds a secret, never the secret: the message must not quote what was written,
// since a pasted secret is exactly what fails this check
const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, {
  error: 'names an environment variable that holds the secret (like OPS_WEBHOOK_SECRET), not the secret itself',
});

const webhookUrl = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not a URL (like https://hooks.example/keywarden)' });
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    ctx.addIssue({ code: 'custom', message: `must start with https:// (got ${url.protocol}//)` });
  } else if (url.username || url.password) {
    ctx.addIssue({
      code: 'custom',
      message: 'holds credentials (user or password): the policy file is no place for a secret; sign with secret_env',
    });
  }
});

// false: report; true: deactivate drained overdue keys; approve: ask in Slack, deactivate on an allowed Approve
const enforceMode = z.union([z.boolean(), z.literal('approve')], {
  error: (issue) =>
    `expected true, false or approve, got ${typeof issue.input} ${JSON.stringify(issue.input)?.slice(0, 40)}`,
});

const receivers = z
  .strictObject({
    pagerduty: z.record(receiverName, z.strictObject({ routing_key_env: envName })).default({}),
    webhook: z.record(receiverName, z.strictObject({ url: webhookUrl, secret_env: envName })).default({}),
    // a Workflows URL carries its own signature (`sig=`), so the whole URL is the secret
    teams: z.record(receiverName, z.strictObject({ url_env: envName })).default({}),
  })
  .prefault({});

/** The receiver kinds a route or digest can name, as the policy's `receivers:` spells them. */
export const RECEIVER_KINDS = ['pagerduty', 'webhook', 'teams'] as const;
export type ReceiverKind = (typeof RECEIVER_KINDS)[number];

const route = z.strictObject({
  match: z
    .strictObject({
      kind: kindPattern.optional(),
      severity: z.enum(SEVERITIES).optional(),
      workspace: z.string().min(1).optional(),
    })
    .prefault({}),
  slack: z.array(slackChannel).default([]),
  email: z.array(emailTarget).default([]),
  pagerduty: z.array(receiverName).default([]),
  webhook: z.array(receiverName).default([]),
  teams: z.array(receiverName).default([]),
  repeat_every: duration.default(DEFAULT_REPEAT_EVERY_MS),
  continue: z.boolean().default(false),
});

const digest = z.strictObject({
  cron: cronExpression,
  slack: z.array(slackChannel).default([]),
  email: z
    .array(z.email({ error: 'not an email address (digests go to fixed addresses; key_owner is for routes)' }))
    .default([]),
  // a FinOps pipeline wants the daily figures as data: the digest as a signed webhook payload
  webhook: z.array(receiverName).default([]),
});

// USD per million tokens, exactly as priced (src/usage/core/prices.ts turns it into whole picodollars per token)
const mtokRate = z.union([z.string(), z.number()]).refine((v) => /^\d+(\.\d{1,6})?$/.test(String(v).trim()), {
  error: 'a price is in USD per million tokens: a decimal with at most 6 places, like 3 or 0.3',
});
const priceOverride = z.strictObject({
  input: mtokRate.optional(),
  output: mtokRate.optional(),
  cache_read: mtokRate.optional(),
  cache_write_5m: mtokRate.optional(),
  cache_write_1h: mtokRate.optional(),
});

/** The sections of a policy: the file's top level, and what an `organizations:` entry may override. */
const sections = {
  organization: z.strictObject({ name: z.string().default(''), timezone: timezone.default('UTC') }).prefault({}),
  rotation: z
    .strictObject({
      max_age_days: positiveInt.default(90),
      remind_before_days: z.array(positiveInt).default([14, 7, 1]),
      grace_days: nonNegativeInt.default(7),
      enforce: enforceMode.default(false),
      drain_window_hours: z.number().positive().default(24),
      force_after_days: nonNegativeInt.nullable().default(null),
      max_deactivations_per_run: nonNegativeInt.default(5),
      overrides: z.array(override).default([]),
      exemptions: z.array(exemption).default([]),
    })
    .prefault({}),
  spend: z
    .strictObject({
      thresholds: z.array(threshold).default([0.5, 0.8, 1.0]),
      forecast: z.boolean().default(true),
      // the caps Anthropic enforces (organization, workspaces, usage tier) from the Spend Limits API, where the
      // organization has it; `limits` below adds to them or overrides their monthly amounts
      limits_from_api: z.boolean({ error: 'limits_from_api is true or false' }).default(true),
      limits: z
        .strictObject({
          organization: usd.nullable().default(null),
          workspaces: z.record(z.string(), usd).default({}),
          keys: z.record(z.string(), usd).default({}),
        })
        .prefault({}),
    })
    .prefault({}),
  anomaly: z
    .strictObject({
      min_hourly_usd: z.number().nonnegative().default(5),
      factor: z.number().gt(1, { error: 'factor must be above 1 (a multiple of the typical rate)' }).default(5),
      window_minutes: positiveInt.default(10),
      auto_deactivate: z
        .strictObject({
          enabled: z.boolean().default(false),
          min_hourly_usd: z.number().positive().default(200),
          // a deactivation cuts a production key off: at most this many per detection run and per hour
          max_per_run: nonNegativeInt.default(1),
          max_per_hour: nonNegativeInt.default(2),
          // approve: the runaway alert offers "Deactivate key" to the allowed users instead of acting alone
          mode: z.enum(['auto', 'approve']).default('auto'),
        })
        .prefault({}),
    })
    .prefault({}),
  slack_actions: slackActions,
  receivers,
  routes: z.array(route).default([]),
  digests: z.strictObject({ finance: digest.optional(), security: digest.optional() }).prefault({}),
  schedules: z.record(z.string(), cronExpression).default({}),
  // keywarden.job_failing: after this many failed runs of a job in a row, or this many of its scheduled
  // intervals without a completed run
  job_alerts: z
    .strictObject({ failed_runs: positiveInt.default(3), missed_intervals: positiveInt.default(3) })
    .prefault({}),
  // per model id: rates merged over the dated price table (a model the table lacks needs input and output)
  pricing: z.record(z.string(), priceOverride).default({}),
};

export const policySchema = z.strictObject(sections).prefault({});

/** The sections an `organizations:` entry may replace for its organization (all but `organization` itself). */
export const OVERRIDABLE_SECTIONS = Object.keys(sections).filter((k) => k !== 'organization') as Exclude<
  keyof typeof sections,
  'organization'
>[];

/** An organization's handle: its schema is `kw_<id>`, so a Postgres identifier without quoting, and stable. */
const ORGANIZATION_ID = /^[a-z][a-z0-9_]{0,30}$/;

/**
 * One entry of `organizations:`. Its own fields, then any section it replaces for that organization; those are
 * checked when the entry's policy is built (src/config/organizations.ts), with the entry's path in front.
 */
const organizationEntry = z.strictObject({
  id: z.string().regex(ORGANIZATION_ID, {
    error:
      'an organization id is a lowercase letter, then up to 30 lowercase letters, digits or "_" (like emea or bu_2)',
  }),
  name: z.string().min(1, { error: 'an organization needs a name (its messages say it)' }),
  timezone: timezone.default('UTC'),
  admin_key_env: envName.optional(),
  admin_key_file: z.string().min(1).optional(),
  base_url: z.string().optional(),
  // an existing single-organization database keeps its rows in `public`: the entry that takes them over says so
  database_schema: z.literal('public').optional(),
  ...(Object.fromEntries(OVERRIDABLE_SECTIONS.map((k) => [k, z.unknown().optional()])) as Record<
    (typeof OVERRIDABLE_SECTIONS)[number],
    z.ZodOptional<z.ZodUnknown>
  >),
});

/** The policy file: the sections, and optionally the list of organizations one deployment watches. */
export const policyFileSchema = z
  .strictObject({ ...sections, organizations: z.array(organizationEntry).min(1).optional() })
  .prefault({});

export type OrganizationEntry = z.infer<typeof organizationEntry>;

export type Policy = z.infer<typeof policySchema>;
export type RotationPolicy = Policy['rotation'];
export type SpendPolicy = Policy['spend'];
export type AnomalyPolicy = Policy['anomaly'];
export type Route = Policy['routes'][number];
export type SlackActionsPolicy = Policy['slack_actions'];
export type ReceiversPolicy = Policy['receivers'];
export type DigestPolicy = NonNullable<Policy['digests']['finance']>;

/** The schema's field names by object path, for "did you mean" on misspelt keys. */
export function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let schema: z.ZodType = policyFileSchema;
  for (const part of path) {
    schema = unwrap(schema);
    if (schema instanceof z.ZodObject) schema = (schema.shape as Record<string, z.ZodType>)[String(part)] ?? z.never();
    else if (schema instanceof z.ZodArray) schema = schema.element as z.ZodType;
    else return [];
  }
  schema = unwrap(schema);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let i = 0; i < 10; i++) {
    const def = (s as unknown as { def: { innerType?: z.ZodType; in?: z.ZodType; schema?: z.ZodType } }).def;
    const next = def.innerType ?? def.in ?? def.schema;
    if (!next) return s;
    s = next;
  }
  return s;
}
