import { carriesDecision } from '../../action-ids.ts';
import type { AlertKind, AlertSubject, ScopeType } from '../../kinds.ts';
import { alertFingerprint } from './fingerprint.ts';

/**
 * The alert lifecycle, Alertmanager-style, as a pure function: given what a rule evaluation saw now and what the
 * store remembers, decide for each alert whether to fire, repeat, resolve or stay quiet. `planRaise` (plan.ts) adds
 * routing and messages; the store applies the plan and writes the outbox rows in one transaction.
 */

/** A labelled value a message shows about an alert (plain, untrusted text; the renderer escapes it). */
export interface AlertField {
  label: string;
  value: string;
}

/** A page a message links to (a Console page); only http(s) URLs are rendered. */
export interface AlertLink {
  label: string;
  url: string;
}

/** One condition a rule evaluation observed now (e.g. one runaway key, one threshold crossed). */
export interface AlertObservation extends AlertSubject {
  details: Record<string, unknown>;
  /** What the message says about it (plain text; the renderer escapes it). */
  summary?: string;
  fields?: AlertField[];
  links?: AlertLink[];
  /** The key's or workspace's name as the organization wrote it, for the receivers that carry data (webhooks). */
  scopeName?: string | null;
  /** For routing: workspace routes match the name; `key_owner` resolves to this address. */
  workspaceName?: string | null;
  keyOwnerEmail?: string | null;
  /**
   * Seen only inside the condition's hysteresis band (e.g. a projection just under its limit): keeps an alert that
   * is firing from resolving, never starts one. A condition that fires at X and resolves below X × 0.95 does not
   * flap when the value wobbles around X.
   */
  holdOnly?: boolean;
}

/** What the store remembers of an alert. */
export interface StoredAlert {
  fingerprint: string;
  kind: AlertKind;
  scopeType: ScopeType;
  scopeId: string;
  state: 'firing' | 'resolved';
  lastNotifiedAt: Date | null;
  inhibitedBy: string | null;
  /** Someone acknowledged this episode (a Slack button): it is not repeated, and its resolve is still said. */
  acknowledgedAt?: Date | null;
}

export interface LifecycleInput {
  /** The kinds this evaluation covered: a stored firing alert of these kinds that was not observed has resolved. */
  kinds: readonly AlertKind[];
  /** When the evaluation only looked at some scopes (`scopeType:scopeId`); absent: every scope of those kinds. */
  scopes?: readonly string[];
  observations: readonly AlertObservation[];
  stored: readonly StoredAlert[];
  /** The repeat interval (ms) for an observation, from the routes it matches. */
  repeatEveryMs: (o: AlertObservation) => number;
  now: Date;
}

export type LifecycleAction =
  /** A new episode (first time, or again after it resolved, or no longer inhibited): notify. */
  | 'fire'
  /** Still firing and `repeat_every` has passed since the last notification: notify again. */
  | 'repeat'
  /** Still firing, nothing new to say: only `last_seen_at` moves. */
  | 'refresh'
  /** Firing but silenced by a more severe alert on the same scope: stored, not sent. */
  | 'inhibit'
  /** No longer observed: resolved; notified only when the firing was. */
  | 'resolve';

export interface LifecycleDecision {
  action: LifecycleAction;
  fingerprint: string;
  /** Present for every action but `resolve`. */
  observation: AlertObservation | null;
  /** Whether this decision sends a notification. */
  notify: boolean;
  inhibitedBy: string | null;
}

export function observationFingerprint(o: AlertObservation): string {
  return alertFingerprint(o.kind, o.scopeType, o.scopeId, o.period);
}

function threshold(o: AlertObservation): number | null {
  const t = o.details.threshold;
  return o.kind === 'spend.threshold' && typeof t === 'number' ? t : null;
}

/**
 * Inhibition: a `spend.threshold` at 100% or more silences the lower thresholds of the same scope and period, so finance gets
 * "limit reached", not "80%" and "100%" side by side, and that month's `spend.forecast` of the scope (a limit
 * already reached needs no forecast that it will be). Returns the inhibiting fingerprint per inhibited one.
 */
function inhibitions(observations: readonly AlertObservation[]): Map<string, string> {
  const inhibited = new Map<string, string>();
  for (const high of observations) {
    const h = threshold(high);
    if (h === null || h < 1) continue;
    for (const low of observations) {
      if (low.scopeType !== high.scopeType || low.scopeId !== high.scopeId) continue;
      const l = threshold(low);
      // a daily limit reached says nothing about the month's 80%: thresholds inhibit within their own period
      const lowerThreshold = l !== null && l < h && low.period.split('@')[0] === high.period.split('@')[0];
      const forecastOfMonth = low.kind === 'spend.forecast' && high.period.startsWith(`${low.period}@`);
      if (lowerThreshold || forecastOfMonth) inhibited.set(observationFingerprint(low), observationFingerprint(high));
    }
  }
  return inhibited;
}

