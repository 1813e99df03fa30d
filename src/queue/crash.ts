import type { Logger } from '../log.ts';

/**
 * A rejection nobody handled or an exception thrown outside every job leaves the process in a state no code
 * planned for: it is logged (through the logger, so through the scrubber: Node's own report prints the error raw)
 * and the process exits with 1. BullMQ hands the running jobs to another worker once their locks expire.
 */
export function exitOnCrash(log: Logger): void {
  const crash = (event: 'unhandledRejection' | 'uncaughtException') => (err: unknown) => {
    log.fatal({ err, event }, `${event}: keywarden stops`);
    log.flush();
    process.exit(1);
  };
  process.on('unhandledRejection', crash('unhandledRejection'));
  process.on('uncaughtException', crash('uncaughtException'));
}
