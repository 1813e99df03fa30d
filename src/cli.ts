#!/usr/bin/env node
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { jobs } from '../jobs/index.ts';
import { alertsCommand } from './alerts/cli.ts';
import { buildApp, requireEnv } from './app.ts';
import { parseDuration } from './config/duration.ts';
import { type Config, ConfigError, insecureHttpWarning, loadConfig } from './config/index.ts';
import { isKeyIdReference } from './config/references.ts';
import { maskUrl } from './config/secret.ts';
import { KEY_STATUS_LOCK } from './db/advisory-lock.ts';
import { createDb, migrateToLatest, schemaProblem } from './db/index.ts';
import { createRepos } from './db/repos/index.ts';
import { blindRoutes } from './health/blind.ts';
import { formatKeyTable, keyRows } from './keys/table.ts';
import { createLogger, type Logger } from './log.ts';
import { terminalJson, terminalText } from './notify/escape.ts';
import { exitOnCrash } from './queue/crash.ts';
import { closeQueues, createQueues, DEFAULT_PREFIX } from './queue/queues.ts';
import { buildRegistry, RegistryError } from './queue/registry.ts';
import { enqueueJob, runHandler } from './queue/runner.ts';
import { planRotation } from './rotation/core/plan.ts';
import { loadRotationInputs } from './rotation/load.ts';
import { lastStatusChangeFailure, setKeyStatus } from './rotation/set-status.ts';
import { runWorker } from './worker.ts';

/** A bad command line: exit 2 with the message, like a bad config. */
class UsageError extends Error {}

