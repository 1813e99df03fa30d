import { DEFAULT_REPEAT_EVERY_MS, RECEIVER_KINDS, type Route } from '../config/policy.ts';
import { workspaceReferenceMatches } from '../config/references.ts';
import { matchesGlob } from '../glob.ts';
import type { AlertKind, Severity } from '../kinds.ts';
import type { Channel } from './adapters.ts';

/** What routing needs to know about an alert. Workspace routes match its id (`wrkspc_…`) or else its name. */
export interface RoutableAlert {
  kind: AlertKind;
  severity: Severity;
  workspaceId: string | null;
  workspaceName: string | null;
  /** The key creator's email, when the alert is about a key and the creator is still known. */
  keyOwnerEmail: string | null;
}

export interface RouteTarget {
  channel: Channel;
  /** A Slack channel (`#ai-alerts` or an ID), an email address, or the policy's name of a receiver (`oncall`). */
  target: string;
}

interface RoutingResult {
  targets: RouteTarget[];
  /** The shortest `repeat_every` of the matching routes (ms); the default 4 h when nothing matched. */
  repeatEveryMs: number;
  /** Facts worth showing with the alert, e.g. a `key_owner` recipient that could not be resolved. */
  notes: string[];
}

function routeMatches(route: Route, alert: RoutableAlert): boolean {
  const { kind, severity, workspace } = route.match;
  if (kind !== undefined && !matchesGlob(kind, alert.kind)) return false;
  if (severity !== undefined && severity !== alert.severity) return false;
  if (
    workspace !== undefined &&
    !workspaceReferenceMatches(workspace, { id: alert.workspaceId, name: alert.workspaceName })
  ) {
    return false;
  }
  return true;
}

/**
 * The targets an alert goes to. Routes are tried in order; the first match ends the walk unless it says
 * `continue: true` (Alertmanager's semantics). Pure.
 */
export function routeAlert(alert: RoutableAlert, routes: readonly Route[]): RoutingResult {
  const targets: RouteTarget[] = [];
  const seen = new Set<string>();
  const notes: string[] = [];
  let repeatEveryMs: number | null = null;
  const add = (channel: RouteTarget['channel'], target: string) => {
    // Email addresses are case-insensitive in practice; one person must not get the same alert twice.
    const key = `${channel}\u0000${channel === 'email' ? target.toLowerCase() : target}`;
    if (seen.has(key)) return;
    seen.add(key);
    targets.push({ channel, target });
  };
  for (const route of routes) {
    if (!routeMatches(route, alert)) continue;
    repeatEveryMs = repeatEveryMs === null ? route.repeat_every : Math.min(repeatEveryMs, route.repeat_every);
    for (const channel of route.slack) add('slack', channel);
    for (const recipient of route.email) {
      if (recipient !== 'key_owner') add('email', recipient);
      else if (alert.keyOwnerEmail !== null) add('email', alert.keyOwnerEmail);
      // The other recipients of the route (the security team) still get it, and they are told why the owner did not.
      else if (!notes.includes(NO_OWNER_NOTE)) notes.push(NO_OWNER_NOTE);
    }
    for (const kind of RECEIVER_KINDS) for (const name of route[kind]) add(kind, name);
    if (!route.continue) break;
  }
  return { targets, repeatEveryMs: repeatEveryMs ?? DEFAULT_REPEAT_EVERY_MS, notes };
}

export const NO_OWNER_NOTE = 'The key owner could not be notified: the key has no known creator email.';
