import type { Db } from '../index.ts';
import { actionsRepo } from './actions.ts';
import { alertsRepo } from './alerts.ts';
import { outboxRepo } from './outbox.ts';
import { watermarksRepo } from './watermarks.ts';

/**
 * One repository per table family: the only code that knows a family's tables and columns. Shells, CLI tables and
 * the HTTP pages read and write Postgres through these; built once per Context.
 */
export function createRepos(db: Db) {
  return {
    watermarks: watermarksRepo(db),
    alerts: alertsRepo(db),
    outbox: outboxRepo(db),
    actions: actionsRepo(db),
  };
}

export type Repos = ReturnType<typeof createRepos>;
