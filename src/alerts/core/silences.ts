import { matchesGlob, singleLineName } from '../../glob.ts';
import type { AlertSubject } from '../../kinds.ts';

/**
 * Silences, Alertmanager-style, as pure matching: an alert a silence matches at `now` still fires and resolves in
 * the record, but its messages are not sent. Every matcher a silence sets must match (they are ANDed); a silence
 * with none matches nothing, so a slip of the CLI cannot mute every alert.
 */

export const MATCHER_FIELDS = ['kind', 'scope', 'key', 'workspace', 'fingerprint'] as const;

export interface SilenceMatchers {
  /** Glob on the alert kind (`usage.*`). */
  kind?: string;
  /** Glob on the scope type (`organization`, `workspace`, `key`, …). */
  scope?: string;
  /** Glob on the API key id, for alerts about one key. */
  key?: string;
  /** Glob on the workspace's id or name. */
  workspace?: string;
  /** Exactly one alert (what Snooze makes): no glob, since ids and names may hold `*` or `?`. */
  fingerprint?: string;
}

export interface Silence {
  id: string;
  matchers: SilenceMatchers;
  startsAt: Date;
  endsAt: Date;
  expiredAt: Date | null;
}

/** An alert as silences see it. */
export interface SilenceableAlert extends Pick<AlertSubject, 'kind' | 'scopeType' | 'scopeId' | 'workspaceId'> {
  fingerprint: string;
  workspaceName: string | null;
}

export function silenceActive(s: Silence, now: Date): boolean {
  const t = now.getTime();
  return s.expiredAt === null && s.startsAt.getTime() <= t && t < s.endsAt.getTime();
}

export function silenceMatches(m: SilenceMatchers, a: SilenceableAlert): boolean {
  const set = MATCHER_FIELDS.filter((f) => m[f] !== undefined);
  if (set.length === 0) return false;
  if (m.fingerprint !== undefined && m.fingerprint !== a.fingerprint) return false;
  if (m.kind !== undefined && !matchesGlob(m.kind, a.kind)) return false;
  if (m.scope !== undefined && !matchesGlob(m.scope, a.scopeType)) return false;
  if (m.key !== undefined && !(a.scopeType === 'key' && matchesGlob(m.key, a.scopeId))) return false;
  if (m.workspace !== undefined) {
    const names = [a.workspaceId, a.workspaceName === null ? null : singleLineName(a.workspaceName)];
    if (!names.some((n) => n !== null && matchesGlob(m.workspace as string, n))) return false;
  }
  return true;
}

/** The first silence active at `now` that matches the alert, or null. */
export function silencedBy(silences: readonly Silence[], alert: SilenceableAlert, now: Date): Silence | null {
  return silences.find((s) => silenceActive(s, now) && silenceMatches(s.matchers, alert)) ?? null;
}
