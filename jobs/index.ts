import { defineJobs } from '../src/queue/define.ts';
import { checkHeadroomJob } from './check-headroom.ts';
import { checkSpendJob } from './check-spend.ts';
import { deliverNotificationsJob } from './deliver-notifications.ts';
import { detectAnomaliesJob } from './detect-anomalies.ts';
import { enforceRotationJob } from './enforce-rotation.ts';
import { financeDigestJob } from './finance-digest.ts';
import { pollUsageJob } from './poll-usage.ts';
import { projectSpendJob } from './project-spend.ts';
import { reconcileCostsJob } from './reconcile-costs.ts';
import { securityDigestJob } from './security-digest.ts';
import { syncInventory } from './sync-inventory.ts';
import { usageRetentionJob } from './usage-retention.ts';

/**
 * Every job the worker runs. The worker checks this list at start: a duplicate name, an unknown queue, a chained
 * job that is not listed, or a policy `schedules` entry for a job not listed here refuses to start.
 */
export const jobs = defineJobs([
  syncInventory,
  pollUsageJob,
  reconcileCostsJob,
  usageRetentionJob,
  enforceRotationJob,
  projectSpendJob,
  checkSpendJob,
  detectAnomaliesJob,
  checkHeadroomJob,
  financeDigestJob,
  securityDigestJob,
  deliverNotificationsJob,
]);

type ShippedJobs = { [J in (typeof jobs)[number] as J['name']]: J };

// `JobName`, `followedBy` and `ctx.enqueue` are checked against this list (see JobRegistry in src/context.ts)
declare module '../src/context.ts' {
  interface JobRegistry extends ShippedJobs {}
}
