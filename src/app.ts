import { AdminClient } from './anthropic/client.ts';
import { type Clock, systemClock } from './clock.ts';
import { type Config, ConfigError, insecureHttpWarning } from './config/index.ts';
import type { Context, Enqueue } from './context.ts';
import { createDb, type Db } from './db/index.ts';
import { createRepos } from './db/repos/index.ts';
import type { Logger } from './log.ts';
import { createNotifier } from './notify/notifier.ts';

export interface App {
  ctx: Context;
  /** The pool under `ctx.repos`, for what checks the database itself (its schema, its role, a readiness ping). */
  db: Db;
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
  if (needs.includes('admin') && !config.env.adminKey) missing.push('ANTHROPIC_ADMIN_KEY');
  if (missing.length > 0) {
    throw new ConfigError(
      missing.map((name) => `${name} (or ${name}_FILE) is not set; \`keywarden ${command}\` needs it`),
    );
  }
}

/**
 * Builds the Context once: Postgres, the Admin API client, the notifier. `close()` tears them down in order. The
 * caller brings `enqueue`: the worker and the CLI own the Redis connection their queues live on.
 */
export function buildApp(config: Config, opts: { log: Logger; clock?: Clock; command: string; enqueue: Enqueue }): App {
  requireEnv(config, ['database', 'admin'], opts.command);
  for (const use of config.env.insecureHttp) opts.log.warn({ variable: use.variable }, insecureHttpWarning(use));
  const db: Db = createDb(config.env.databaseUrl!);
  const admin = new AdminClient({
    clock: opts.clock ?? systemClock,
    baseUrl: config.env.anthropicBaseUrl,
    adminKey: config.env.adminKey!,
    log: opts.log.child({ component: 'admin-api' }),
  });
  const notifier = createNotifier(config, opts.log);
  const ctx: Context = {
    config,
    repos: createRepos(db),
    admin,
    notifier,
    clock: opts.clock ?? systemClock,
    log: opts.log,
    enqueue: opts.enqueue,
  };
  return {
    ctx,
    db,
    close: async () => {
      await notifier.close();
      await db.destroy();
    },
  };
}
