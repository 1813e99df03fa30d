import { DEFAULT_WORKSPACE_NAME, DEFAULT_WORKSPACE_SCOPE_ID } from '../default-workspace.ts';
import { matchesGlob, singleLineName } from '../glob.ts';
import type { Policy } from './policy.ts';

/**
 * How the policy file names keys and workspaces. Names belong to the organization (anyone who can create a key
 * chooses its name), the policy belongs to the operator, so a name must never stand in for an id: a reference
 * that looks like an id (`apikey_…`, `wrkspc_…`) matches ids only, any other reference matches names only, and
 * names are compared as read on one line (`singleLineName`), so control characters cannot hide a key from a rule.
 */

const KEY_ID_PREFIX = 'apikey_';
const WORKSPACE_ID_PREFIX = 'wrkspc_';

/** A reference that reads like a key id (`apikey_…`): it names ids only. */
export function isKeyIdReference(ref: string): boolean {
  return ref.startsWith(KEY_ID_PREFIX);
}

export interface Named {
  id: string | null;
  name: string | null;
}

/** A key pattern of overrides and exemptions: a glob on the id when it looks like one, else on the name. */
export function keyPatternMatches(pattern: string, key: Named): boolean {
  if (isKeyIdReference(pattern)) return key.id !== null && matchesGlob(pattern, key.id);
  return key.name !== null && matchesGlob(pattern, singleLineName(key.name));
}

/** An exact reference (spend limits by key). */
export function keyReferenceMatches(ref: string, key: Named): boolean {
  if (isKeyIdReference(ref)) return key.id === ref;
  return key.name !== null && singleLineName(key.name) === ref;
}

/**
 * An exact workspace reference (overrides, spend limits, routes). `extraIds`: ids keywarden gives things the API
 * has no id for (the Default Workspace's spend scope, `default`).
 */
export function workspaceReferenceMatches(ref: string, workspace: Named, extraIds: readonly string[] = []): boolean {
  if (ref.startsWith(WORKSPACE_ID_PREFIX) || extraIds.includes(ref)) return workspace.id === ref;
  return workspace.name !== null && singleLineName(workspace.name) === ref;
}

export interface UnmatchedReference {
  /** Where in the policy file, e.g. `spend.limits.workspaces["Customer chatbot"]`. */
  path: string;
  ref: string;
  what: 'key' | 'workspace';
}

/**
 * The policy's key and workspace references that match nothing the organization has: a key or workspace that
 * was renamed or removed silently drops its override, exemption, limit or route, so each one is reported. Pure.
 */
export function unmatchedReferences(
  policy: Policy,
  inventory: { keys: readonly Named[]; workspaces: readonly Named[] },
): UnmatchedReference[] {
  const out: UnmatchedReference[] = [];
  const key = (path: string, ref: string, matches: (k: Named) => boolean) => {
    if (!inventory.keys.some(matches)) out.push({ path, ref, what: 'key' });
  };
  const workspace = (path: string, ref: string) => {
    // the Default Workspace has no id and is not listed by the API, but is always there
    if (ref === DEFAULT_WORKSPACE_NAME) return;
    if (!inventory.workspaces.some((w) => workspaceReferenceMatches(ref, w)))
      out.push({ path, ref, what: 'workspace' });
  };
  policy.rotation.overrides.forEach((o, i) => {
    if (o.key !== undefined) key(`rotation.overrides[${i}].key`, o.key, (k) => keyPatternMatches(o.key!, k));
    if (o.workspace !== undefined) workspace(`rotation.overrides[${i}].workspace`, o.workspace);
  });
  policy.rotation.exemptions.forEach((e, i) => {
    key(`rotation.exemptions[${i}].key`, e.key, (k) => keyPatternMatches(e.key, k));
  });
  for (const ref of Object.keys(policy.spend.limits.workspaces)) {
    if (ref !== DEFAULT_WORKSPACE_SCOPE_ID) workspace(`spend.limits.workspaces[${JSON.stringify(ref)}]`, ref);
  }
  for (const ref of Object.keys(policy.spend.limits.keys)) {
    key(`spend.limits.keys[${JSON.stringify(ref)}]`, ref, (k) => keyReferenceMatches(ref, k));
  }
  policy.routes.forEach((r, i) => {
    if (r.match.workspace !== undefined) workspace(`routes[${i}].match.workspace`, r.match.workspace);
  });
  return out;
}
