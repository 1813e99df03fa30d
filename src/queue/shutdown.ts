import type { Logger } from '../log.ts';

interface ShutdownStep {
  name: string;
  /** `force` is true once the deadline has passed: stop now, abandon what is running. */
  run(force: boolean): Promise<void>;
}

interface ShutdownOptions {
  steps: ShutdownStep[];
  deadlineMs: number;
  log: Logger;
  /** Called first on a signal: tell running handlers to stop at their next safe point. */
  onSignal?: () => void;
  exit?: (code: number) => void;
}

/**
 * Graceful shutdown on SIGTERM/SIGINT: the steps run in order (workers → queues → Redis → Postgres → log). If the
 * deadline passes, the remaining steps run forced; a second signal forces at once. Jobs abandoned this way are
 * picked up again by another worker (their lock expires), and every job is safe to run twice.
 */
export function installShutdown(options: ShutdownOptions): { shutdown(signal: string): Promise<void> } {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let started = false;
  let force = false;
  const shutdown = async (signal: string) => {
    if (started) {
      options.log.warn({ signal }, 'second signal: forcing shutdown');
      force = true;
      return;
    }
    started = true;
    options.log.info({ signal, deadlineMs: options.deadlineMs }, 'shutting down');
    options.onSignal?.();
    const timer = setTimeout(() => {
      options.log.warn({ deadlineMs: options.deadlineMs }, 'shutdown deadline reached: abandoning running jobs');
      force = true;
    }, options.deadlineMs);
    timer.unref();
    // Last resort: a step that ignores even the forced run (a hung socket) must not keep the process alive.
    const hardStop = setTimeout(() => {
      options.log.error('shutdown steps did not finish after the deadline: exiting now');
      options.log.flush();
      exit(0);
    }, options.deadlineMs + 10_000);
    hardStop.unref();
    for (const step of options.steps) {
      try {
        await untilForced(
          step.run(false),
          () => force,
          () => step.run(true),
        );
      } catch (err) {
        options.log.warn({ err, step: step.name }, 'shutdown step failed');
      }
    }
    clearTimeout(timer);
    clearTimeout(hardStop);
    exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  return { shutdown };
}

/** Waits for `graceful`; if `forced()` becomes true first, runs `forcedRun` and waits for that instead. */
async function untilForced(graceful: Promise<void>, forced: () => boolean, forcedRun: () => Promise<void>) {
  let done = false;
  const settle = () => {
    done = true;
  };
  graceful.then(settle, settle);
  while (!done) {
    await Promise.race([graceful.catch(() => {}), new Promise((r) => setTimeout(r, 100))]);
    if (!done && forced()) {
      await forcedRun();
      return;
    }
  }
  await graceful;
}
