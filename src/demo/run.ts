import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { AdminClient } from '../anthropic/client.ts';
import { Secret } from '../config/secret.ts';
import { createDb, migrateToLatest } from '../db/index.ts';
import { ensureRuntimeLogin, freePort, MissingServiceError, provideServices, type Services } from '../dev/services.ts';
import { loadScenario } from '../emulator/scenario.ts';
import { type Emulator, startEmulator } from '../emulator/server.ts';
import { type SlackStandin, STANDIN_TOKEN, startSlackStandin } from '../notify/dev/slack-standin.ts';
import { type SmtpSink, startSmtpSink } from '../notify/dev/smtp-sink.ts';
import { terminalText } from '../notify/escape.ts';
import { writeEnvFile, writePrivateFile } from './env-file.ts';
import { readDemoOrganizationLimitUsd } from './limits.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

/**
 * The demo's policy: the example's routes, with schedules fast enough to see things within minutes. The
 * organization's limit is sized from its own cost report (src/demo/limits.ts) so a spend forecast shows on any day.
 * A 3-minute anomaly window (10 by default) lets the demo's runaway alert arrive within the first minutes.
 */
function demoPolicy(organizationLimitUsd: number): string {
  return `# written by \`keywarden demo\`
organization: { name: "Acme AI (demo)", timezone: UTC }
rotation: { enforce: false }
spend:
  limits: { organization: ${organizationLimitUsd} }
anomaly: { window_minutes: 3 }
routes:
  - { match: { kind: "usage.*" },    slack: ["#ai-alerts"], repeat_every: 1h }
  - { match: { kind: "spend.*" },    slack: ["#finance"], email: ["finance@acme.example"] }
  - { match: { kind: "rotation.*" }, slack: ["#security"], email: ["key_owner", "security@acme.example"] }
  - { match: { kind: "key.*" },      slack: ["#security"], email: ["security@acme.example"] }
  - { match: { kind: "*" },          slack: ["#ai-alerts"] }
digests:
  finance:  { cron: "0 8 * * *", email: ["finance@acme.example"], slack: ["#finance"] }
  security: { cron: "0 9 * * 1", slack: ["#security"], email: ["security@acme.example"] }
schedules:
  sync-inventory: "*/20 * * * * *"
  poll-usage: "*/20 * * * * *"
  project-spend: "25,55 * * * * *"
  enforce-rotation: "10,40 * * * * *"
`;
}

export interface DemoOptions {
  outDir: string;
  /** Stop by itself after this long (for tests and recordings); null runs until Ctrl-C. */
  exitAfterMs: number | null;
  say: (line: string) => void;
}

