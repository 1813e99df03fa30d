import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/dev/services.ts';
import { type Spawned, spawnNode } from './processes.ts';

/**
 * The real keywarden worker (`node src/cli/index.ts worker`) as a child process, for drills that kill and restart it.
 * Every start writes the policy file and runs with the same environment, so a restart is what an orchestrator does.
 */
export interface WorkerProcessOptions {
  /** DATABASE_URL, REDIS_URL, ANTHROPIC_ADMIN_KEY, ANTHROPIC_BASE_URL, SLACK_*, SMTP_URL, EMAIL_FROM, LOG_LEVEL… */
  env: Record<string, string | undefined>;
  /** The policy file's YAML text, written to `dir`/keywarden.yaml. */
  policy: string;
  /** A directory of the test's own (the policy file goes there). */
  dir: string;
  /** BullMQ prefix: tests sharing one Redis must not share a prefix. */
  prefix: string;
  shutdownTimeout?: string;
  /** `--watchdog-interval` (default the worker's own, 60s): drills that flush Redis want the repair sooner. */
  watchdogInterval?: string;
}

export interface WorkerProcess {
  /** The running process (a new one after each start). */
  readonly current: Spawned;
  /** Everything every started process has printed, in order. */
  output(): string;
  /** Starts the worker and waits for "worker started". */
  start(): Promise<void>;
  /** SIGKILL: no shutdown hook runs. Resolves when the process is gone. */
  kill9(): Promise<void>;
  /** SIGTERM, waiting for the graceful exit. */
  stop(): Promise<void>;
}

export function workerProcess(opts: WorkerProcessOptions): WorkerProcess {
  const policyPath = join(opts.dir, 'keywarden.yaml');
  writeFileSync(policyPath, opts.policy);
  let current: Spawned | null = null;
  let earlier = '';
  const running = () => current !== null && current.proc.exitCode === null && current.proc.signalCode === null;
  return {
    get current() {
      if (!current) throw new Error('worker not started');
      return current;
    },
    output: () => earlier + (current?.output() ?? ''),
    async start() {
      if (running()) throw new Error('worker already running');
      if (current) earlier += current.output();
      current = spawnNode(
        'src/cli/index.ts',
        [
          'worker',
          '--prefix',
          opts.prefix,
          '--shutdown-timeout',
          opts.shutdownTimeout ?? '5s',
          ...(opts.watchdogInterval ? ['--watchdog-interval', opts.watchdogInterval] : []),
        ],
        { KEYWARDEN_CONFIG: policyPath, KEYWARDEN_HTTP_PORT: String(await freePort()), ...opts.env },
      );
      await current.waitForOutput(/worker started/, 30_000);
    },
    async kill9() {
      if (!current || !running()) return;
      current.proc.kill('SIGKILL');
      await current.exited;
    },
    async stop() {
      if (!current || !running()) return;
      current.proc.kill('SIGTERM');
      await current.exited;
    },
  };
}
