import type { Db } from '../index.ts';
import { alertsRepo } from './alerts.ts';
import { auditRepo } from './audit.ts';
import { keysRepo } from './keys.ts';
import { outboxRepo } from './outbox.ts';
import { usageRepo } from './usage.ts';
import { watermarksRepo } from './watermarks.ts';

/**
 * One repository per table family: the only code that knows a family's tables and columns. Shells, CLI tables and
 * the HTTP pages read and write Postgres through these; built once per Context.
 */
export function createRepos(db: Db) {
  return {
    audit: auditRepo(db),
    keys: keysRepo(db),
    usage: usageRepo(db),
    watermarks: watermarksRepo(db),
    alerts: alertsRepo(db),
    outbox: outboxRepo(db),
  };
}

export type Repos = ReturnType<typeof createRepos>;