const COMMANDS: Record<string, { summary: string; usage: string; run: (args: string[]) => Promise<number> }> = {
  worker: {
    summary: 'run the worker: schedules, jobs, health and metrics endpoints',
    usage: `keywarden worker [--prefix <name>] [--shutdown-timeout <duration>] [--watchdog-interval <duration>]

  --prefix             BullMQ key prefix in Redis (default ${DEFAULT_PREFIX}); replicas of one deployment share it
  --shutdown-timeout   how long SIGTERM waits for running jobs before abandoning them (default 30s)
  --watchdog-interval  how often the schedulers are checked and repaired (default 60s)`,
    run: workerCommand,
  },
  migrate: {
    summary: 'apply database migrations',
    usage:
      'keywarden migrate\n\n  Applies every pending migration to MIGRATION_DATABASE_URL (the role that owns the tables), or to\n  DATABASE_URL when it is not set; exits non-zero naming the migration that failed.',
    run: migrateCommand,
  },
  run: {
    summary: 'run one job now',
    usage: `keywarden run <job> [--once] [--prefix <name>]

  --once    run the job in this process and wait for it (no worker needed); without it, the job is enqueued for
            the worker
  jobs: ${jobs.map((j) => j.name).join(', ') || '(none)'}`,
    run: runCommand,
  },
  'check-config': {
    summary: 'validate the environment and the policy file, print the effective config with secrets masked',
    usage: 'keywarden check-config [--json]\n\n  Exit code 2 and one line per problem when anything is wrong.',
    run: checkConfigCommand,
  },
  keys: {
    summary: 'list API keys with their rotation deadline, stage, owner, last usage and successor',
    usage: `keywarden keys [--json]
       keywarden keys reactivate <key id or name> --reason "…"

  keys: reads what keywarden stored (run sync-inventory first); changes nothing.
  reactivate: sets a key active again through the Admin API (undoing a deactivation), audited.`,
    run: keysCommand,
  },
  demo: {
    summary: 'start everything on this machine (Postgres, Redis, emulator, Slack and mail sinks, worker) and watch',
    usage: `keywarden demo [--out <dir>] [--exit-after <duration>] [--exit-when-shown]

  --out              where emails (.eml, .html), the worker log and the demo's policy file go (default demo-out)
  --exit-after       stop by itself after this long (default: run until Ctrl-C)
  --exit-when-shown  stop as soon as every kind of finding has been shown (exit 1 if --exit-after comes first)
  It says "demo: everything shown" when it has; without --exit-when-shown it keeps running for you to explore.
  Uses DATABASE_URL / REDIS_URL when set; else a container runtime; else local postgres and redis-server binaries.`,
    run: async (args) => {
      const { values } = parse(args, {
        out: { type: 'string' },
        'exit-after': { type: 'string' },
        'exit-when-shown': { type: 'boolean' },
      });
      const { runDemo } = await import('./demo/run.ts').catch((err: NodeJS.ErrnoException) => {
        // its SMTP sink (smtp-server, mailparser) is a development dependency: a production install has none
        if (err.code !== 'ERR_MODULE_NOT_FOUND') throw err;
        throw new UsageError(
          `the demo needs the development dependencies (${err.message.split('\n')[0]}): run \`npm ci\` without --omit=dev`,
        );
      });
      return runDemo({
        outDir: values.out ?? 'demo-out',
        exitAfterMs: values['exit-after'] === undefined ? null : durationArg('exit-after', values['exit-after'], 0),
        exitWhenShown: values['exit-when-shown'] === true,
        say: (line) => console.log(line),
      });
    },
  },
  alerts: {
    summary: 'list alerts (firing by default) and their deliveries with state',
    usage: 'keywarden alerts [--all] [--json]\n\n  --all   resolved alerts too\n  --json  machine-readable',
    run: async (args) => {
      parse(args, { all: { type: 'boolean' }, json: { type: 'boolean' } });
      const config = loadCliConfig();
      requireEnv(config, ['database'], 'alerts');
      const db = createDb(config.env.databaseUrl!, { max: 2 });
      try {
        console.log(await alertsCommand(db, args));
        return 0;
      } finally {
        await db.destroy();
      }
    },
  },
  spend: {
    summary: 'month to date, month-end projection (p50, p90) and limit of the organization, each workspace and key',
    usage: `keywarden spend [--json]

  Reads the newest projections project-spend stored (run \`keywarden run project-spend --once\` first); changes
  nothing. Columns: limit, month to date, p50 and p90 month total, p90 as a share of the limit, and the dates the
  limit is expected to be reached on the p50 and p90 paths.
  --json  machine-readable (exact USD amounts as decimal strings)`,
    run: async (args) => {
      const { values } = parse(args, { json: { type: 'boolean' } });
      const config = loadCliConfig();
      requireEnv(config, ['database'], 'spend');
      const db = createDb(config.env.databaseUrl!, { max: 2 });
      try {
        const { spendReport, formatSpendReport } = await import('./spend/table.ts');
        const report = await spendReport(db);
        if (values.json) console.log(terminalJson(report));
        else
          console.log(
            report ? formatSpendReport(report) : 'no projections stored yet: run `keywarden run project-spend --once`',
          );
        return 0;
      } finally {
        await db.destroy();
      }
    },
  },
  emulator: {
    summary: 'serve the Admin API emulator over a scenario',
    usage: 'keywarden emulator --scenario <file|name> --port <p>   (see `keywarden emulator --help`)',
    run: async (args) => {
      const { runEmulatorCommand } = await import('./emulator/command.ts');
      return runEmulatorCommand(args);
    },
  },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return `keywarden: watches an Anthropic organization through the Admin API

Usage: keywarden <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  .join('\n')}

Run \`keywarden <command> --help\` for a command's options. Configuration: environment variables (DATABASE_URL,
REDIS_URL, ANTHROPIC_ADMIN_KEY, …) and the policy file named by KEYWARDEN_CONFIG (default ./keywarden.yaml).`;
}

function parse<T extends Record<string, { type: 'string' | 'boolean' }>>(
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

function durationArg(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value);
  if (ms === null) throw new UsageError(`--${name}: "${value}" is not a duration (like 30s, 5m)`);
  return ms;
}

function loadCliConfig(): Config {
  return loadConfig({ knownJobs: jobs.map((j) => j.name) });
}

function cliLogger(config: Config | null): Logger {
  return createLogger({ level: config?.env.logLevel ?? process.env.LOG_LEVEL ?? 'info' });
}

async function workerCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    prefix: { type: 'string' },
    'shutdown-timeout': { type: 'string' },
    'watchdog-interval': { type: 'string' },
  });
  const config = loadCliConfig();
  await runWorker({
    config,
    jobs,
    log: cliLogger(config),
    prefix: values.prefix ?? DEFAULT_PREFIX,
    shutdownDeadlineMs: durationArg('shutdown-timeout', values['shutdown-timeout'], 30_000),
    watchdogIntervalMs: durationArg('watchdog-interval', values['watchdog-interval'], 60_000),
    httpPort: config.env.httpPort,
  });
  return -1; // keeps running; the shutdown handler exits
}

