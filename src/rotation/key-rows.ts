import { DEFAULT_WORKSPACE_NAME } from '../default-workspace.ts';
import { DAY_MS } from '../time.ts';
import { describeKeyStage } from './core/describe.ts';
import { describePolicySource } from './core/policy.ts';
import type { RotationDecision, RotationInputs } from './core/types.ts';

export interface KeyRow {
  id: string;
  name: string;
  hint: string | null;
  /** The workspace's name, "Default Workspace", or "(organization)" for a key in no workspace. */
  workspace: string;
  /** `workspace` or `organization`, as the API scopes the key. */
  scope: string;
  status: string;
  ageDays: number;
  deadline: string | null;
  policy: string;
  stage: string;
  owner: string;
  lastUsage: string | null;
  successor: string | null;
}

/** One row per key for `keywarden keys`, from the rotation decisions. Pure. */
export function keyRows(inputs: RotationInputs, decisions: RotationDecision[], now: Date): KeyRow[] {
  return decisions.map((d) => {
    const k = d.key;
    const last = inputs.traffic.get(k.id)?.lastUsageAt ?? null;
    const successor = 'successor' in d && d.successor ? `${d.successor.name}${shareText(d.successor.share)}` : null;
    return {
      id: k.id,
      name: k.name,
      hint: k.partialKeyHint,
      workspace: k.workspaceName ?? DEFAULT_WORKSPACE_NAME,
      scope: k.scope,
      status: k.status,
      ageDays: Math.floor((now.getTime() - k.createdAt.getTime()) / DAY_MS),
      deadline: d.deadline ? d.deadline.toISOString().slice(0, 10) : null,
      policy: describePolicySource(d.source),
      stage: describeKeyStage(d),
      owner: k.ownerEmail ?? (k.createdByUserId ? 'left the organization' : 'unknown'),
      lastUsage: last ? last.toISOString().slice(0, 16).replace('T', ' ') : null,
      successor,
    };
  });
}

function shareText(share: number | null): string {
  return share === null ? '' : ` (${Math.round(share * 100)}%)`;
}