/**
 * Notices rather than conditions: said once when they first hold, never repeated, and their end goes unsaid (a
 * 14-day rotation reminder is followed by the 7-day one, not by "resolved"; a deactivation is a fact, not a state).
 */
const ONE_SHOT_KINDS: ReadonlySet<AlertKind> = new Set<AlertKind>([
  'rotation.due_soon',
  'rotation.deactivated',
  'pricing.unknown_model',
  'spend.threshold',
  'spend.limit_changed',
]);

/**
 * Facts about a period (the period is part of the fingerprint): announced once per fingerprint, ever. A spend
 * threshold crossed in November is said once for November even when the month-to-date dips back under it (a usage
 * correction, a limit raised and lowered again) and crosses a second time; December's crossing is a new fingerprint.
 * A spend limit change (its period names the change) is said once, even when the run that saw it is retried before
 * it stored the new limits.
 */
const ONCE_PER_PERIOD_KINDS: ReadonlySet<AlertKind> = new Set<AlertKind>(['spend.threshold', 'spend.limit_changed']);

export function planAlerts(input: LifecycleInput): LifecycleDecision[] {
  const stored = new Map(input.stored.map((s) => [s.fingerprint, s]));
  const inhibited = inhibitions(input.observations);
  const decisions: LifecycleDecision[] = [];
  const observed = new Set<string>();

  for (const o of input.observations) {
    const fingerprint = observationFingerprint(o);
    // A rule that reports the same condition twice in one run still makes one alert.
    if (observed.has(fingerprint)) continue;
    const prev = stored.get(fingerprint);
    if (o.holdOnly && prev?.state !== 'firing') continue;
    observed.add(fingerprint);
    const inhibitedBy = inhibited.get(fingerprint) ?? null;
    const base = { fingerprint, observation: o, inhibitedBy };
    if (inhibitedBy !== null) {
      decisions.push({ ...base, action: 'inhibit', notify: false });
    } else if (prev?.state === 'resolved' && prev.lastNotifiedAt !== null && ONCE_PER_PERIOD_KINDS.has(o.kind)) {
      // already announced for this period: it holds again, silently
      decisions.push({ ...base, action: 'refresh', notify: false });
    } else if (prev === undefined || prev.state === 'resolved' || prev.lastNotifiedAt === null) {
      decisions.push({ ...base, action: 'fire', notify: true });
    } else if (
      !ONE_SHOT_KINDS.has(o.kind) &&
      (prev.acknowledgedAt ?? null) === null &&
      input.now.getTime() - prev.lastNotifiedAt.getTime() >= input.repeatEveryMs(o)
    ) {
      decisions.push({ ...base, action: 'repeat', notify: true });
    } else {
      decisions.push({ ...base, action: 'refresh', notify: false });
    }
  }

  const kinds = new Set(input.kinds);
  const scopes = input.scopes === undefined ? null : new Set(input.scopes);
  for (const s of input.stored) {
    if (s.state !== 'firing' || observed.has(s.fingerprint) || !kinds.has(s.kind)) continue;
    if (scopes !== null && !scopes.has(`${s.scopeType}:${s.scopeId}`)) continue;
    // An alert that was only ever inhibited was never announced, so its end is not announced either.
    decisions.push({
      action: 'resolve',
      fingerprint: s.fingerprint,
      observation: null,
      notify: s.lastNotifiedAt !== null && !ONE_SHOT_KINDS.has(s.kind),
      inhibitedBy: null,
    });
  }
  return decisions;
}

interface AlertGroup {
  kind: AlertKind;
  event: 'firing' | 'repeat' | 'resolved';
  fingerprints: string[];
}

const EVENT_OF: Partial<Record<LifecycleAction, AlertGroup['event']>> = {
  fire: 'firing',
  repeat: 'repeat',
  resolve: 'resolved',
};

/**
 * Alerts of one kind that fire (or repeat, or resolve) in the same run go out as one message listing them: a storm
 * of 40 runaway keys is one Slack post, not 40. `kindOf` gives the kind of a resolved alert (it has no observation).
 * An alert whose message asks a person to decide (Approve/Deny, Deactivate, Reactivate) is its own group: the
 * buttons act on one alert, so a message listing several would carry none and the question would go unanswered.
 */
export function groupDecisions(
  decisions: readonly LifecycleDecision[],
  kindOf: (fingerprint: string) => AlertKind,
): AlertGroup[] {
  const groups = new Map<string, AlertGroup>();
  for (const d of decisions) {
    const event = EVENT_OF[d.action];
    if (!d.notify || event === undefined) continue;
    const kind = d.observation?.kind ?? kindOf(d.fingerprint);
    const alone = event !== 'resolved' && d.observation !== null && carriesDecision(kind, d.observation.details);
    const key = `${kind}\u0000${event}${alone ? `\u0000${d.fingerprint}` : ''}`;
    const group = groups.get(key) ?? { kind, event, fingerprints: [] };
    group.fingerprints.push(d.fingerprint);
    groups.set(key, group);
  }
  return [...groups.values()];
}