async function migrateCommand(args: string[]): Promise<number> {
  parse(args, {});
  const config = loadCliConfig();
  const url = config.env.migrationDatabaseUrl ?? config.env.databaseUrl;
  if (url === null) {
    throw new ConfigError([
      'MIGRATION_DATABASE_URL (or DATABASE_URL) is not set; `keywarden migrate` needs the role that owns the tables',
    ]);
  }
  const db = createDb(url, { max: 1 });
  try {
    const result = await migrateToLatest(db);
    const applied = result.results?.filter((r) => r.status === 'Success').map((r) => r.migrationName) ?? [];
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'the schema is up to date');
    return 0;
  } finally {
    await db.destroy();
  }
}

async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { once: { type: 'boolean' }, prefix: { type: 'string' } }, 1);
  const name = positionals[0];
  if (!name) throw new UsageError(`which job? (jobs: ${jobs.map((j) => j.name).join(', ')})`);
  if (!jobs.some((j) => j.name === name)) {
    throw new UsageError(`<job>: no job named "${name}" (jobs: ${jobs.map((j) => j.name).join(', ')})`);
  }
  const config = loadCliConfig();
  const registry = buildRegistry(jobs, config.policy);
  const log = cliLogger(config);
  const app = await buildApp(config, { log, command: `run ${name}` });
  try {
    if (values.once) {
      // the job's handler runs in this process, as it would in the worker: on the schema the worker would accept
      const schema = await schemaProblem(app.ctx.db);
      if (schema !== null) throw new Error(schema);
      exitOnCrash(log);
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort(new Error('interrupted')));
      // progress on stderr: stdout keeps the result, for scripts
      const progress = (line: string) => process.stderr.write(`${line}\n`);
      const result = await runHandler(
        { ...app.ctx, progress },
        registry,
        name,
        {},
        { id: 'cli', attempt: 1, signal: controller.signal },
      );
      if (result !== undefined) console.log(terminalJson(result));
      return 0;
    }
    const queues = createQueues(app.ctx.redis, values.prefix ?? DEFAULT_PREFIX);
    const job = await enqueueJob(registry, queues, name);
    console.log(`enqueued ${name} as job ${job.id}; a running worker will pick it up`);
    await closeQueues(queues);
    return 0;
  } finally {
    await app.close();
  }
}

async function keysCommand(args: string[]): Promise<number> {
  if (args[0] === 'reactivate') return reactivateCommand(args.slice(1));
  const { values } = parse(args, { json: { type: 'boolean' } });
  const config = loadCliConfig();
  requireEnv(config, ['database'], 'keys');
  const db = createDb(config.env.databaseUrl!, { max: 2 });
  try {
    const now = new Date();
    const inputs = await loadRotationInputs(createRepos(db), config.policy.rotation.drain_window_hours, now);
    const rows = keyRows(inputs, planRotation(inputs, config.policy.rotation, now), now);
    if (values.json) console.log(terminalJson(rows));
    else
      console.log(rows.length ? formatKeyTable(rows) : 'no keys stored yet: run `keywarden run sync-inventory --once`');
    return 0;
  } finally {
    await db.destroy();
  }
}

async function reactivateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { reason: { type: 'string' } }, 1);
  const ref = positionals[0];
  if (!ref) throw new UsageError('which key? give its id (apikey_…) or its exact name');
  if (!values.reason?.trim())
    throw new UsageError('--reason: say why the key is reactivated (it goes into the audit log)');
  const config = loadCliConfig();
  const log = cliLogger(config);
  const app = await buildApp(config, { log, command: 'keys reactivate' });
  try {
    const matches = await app.ctx.repos.keys.findByReference(ref);
    if (matches.length === 0) {
      const what = isKeyIdReference(ref) ? 'id' : 'name';
      throw new UsageError(`<key>: no stored key with ${what} "${ref}" (run sync-inventory first)`);
    }
    if (matches.length > 1)
      throw new UsageError(
        `<key>: ${matches.length} keys are named "${ref}"; give the id (${matches.map((m) => m.id).join(', ')})`,
      );
    const key = matches[0]!;
    const actor = `cli:${userInfo().username}`;
    const reason = values.reason;
    // one status change at a time, as enforcement and the kill switch (a run in flight may be settling this key)
    const locked = await app.ctx.repos.keys.withStatusLock(() =>
      setKeyStatus(app.ctx, { keyId: key.id, to: 'active', action: 'api_key.reactivate', actor, reason }),
    );
    if (locked === null) {
      console.error(
        `another run is changing key statuses (enforce-rotation or the kill switch holds ${KEY_STATUS_LOCK}); ${terminalText(key.name)} not reactivated: try again in a minute`,
      );
      return 1;
    }
    if (locked.value === 'done') {
      console.log(`${terminalText(key.name)} (${key.id}) is active again; audited`);
      return 0;
    }
    // the reason ends with the API's own words, text from outside: sanitized for the terminal like every name
    const why = await lastStatusChangeFailure(app.ctx, { keyId: key.id, action: 'api_key.reactivate', actor });
    console.log(`could not reactivate ${terminalText(key.name)}: ${terminalText(why ?? 'see the log')}`);
    return 1;
  } finally {
    await app.close();
  }
}

