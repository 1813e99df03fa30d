import type { Db } from '../index.ts';
import { actionsRepo } from './actions.ts';
import { alertsRepo } from './alerts.ts';
import { anomalyRepo } from './anomaly.ts';
import { approvalsRepo } from './approvals.ts';
import { auditRepo } from './audit.ts';
import { billingRepo } from './billing.ts';
import { increaseRequestsRepo } from './increase-requests.ts';
import { jobRunsRepo } from './job-runs.ts';
import { keysRepo } from './keys.ts';
import { outboxRepo } from './outbox.ts';
import { silencesRepo } from './silences.ts';
import { spendRepo } from './spend.ts';
import { usageRepo } from './usage.ts';
import { watermarksRepo } from './watermarks.ts';

/**
 * One repository per table family: the only code that knows a family's tables and columns. Shells, CLI tables and
 * the HTTP pages read and write Postgres through these; built once per Context. `schema`: the one `db`'s
 * connections were opened on (`connectionSchema(org)`), which names the organization's locks.
 */
export function createRepos(db: Db, schema?: string) {
  return {
    alerts: alertsRepo(db, schema),
    anomaly: anomalyRepo(db),
    audit: auditRepo(db),
    billing: billingRepo(db, schema),
    keys: keysRepo(db, schema),
    spend: spendRepo(db),
    usage: usageRepo(db, schema),
    outbox: outboxRepo(db),
    watermarks: watermarksRepo(db),
    jobRuns: jobRunsRepo(db),
    actions: actionsRepo(db),
    silences: silencesRepo(db),
    approvals: approvalsRepo(db),
    increaseRequests: increaseRequestsRepo(db),
  };
}

export type Repos = ReturnType<typeof createRepos>;
