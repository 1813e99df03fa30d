import { parseArgs } from 'node:util';
import { jobs } from '../../jobs/index.ts';
import { type App, buildApp, requireEnv } from '../app.ts';
import { parseDuration } from '../config/duration.ts';
import { type Config, loadConfig, type OrgConfig } from '../config/index.ts';
import { createLogger, type Logger } from '../log.ts';
import { openRedis } from '../queue/connection.ts';
import { closeQueues, createQueues, type Queues } from '../queue/queues.ts';
import { buildRegistry, type Registry } from '../queue/registry.ts';
import { enqueuer } from '../queue/runner.ts';

/** One `keywarden <command>`: its line in the help, its usage text, and what it does (the exit code; -1 keeps running). */
export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

/** A bad command line: exit 2 with the message, like a bad config. */
export class UsageError extends Error {}

export function parse<T extends Record<string, { type: 'string' | 'boolean' }>>(
  args: string[],
  options: T,
  positionals = 0,
): { values: { [K in keyof T]?: T[K]['type'] extends 'string' ? string : boolean }; positionals: string[] } {
  try {
    const result = parseArgs({ args, options, allowPositionals: positionals > 0, strict: true });
    if (result.positionals.length > positionals) {
      throw new UsageError(`unexpected argument "${result.positionals[positionals]}"`);
    }
    return result as never;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // node's messages name the option: "Unknown option '--foo'", "Option '--prefix <value>' argument missing"
    throw new UsageError((err as Error).message);
  }
}

export function durationArg(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value);
  if (ms === null) throw new UsageError(`--${name}: "${value}" is not a duration (like 30s, 5m)`);
  return ms;
}

export function loadCliConfig(): Config {
  return loadConfig({ knownJobs: jobs.map((j) => j.name) });
}

export function cliLogger(config: Config): Logger {
  return createLogger({ level: config.env.logLevel });
}

/** The line of `--org` in the usage of each command that reads or acts on one organization's tables. */
export const ORG_USAGE =
  "  --org <id>  the organization (its id in the policy file's organizations: list); needed when it lists several";

/**
 * Takes `--org ID` (or `--org=ID`) off a command line, so each command's own parser sees what it always saw.
 * The organization's tables are those of one schema: a command reads one organization at a time.
 */
export function takeOrg(args: readonly string[]): { org: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let org: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--org' || arg.startsWith('--org=')) {
      const value = arg === '--org' ? args[++i] : arg.slice('--org='.length);
      if (!value || value.startsWith('--')) throw new UsageError("Option '--org <id>' argument missing");
      org = value;
    } else rest.push(arg);
  }
  return { org, rest };
}

/**
 * The organization a command works on: the one `--org` names, or the only one. With several and no `--org`, a
 * UsageError (exit 2) that lists the ids: a table of one organization's keys must never be taken for another's.
 */
export function pickOrganization(config: Config, id: string | undefined): OrgConfig {
  const ids = config.organizations.map((o) => o.id).join(', ');
  if (id === undefined) {
    if (config.organizations.length === 1) return config.organizations[0]!;
    throw new UsageError(`--org: the policy file lists several organizations: name one (${ids})`);
  }
  const org = config.organizations.find((o) => o.id === id);
  if (!org) throw new UsageError(`--org: no organization "${id}" in the policy file (organizations: ${ids})`);
  return org;
}

/**
 * The Context for a command that runs job code (`run`, `keys reactivate`) in one organization (`org`, from
 * pickOrganization), with the command's own Redis connection for the queues `ctx.enqueue` feeds (a cluster's client
 * when REDIS_URL names a cluster node, as the worker's); `close()` closes both.
 */
export async function openApp(
  config: Config,
  command: string,
  prefix: string,
  org: OrgConfig = pickOrganization(config, undefined),
): Promise<App & { registry: Registry; queues: Queues }> {
  requireEnv(config, ['database', 'redis', 'admin'], command);
  const registry = buildRegistry(jobs, config.policy);
  const log = cliLogger(config);
  // a command that never enqueues (`keys reactivate`) still runs while Redis is down
  const redis = await openRedis(config.env.redisUrl!, { prefix, log, name: 'keywarden-cli', answerWithinMs: 5_000 });
  const queues = createQueues(redis, prefix);
  const app = buildApp(config, {
    log,
    command,
    enqueue: (organization) => enqueuer(registry, queues, organization),
  });
  const chosen = app.orgs.get(org.id)!;
  return {
    ctx: chosen.ctx,
    db: chosen.db,
    orgs: app.orgs,
    registry,
    queues,
    close: async () => {
      await app.close();
      await closeQueues(queues);
      redis.disconnect();
    },
  };
}