/**
 * `keywarden demo`: real Postgres and Redis (given URLs, a container runtime or local binaries), the Admin API
 * emulator on the demo scenario, a Slack stand-in and an SMTP sink, migrations, then the real worker as a child
 * process with fast schedules. Everything it started is stopped on Ctrl-C or at `exitAfterMs`.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const { say } = options;
  const out = resolve(options.outDir);
  mkdirSync(join(out, 'mail'), { recursive: true, mode: 0o700 });
  const cleanups: Array<() => Promise<void>> = [];
  let worker: ChildProcess | null = null;
  let stopping = false;

  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping: worker, emulator, sinks, Redis, Postgres');
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once('exit', r));
      worker.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (worker.exitCode === null) worker.kill('SIGKILL');
    }
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  };

  try {
    say('starting Postgres and Redis …');
    let services: Services;
    try {
      services = await provideServices({ databaseUrl: process.env.DATABASE_URL, redisUrl: process.env.REDIS_URL });
    } catch (err) {
      if (err instanceof MissingServiceError) {
        say(`cannot start the demo:\n${err.message}`);
        return 1;
      }
      throw err;
    }
    cleanups.push(
      () => services.postgres.stop(),
      () => services.redis.stop(),
    );
    say(`  Postgres: ${services.postgres.via}`);
    say(`  Redis:    ${services.redis.via}`);

    const scenario = loadScenario('demo');
    // The scenario's runaway starts one minute after its start; starting the scenario six minutes ago puts the
    // runaway five minutes in the past, so its alert (a 3-minute window) follows the demo's first usage poll.
    const emulator: Emulator = await startEmulator({ scenario, startAt: new Date(Date.now() - 6 * 60_000) });
    cleanups.push(() => emulator.close());
    say(`Admin API emulator (scenario "demo": ${scenario.description}) at ${emulator.url}`);

    const slack: SlackStandin = await startSlackStandin({
      onCall: (call) => {
        if (call.method !== 'chat.postMessage' || !call.response?.ok) return;
        const text = String(call.args.text ?? '').split('\n')[0];
        say(`→ Slack ${String(call.args.channel)}${call.args.thread_ts ? ' (thread)' : ''}: ${text}`);
      },
    });
    cleanups.push(() => slack.close());
    let mailCount = 0;
    const smtp: SmtpSink = await startSmtpSink({
      onMessage: (mail) => {
        mailCount++;
        const base = join(out, 'mail', `${String(mailCount).padStart(3, '0')}`);
        writePrivateFile(`${base}.eml`, mail.raw);
        if (mail.html) writePrivateFile(`${base}.html`, mail.html);
        say(`→ email to ${mail.to.join(', ')}: ${mail.subject}   (${base}.eml)`);
      },
    });
    cleanups.push(() => smtp.close());
    say(`Slack stand-in at ${slack.url}, SMTP sink at smtp://127.0.0.1:${smtp.port}`);

    const db = createDb(services.postgres.url, { max: 1 });
    await migrateToLatest(db);
    await db.destroy();
    say('database migrated');
    // the worker runs as a deployment's does: as a member of keywarden_runtime, not as the tables' owner
    const workerDatabaseUrl = await ensureRuntimeLogin(services.postgres.url).catch((err: Error) => {
      say(`the worker connects as the owner role: could not create its own role (${err.message})`);
      return services.postgres.url;
    });

    const policyPath = join(out, 'keywarden.yaml');
    const admin = new AdminClient({ baseUrl: emulator.url, adminKey: new Secret(scenario.admin_keys[0]!) });
    const organizationLimitUsd = await readDemoOrganizationLimitUsd(admin, new Date());
    say(
      `spend limit for the demo organization: $${organizationLimitUsd.toLocaleString('en-US')} a month (set so the month ends over it)`,
    );
    writeFileSync(policyPath, demoPolicy(organizationLimitUsd));
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: workerDatabaseUrl,
      REDIS_URL: services.redis.url,
      ANTHROPIC_ADMIN_KEY: scenario.admin_keys[0],
      ANTHROPIC_BASE_URL: emulator.url,
      SLACK_BOT_TOKEN: STANDIN_TOKEN,
      SLACK_API_URL: slack.url,
      SMTP_URL: smtp.url,
      EMAIL_FROM: '"keywarden demo" <keywarden@acme.example>',
      KEYWARDEN_CONFIG: policyPath,
      KEYWARDEN_HTTP_PORT: String(await freePort()),
      LOG_LEVEL: 'info',
    };
    writeEnvFile(
      join(out, 'env.sh'),
      Object.fromEntries(
        Object.entries(env).filter(
          (e): e is [string, string] => e[0] !== 'PATH' && e[0] !== 'HOME' && e[1] !== undefined,
        ),
      ),
      '# then, while the demo runs: npm run keywarden -- keys',
    );

    const workerLog = createWriteStream(join(out, 'worker.log'), { mode: 0o600 });
    worker = spawn(process.execPath, [join(ROOT, 'src/cli.ts'), 'worker', '--shutdown-timeout', '5s'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stderr!.pipe(workerLog);
    let printedKeys = false;
    let printedSpend = false;
    // later syncs and polls repeat themselves every 20 s: shown once, then only when something changed
    let syncedOnce = false;
    let polledOnce = false;
    let askedSecurityDigest = false;
    createInterface({ input: worker.stdout! }).on('line', (line) => {
      workerLog.write(`${line}\n`);
      const entry = parseLogLine(line);
      if (!entry) return;
      if (entry.msg === 'worker started') say(`worker started (health and metrics on :${env.KEYWARDEN_HTTP_PORT})`);
      if (entry.msg === 'inventory synced' && (!syncedOnce || Number(entry.statusChanges) > 0)) {
        syncedOnce = true;
        const orphaned = (entry.orphanedKeys as string[] | undefined)?.length ?? 0;
        say(
          `inventory: ${entry.workspaces} workspaces, ${entry.users} users, ${entry.keys} keys, ${entry.statusChanges} status changes, ${orphaned} orphaned key(s)`,
        );
      }
      if (entry.msg === 'rotation enforced' && Number(entry.reminders) > 0) {
        // `blocked` is only judged with enforce: true; the demo reports what it sent
        const blocked = Number(entry.blocked) > 0 ? `, ${entry.blocked} overdue key(s) still in use` : '';
        say(`rotation: ${entry.reminders} reminder stage(s) sent${blocked}`);
        // the weekly digest on demand, now that the rotation stages are fresh
        if (!askedSecurityDigest) {
          askedSecurityDigest = true;
          void askWorker('security-digest', env, say);
        }
      }
      // after the first poll has caught up: a projection made mid-catch-up is complete only to where it had got
      if (entry.msg === 'spend projected' && polledOnce && !printedSpend) {
        printedSpend = true;
        void printCommand(['spend'], env, say);
        // the daily digest on demand, now that a projection exists for its chart
        void askWorker('finance-digest', env, say);
      }
      if (entry.msg === 'usage polled' && !printedKeys) {
        // after the first poll, so the table's "last usage" column is filled
        printedKeys = true;
        void printCommand(['keys'], env, say);
      }
      if (entry.msg === 'usage polled' && Number(entry.rows) > 0 && !polledOnce) {
        polledOnce = true;
        say(`usage: ${entry.rows} rows stored (${entry.chunks} chunk(s)), complete up to ${String(entry.watermark)}`);
      }
      if (entry.level >= 50) {
        const detail = entry.err ? `: ${(entry.err as { message?: string }).message}` : '';
        say(`worker error: ${terminalText(`${entry.msg}${detail}`)}`);
      }
    });
    say(`worker log: ${join(out, 'worker.log')}; environment for other commands: source ${join(out, 'env.sh')}`);
    say('press Ctrl-C to stop everything');

    const finished = new Promise<number>((resolveExit) => {
      const onSignal = () => resolveExit(0);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      worker!.once('exit', (code) => {
        if (!stopping) {
          say(`the worker exited unexpectedly (code ${code}); see ${join(out, 'worker.log')}`);
          resolveExit(1);
        }
      });
      if (options.exitAfterMs !== null) setTimeout(() => resolveExit(0), options.exitAfterMs).unref();
    });
    const code = await finished;
    await stopAll();
    say('stopped; nothing left running');
    return code;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function parseLogLine(line: string): ({ msg?: string; level: number } & Record<string, unknown>) | null {
  try {
    return JSON.parse(line);
  } catch {
    return null;
  }
}

/** `keywarden run <job>`: the worker runs it now (the digests' own schedules are daily and weekly). */
async function askWorker(
  job: string,
  env: Record<string, string | undefined>,
  say: (line: string) => void,
): Promise<void> {
  const child = spawn(process.execPath, [join(ROOT, 'src/cli.ts'), 'run', job], { cwd: ROOT, env, stdio: 'pipe' });
  let text = '';
  child.stderr.on('data', (d) => {
    text += d;
  });
  const code = await new Promise((r) => child.once('exit', r));
  say(
    code === 0 ? `$ keywarden run ${job}   (the worker sends it now)` : `keywarden run ${job} failed: ${text.trim()}`,
  );
}

/** A `keywarden` command (`keys`, `spend`) against the demo's database, as a user would run it. */
async function printCommand(
  args: string[],
  env: Record<string, string | undefined>,
  say: (line: string) => void,
): Promise<void> {
  const child = spawn(process.execPath, [join(ROOT, 'src/cli.ts'), ...args], { cwd: ROOT, env, stdio: 'pipe' });
  let text = '';
  child.stdout.on('data', (d) => {
    text += d;
  });
  child.stderr.on('data', (d) => {
    text += d;
  });
  await new Promise((r) => child.once('exit', r));
  say(`$ keywarden ${args.join(' ')}\n${text.trimEnd()}`);
}
