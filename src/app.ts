import { AdminClient } from './anthropic/client.ts';
import { type Clock, systemClock } from './clock.ts';
import {
  type Config,
  ConfigError,
  connectionSchema,
  insecureHttpWarning,
  type OrgConfig,
  orgConfig,
} from './config/index.ts';
import type { Context, Enqueue } from './context.ts';
import { createDb, type Db } from './db/index.ts';
import { createRepos } from './db/repos/index.ts';
import type { Logger } from './log.ts';
import { createNotifier } from './notify/notifier.ts';

/** One organization's part of the app: its Context (its policy, schema, admin key) and the pool under its repos. */
interface OrgApp {
  org: OrgConfig;
  ctx: Context;
  db: Db;
}

export interface App {
  /** The first organization's Context: the only one for a file with `organization:`. */
  ctx: Context;
  /** The pool under `ctx.repos`, for what checks the database itself (its schema, its role, a readiness ping). */
  db: Db;
  /** Every organization's, in the policy file's order, by id. */
  orgs: ReadonlyMap<string, OrgApp>;
  close(): Promise<void>;
}

/** The environment variables a command cannot run without; a missing one is a ConfigError naming it. */
export function requireEnv(
  config: Config,
  needs: ReadonlyArray<'database' | 'redis' | 'admin'>,
  command: string,
): void {
  const missing: string[] = [];
  if (needs.includes('database') && !config.env.databaseUrl) missing.push('DATABASE_URL');
  if (needs.includes('redis') && !config.env.redisUrl) missing.push('REDIS_URL');
  // an organizations: list has every key resolved at load; only a single organization's may be missing
  if (needs.includes('admin') && config.organizations.some((o) => o.adminKey === null)) {
    missing.push('ANTHROPIC_ADMIN_KEY');
  }
  if (missing.length > 0) {
    throw new ConfigError(
      missing.map((name) => `${name} (or ${name}_FILE) is not set; \`keywarden ${command}\` needs it`),
    );
  }
}

/**
 * Connections per organization's pool. One organization keeps the 10 it had; several get a share each, at least 3
 * (a job, its run's transaction and a scrape), and idle connections close after 30 s: an organization's runs beyond
 * its share wait for a connection (up to the pool's 10 s, then the run fails and is retried) rather than every
 * organization's pool growing with the process's job slots.
 */
function poolSize(organizations: number): number {
  return organizations === 1 ? 10 : Math.max(3, Math.ceil(10 / organizations));
}

/**
 * Builds one Context per organization, once: its Postgres schema, its Admin API client (its key, its base URL), its
 * notifier (its routes and receivers); the log is shared (a child naming the organization when there are several).
 * `close()` tears them down in order. The caller brings `enqueue` per organization: the worker and the CLI own the
 * Redis connection their queues live on, and a job enqueued by a job stays in that job's organization.
 */
export function buildApp(
  config: Config,
  opts: { log: Logger; clock?: Clock; command: string; enqueue: (organization: string) => Enqueue },
): App {
  requireEnv(config, ['database', 'admin'], opts.command);
  for (const use of config.env.insecureHttp) opts.log.warn({ variable: use.variable }, insecureHttpWarning(use));
  const several = config.organizations.length > 1;
  const orgs = new Map<string, OrgApp>();
  for (const org of config.organizations) {
    const log = several ? opts.log.child({ org: org.id }) : opts.log;
    const view = orgConfig(config, org);
    const schema = connectionSchema(org);
    const db: Db = createDb(config.env.databaseUrl!, { schema, max: poolSize(config.organizations.length) });
    const admin = new AdminClient({
      clock: opts.clock ?? systemClock,
      baseUrl: org.baseUrl,
      adminKey: org.adminKey!,
      log: log.child({ component: 'admin-api' }),
    });
    const ctx: Context = {
      config: view,
      repos: createRepos(db, schema),
      admin,
      notifier: createNotifier(view, log),
      clock: opts.clock ?? systemClock,
      log,
      enqueue: opts.enqueue(org.id),
    };
    orgs.set(org.id, { org, ctx, db });
  }
  const first = orgs.values().next().value!;
  return {
    ctx: first.ctx,
    db: first.db,
    orgs,
    close: async () => {
      for (const { ctx, db } of orgs.values()) {
        await ctx.notifier.close();
        await db.destroy();
      }
    },
  };
}
