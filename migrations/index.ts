import type { Migration } from 'kysely/migration';
import * as initial from './001_initial.ts';
import * as usage from './002_usage.ts';
import * as spend from './003_spend.ts';
import * as anomaly from './004_anomaly.ts';
import * as activeShare from './005_active_share.ts';
import * as jobRuns from './006_job_runs.ts';
import * as runtimeRole from './007_runtime_role.ts';
import * as killSwitchEvidence from './008_kill_switch_evidence.ts';
import * as keyScope from './009_key_scope.ts';
import * as usageCostParts from './010_usage_cost_parts.ts';
import * as slackActions from './011_slack_actions.ts';
import * as receiverChannels from './012_receiver_channels.ts';
import * as rotationStage from './013_rotation_stage.ts';
import * as approvals from './014_approvals.ts';
import * as anomalyMarks from './015_anomaly_marks.ts';
import * as billedCosts from './016_billed_costs.ts';
import * as spendLimits from './017_spend_limits.ts';
import * as keyIdentity from './018_key_identity.ts';
import * as increaseRequests from './019_increase_requests.ts';

/** Every migration, in order. A static list rather than a folder scan: what runs is what the code review saw. */
export const migrations: Record<string, Migration> = {
  '001_initial': initial,
  '002_usage': usage,
  '003_spend': spend,
  '004_anomaly': anomaly,
  '005_active_share': activeShare,
  '006_job_runs': jobRuns,
  '007_runtime_role': runtimeRole,
  '008_kill_switch_evidence': killSwitchEvidence,
  '009_key_scope': keyScope,
  '010_usage_cost_parts': usageCostParts,
  '011_slack_actions': slackActions,
  '012_receiver_channels': receiverChannels,
  '013_rotation_stage': rotationStage,
  '014_approvals': approvals,
  '015_anomaly_marks': anomalyMarks,
  '016_billed_costs': billedCosts,
  '017_spend_limits': spendLimits,
  '018_key_identity': keyIdentity,
  '019_increase_requests': increaseRequests,
};