async function checkConfigCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean' } });
  const config = loadCliConfig();
  const env = config.env;
  const effective = {
    policy_file: config.policySource,
    environment: {
      DATABASE_URL: env.databaseUrl ? maskUrl(env.databaseUrl.reveal()) : null,
      MIGRATION_DATABASE_URL: env.migrationDatabaseUrl ? maskUrl(env.migrationDatabaseUrl.reveal()) : null,
      REDIS_URL: env.redisUrl ? maskUrl(env.redisUrl.reveal()) : null,
      ANTHROPIC_ADMIN_KEY: env.adminKey?.hint ?? null,
      ANTHROPIC_BASE_URL: maskUrl(env.anthropicBaseUrl),
      SLACK_BOT_TOKEN: env.slackBotToken?.hint ?? null,
      SLACK_API_URL: maskUrl(env.slackApiUrl),
      PAGERDUTY_EVENTS_URL: maskUrl(env.pagerdutyEventsUrl),
      KEYWARDEN_ALLOW_INSECURE_HTTP: env.allowInsecureHttp,
      SMTP_URL: env.smtpUrl ? maskUrl(env.smtpUrl.reveal()) : null,
      EMAIL_FROM: env.emailFrom,
      KEYWARDEN_CONFIG: env.configPath,
      KEYWARDEN_HTTP_PORT: env.httpPort,
      KEYWARDEN_HTTP_HOST: env.httpHost,
      LOG_LEVEL: env.logLevel,
    },
    policy: config.policy,
  };
  if (values.json) {
    console.log(terminalJson(effective));
  } else {
    const { stringify } = await import('yaml');
    console.log(stringify(effective, { lineWidth: 0 }).trimEnd());
  }
  const warnings: string[] = env.insecureHttp.map(insecureHttpWarning);
  if (!env.adminKey) warnings.push('ANTHROPIC_ADMIN_KEY is not set: the worker will not start without it');
  const wantsSlack = config.policy.routes.some((r) => r.slack.length > 0);
  if (wantsSlack && !env.slackBotToken) warnings.push('routes name Slack channels but SLACK_BOT_TOKEN is not set');
  const wantsEmail = config.policy.routes.some((r) => r.email.length > 0);
  if (wantsEmail && (!env.smtpUrl || !env.emailFrom))
    warnings.push('routes name email recipients but SMTP_URL or EMAIL_FROM is not set');
  if (blindRoutes(config.policy.routes) !== config.policy.routes)
    warnings.push('no route matches keywarden.blind: if the admin key is refused, every route target is told');
  for (const w of warnings) console.error(`warning: ${w}`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(mainHelp());
    return command ? 0 : 2;
  }
  const spec = COMMANDS[command];
  if (!spec) {
    console.error(`keywarden: unknown command "${command}"\n\n${mainHelp()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    if (command === 'emulator') return spec.run(rest);
    console.log(`${spec.summary}\n\nUsage: ${spec.usage}`);
    return 0;
  }
  try {
    return await spec.run(rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) console.error(`config: ${p}`);
      return 2;
    }
    if (err instanceof RegistryError || err instanceof UsageError) {
      // a usage error can quote a stored key's name; the registry's lines are keywarden's own
      const message = err instanceof UsageError ? terminalText(err.message) : err.message;
      console.error(`keywarden ${command}: ${message}\n\nUsage: ${spec.usage}`);
      return 2;
    }
    const { scrubSecrets } = await import('./log.ts');
    // an error can quote a key or workspace name: scrubbed, and shown on one line with its escapes visible
    console.error(`keywarden ${command}: ${terminalText(scrubSecrets((err as Error).message ?? String(err)))}`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
