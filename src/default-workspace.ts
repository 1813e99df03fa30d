/**
 * The Default Workspace: the Admin API gives it no id (its usage and keys say `workspace_id: null`) and does not list
 * it, so keywarden names it here and gives it the scope id `default`.
 */
export const DEFAULT_WORKSPACE_SCOPE_ID = 'default';
export const DEFAULT_WORKSPACE_NAME = 'Default Workspace';
