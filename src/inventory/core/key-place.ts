import { DEFAULT_WORKSPACE_NAME } from '../../default-workspace.ts';

/**
 * What people read as a key's workspace. keywarden says the Default Workspace as a null workspace id (classic keys
 * and every usage row say it so); a key scoped to the organization has a null workspace id too but is in no
 * workspace at all, so its scope decides, never the null. A scope type the API adds later reads as itself.
 */
export const ORGANIZATION_SCOPE_LABEL = '(organization)';

export function keyWorkspaceName(
  scope: string,
  workspaceId: string | null,
  workspaceName: string | null | undefined,
): string {
  if (scope === 'organization') return ORGANIZATION_SCOPE_LABEL;
  if (scope !== 'workspace') return `(${scope})`;
  return workspaceId === null ? DEFAULT_WORKSPACE_NAME : (workspaceName ?? workspaceId);
}
