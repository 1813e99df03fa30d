import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { AdminClient } from '../anthropic/client.ts';
import { Secret } from '../config/secret.ts';
import type { JobName } from '../context.ts';
import { createDb, migrateToLatest } from '../db/index.ts';
import { ensureRuntimeLogin, freePort, MissingServiceError, provideServices, type Services } from '../dev/services.ts';
import { loadScenario, parseScenario } from '../emulator/scenario.ts';
import { type Emulator, startEmulator } from '../emulator/server.ts';
import { type SlackStandin, STANDIN_TOKEN, startSlackStandin } from '../notify/dev/slack-standin.ts';
import { type SmtpSink, startSmtpSink } from '../notify/dev/smtp-sink.ts';
import { terminalText } from '../notify/escape.ts';
import { writeEnvFile, writePrivateFile } from './env-file.ts';
import { readDemoOrganizationLimitUsd } from './limits.ts';
import { answeredLine, buttonValue, DEMO_PRESSER, DRAINED_KEY } from './presses.ts';
import { DEMO_TOUR, type Shown, type Sight, shownKind, slackContextTexts, stillMissing } from './tour.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

/**
 * The demo's policy: the example's routes, with schedules fast enough to see things within minutes. The
 * organization's limit is sized from its own cost report (src/demo/limits.ts) so a spend forecast shows on any day.
 * A 3-minute anomaly window (10 by default) lets the demo's runaway alert arrive within the first minutes.
 * enforce-rotation runs when the demo asks for it, after the keys table: the table shows a key as `overdue` only
 * until its overdue notice is sent (then `grace`), so a scheduled run must not come first. Its daily run is
 * therefore put twelve hours from `now`. With `enforce: approve` and no grace, the demo's second run asks in Slack
 * whether to retire the drained overdue key, and the demo presses Approve (as it presses Acknowledge on the runaway).
 */
export function demoPolicy(organizationLimitUsd: number, now: Date): string {
  const rotationCron = `${now.getUTCMinutes()} ${(now.getUTCHours() + 12) % 24} * * *`;
  return `# written by \`keywarden demo\`
organization: { name: "Acme AI (demo)", timezone: UTC }
rotation: { enforce: approve, grace_days: 0 }
spend:
  limits: { organization: ${organizationLimitUsd} }
anomaly: { window_minutes: 3 }
slack_actions:
  enabled: true
  allow: { acknowledge: ["*"], snooze: ["*"], approve_deactivation: ["${DEMO_PRESSER.userId}"], reactivate: ["${DEMO_PRESSER.userId}"] }
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
  enforce-rotation: "${rotationCron}"
`;
}

export interface DemoOptions {
  outDir: string;
  /** Stop by itself after this long (for tests and recordings); null runs until Ctrl-C. */
  exitAfterMs: number | null;
  /** Stop as soon as everything the tour shows was shown (`exitAfterMs` then bounds the wait). */
  exitWhenShown: boolean;
  say: (line: string) => void;
}

/**
 * `keywarden demo`: real Postgres and Redis (given URLs, a container runtime or local binaries), the Admin API
 * emulator on the demo scenario, a Slack stand-in and an SMTP sink, migrations, then the real worker as a child
 * process with fast schedules. It says when it has shown every finding of its tour (src/demo/tour.ts). Everything
 * it started is stopped on Ctrl-C, at `exitAfterMs`, or with `exitWhenShown` once the tour is complete.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const { say } = options;
  const startedAt = Date.now();
  const out = resolve(options.outDir);
  mkdirSync(join(out, 'mail'), { recursive: true, mode: 0o700 });
  const cleanups: Array<() => Promise<void>> = [];
  let worker: ChildProcess | null = null;
  let stopping = false;
  // the `keywarden` commands the demo runs (keys, spend, run <job>): waited for before the services stop
  const helpers = new Set<ChildProcess>();
  const helper: RunHelper = (args, env) => runHelper(args, env, helpers);

  let missing: Sight[] = [...DEMO_TOUR];
  let onEverythingShown = () => {};
  const show = (shown: Shown) => {
    // once stopping, what the worker still delivers is printed, but the tour is over
    if (missing.length === 0 || stopping) return;
    missing = stillMissing(missing, shown);
    if (missing.length > 0) return;
    const seconds = Math.round((Date.now() - startedAt) / 1000);
    say(
      options.exitWhenShown
        ? `demo: everything shown (${seconds} s)`
        : `demo: everything shown (${seconds} s); it keeps running for you to explore (source ${join(out, 'env.sh')}, then npm run keywarden -- keys, alerts or spend); Ctrl-C stops everything`,
    );
    onEverythingShown();
  };

  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping: worker, emulator, sinks, Redis, Postgres');
    // a helper already started finishes first: its output belongs before "stopped", and it needs the services
    const helpersExited = [...helpers].map((child) => new Promise((r) => child.once('exit', r)));
    await Promise.race([Promise.all(helpersExited), new Promise((r) => setTimeout(r, 15_000))]);
    for (const child of helpers) child.kill('SIGKILL');
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

    const builtIn = loadScenario('demo');
    const scenario = parseScenario({ ...builtIn, keys: [...builtIn.keys, DRAINED_KEY] }, 'demo');
    // The scenario's runaway starts one minute after its start; starting the scenario six minutes ago puts the
    // runaway five minutes in the past, so its alert (a 3-minute window) follows the demo's first usage poll.
    const emulator: Emulator = await startEmulator({ scenario, startAt: new Date(Date.now() - 6 * 60_000) });
    cleanups.push(() => emulator.close());
    say(`Admin API emulator (scenario "demo": ${scenario.description}) at ${emulator.url}`);

    // where the demo presses buttons: the worker's POST /slack/actions, signed as Slack signs (set once it runs)
    let actions: { url: string; signingSecret: string } | null = null;
    const pressed = new Set<string>();
    const press = (label: string, actionId: string, value: string, message: string) => {
      if (actions === null || pressed.has(actionId)) return;
      pressed.add(actionId);
      say(`demo: pressing ${label} as <@${DEMO_PRESSER.userId}>`);
      const payload = { actionId, value, message, ...DEMO_PRESSER };
      void slack.pressOverHttp(actions.url, actions.signingSecret, payload).then(
        (r) => r.status !== 200 && say(`demo: the press of ${label} was answered HTTP ${r.status}`),
        (err: Error) => say(`demo: could not press ${label}: ${err.message}`),
      );
    };
    const slack: SlackStandin = await startSlackStandin({
      onCall: (call) => {
        if (call.method === 'chat.update' && call.response?.ok) {
          const line = answeredLine(call.args.blocks) ?? '';
          say(`→ Slack message updated: ${terminalText(line)}`);
          if (line.startsWith('Acknowledged by')) show({ medium: 'terminal', what: 'acknowledged' });
          if (line.startsWith('Approved by')) show({ medium: 'terminal', what: 'approved' });
          return;
        }
        if (call.method !== 'chat.postMessage' || !call.response?.ok) return;
        const text = String(call.args.text ?? '').split('\n')[0];
        const channel = String(call.args.channel);
        say(`→ Slack ${channel}${call.args.thread_ts ? ' (thread)' : ''}: ${text}`);
        const kind = shownKind(slackContextTexts(call.args.blocks));
        if (kind && !call.args.thread_ts) show({ medium: 'slack', channel, kind });
        const message = `${call.response.channel}:${call.response.ts}`;
        const ack = buttonValue(call.args.blocks, 'ack');
        if (kind === 'usage.runaway' && ack !== null) press('Acknowledge on the runaway', 'ack', ack, message);
        const approve = buttonValue(call.args.blocks, 'approve');
        if (kind === 'rotation.approval_requested' && approve !== null) {
          press(`Approve on "${DRAINED_KEY.name}"`, 'approve', approve, message);
        }
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
        const kind = shownKind(mail.text.split('\n'));
        if (kind) show({ medium: 'email', to: mail.to, kind });
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
    writeFileSync(policyPath, demoPolicy(organizationLimitUsd, new Date()));
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
      // the status page shows the demo organization's spend and owners: this machine only, behind a fresh token
      KEYWARDEN_HTTP_HOST: '127.0.0.1',
      KEYWARDEN_UI_TOKEN: randomBytes(16).toString('hex'),
      LOG_LEVEL: 'info',
      // the buttons' presses come back to the worker's POST /slack/actions, signed with this
      SLACK_SIGNING_SECRET: randomBytes(16).toString('hex'),
    };
    actions = {
      url: `http://127.0.0.1:${env.KEYWARDEN_HTTP_PORT}/slack/actions`,
      signingSecret: env.SLACK_SIGNING_SECRET,
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
    worker = spawn(process.execPath, [join(ROOT, 'src/cli/index.ts'), 'worker', '--shutdown-timeout', '5s'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stderr!.pipe(workerLog);
    // The tour's order: the keys table once the inventory and a first poll are stored, and before the first rotation
    // run (the demo asks for it after the table); the spend table from a projection made after the first poll has
    // caught up (one made mid-catch-up is complete only to where the poll had got); the digests once the rotation
    // stages and a projection exist.
    let inventorySynced = false;
    let polled = false;
    let printedKeys = false;
    let caughtUpTo: Date | null = null;
    let printedSpend = false;
    let askedSecurityDigest = false;
    const keysTour = async () => {
      if (await printHelper(['keys'], env, say, helper)) show({ medium: 'terminal', what: 'keys' });
      await askWorker('enforce-rotation', env, say, helper);
    };
    const spendTour = async () => {
      if (await printHelper(['spend'], env, say, helper)) show({ medium: 'terminal', what: 'spend' });
    };
    createInterface({ input: worker.stdout! }).on('line', (line) => {
      workerLog.write(`${line}\n`);
      const entry = parseLogLine(line);
      if (!entry) return;
      if (entry.level >= 50) {
        const detail = entry.err ? `: ${(entry.err as { message?: string }).message}` : '';
        say(`worker error: ${terminalText(`${entry.msg}${detail}`)}`);
      }
      // once stopping, nothing new is started
      if (stopping) return;
      if (entry.msg === 'worker started') {
        say(`worker started (health and metrics on :${env.KEYWARDEN_HTTP_PORT})`);
        say(`status page: http://127.0.0.1:${env.KEYWARDEN_HTTP_PORT}/   token: ${env.KEYWARDEN_UI_TOKEN}`);
      }
      // later syncs repeat themselves every 20 s: shown once, then only when something changed
      if (entry.msg === 'inventory synced' && (!inventorySynced || Number(entry.statusChanges) > 0)) {
        const orphaned = (entry.orphanedKeys as string[] | undefined)?.length ?? 0;
        // the first sync records every key's status: not news, so not called a change
        const changes = inventorySynced ? `, ${entry.statusChanges} status change(s)` : '';
        inventorySynced = true;
        say(
          `inventory: ${entry.workspaces} workspaces, ${entry.users} users, ${entry.keys} keys${changes}, ${orphaned} orphaned key(s)`,
        );
        show({ medium: 'terminal', what: 'inventory' });
      }
      if (entry.msg === 'usage polled') {
        polled = true;
        if (Number(entry.rows) > 0 && caughtUpTo === null) {
          caughtUpTo = new Date(String(entry.watermark));
          say(`usage: ${entry.rows} rows stored (${entry.chunks} chunk(s)), complete up to ${String(entry.watermark)}`);
          // a projection now rather than at its next scheduled run
          void askWorker('project-spend', env, say, helper);
        }
      }
      if (inventorySynced && polled && !printedKeys) {
        // after the first poll, so the table's "last usage" column is filled
        printedKeys = true;
        void keysTour();
      }
      if (entry.msg === 'rotation enforced') {
        if (Number(entry.reminders) > 0) {
          // `blocked` is only judged with enforce: true; the demo reports what it sent
          const blocked = Number(entry.blocked) > 0 ? `, ${entry.blocked} overdue key(s) still in use` : '';
          say(`rotation: ${entry.reminders} reminder stage(s) sent${blocked}`);
        }
        // the weekly digest on demand, now that the rotation stages are fresh; and a second rotation run: the
        // overdue notices are sent and there is no grace, so it asks about the drained key
        if (!askedSecurityDigest) {
          askedSecurityDigest = true;
          void askWorker('security-digest', env, say, helper);
          void askWorker('enforce-rotation', env, say, helper);
        }
      }
      if (
        entry.msg === 'spend projected' &&
        caughtUpTo !== null &&
        new Date(String(entry.asOf)).getTime() >= caughtUpTo.getTime() &&
        !printedSpend
      ) {
        printedSpend = true;
        void spendTour();
        // the daily digest on demand, now that a projection exists for its chart
        void askWorker('finance-digest', env, say, helper);
      }
    });
    say(`worker log: ${join(out, 'worker.log')}; environment for other commands: source ${join(out, 'env.sh')}`);
    say(
      options.exitWhenShown
        ? 'press Ctrl-C to stop everything; it stops by itself once everything is shown'
        : 'press Ctrl-C to stop everything',
    );

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
      if (options.exitWhenShown) onEverythingShown = () => resolveExit(0);
      if (options.exitAfterMs !== null) {
        setTimeout(() => {
          if (missing.length > 0) {
            const seconds = Math.round(options.exitAfterMs! / 1000);
            say(`demo: not shown within ${seconds} s: ${missing.map((m) => m.label).join('; ')}`);
          }
          // asked to show everything, it did not: a failure; a plain time limit is not
          resolveExit(options.exitWhenShown && missing.length > 0 ? 1 : 0);
        }, options.exitAfterMs).unref();
      }
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

interface HelperResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

type RunHelper = (args: string[], env: Record<string, string | undefined>) => Promise<HelperResult>;

/** One `keywarden` command against the demo's services, as a user would run it; in `running` while it runs. */
async function runHelper(
  args: string[],
  env: Record<string, string | undefined>,
  running: Set<ChildProcess>,
): Promise<HelperResult> {
  const child = spawn(process.execPath, [join(ROOT, 'src/cli/index.ts'), ...args], { cwd: ROOT, env, stdio: 'pipe' });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  return { code, stdout, stderr };
}

/** `keywarden run <job>`: the worker runs it now, not at its scheduled time (the digests: daily and weekly). */
async function askWorker(
  job: JobName,
  env: Record<string, string | undefined>,
  say: (line: string) => void,
  run: RunHelper,
): Promise<void> {
  const { code, stderr } = await run(['run', job], env);
  say(
    code === 0 ? `$ keywarden run ${job}   (the worker runs it now)` : `keywarden run ${job} failed: ${stderr.trim()}`,
  );
}

/** Prints what a `keywarden` command (`keys`, `spend`) prints, headed by the command line; true when it succeeded. */
async function printHelper(
  args: string[],
  env: Record<string, string | undefined>,
  say: (line: string) => void,
  run: RunHelper,
): Promise<boolean> {
  const { code, stdout, stderr } = await run(args, env);
  say(`$ keywarden ${args.join(' ')}\n${(stdout + stderr).trimEnd()}`);
  return code === 0;
}
