import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { AlertKind, AlertSubject } from '../../kinds.ts';
import {
  type AlertField,
  type AlertLink,
  type AlertObservation,
  groupDecisions,
  type LifecycleDecision,
  observationFingerprint,
  planAlerts,
  type StoredAlert,
} from './lifecycle.ts';
import { type Silence, silencedBy } from './silences.ts';

/**
 * One raise, planned: the lifecycle's decisions (lifecycle.ts), the alert rows they write, and the messages they send
 * to each target. Pure: the store loads, calls this, and applies the plan in one transaction. Each alert is routed
 * once; its routing gives both its repeat interval and its targets.
 */

/** What an alert row keeps beyond its columns, so a resolve message can be written without the observation. */
export interface AlertContent {
  details: Record<string, unknown>;
  summary: string;
  fields: AlertField[];
  links: AlertLink[];
  workspaceName: string | null;
  keyOwnerEmail: string | null;
  /** The key's or workspace's name, for the receivers that send alerts as data; absent on alerts stored before them. */
  scopeName?: string | null;
}

/** An alert as routing and messages see it: from this run's observation, or from the store when it resolves. */
export interface AlertView extends AlertSubject {
  fingerprint: string;
  /** Routing matches workspace routes on the name too, and sends `key_owner` mail to this address. */
  workspaceName: string | null;
  keyOwnerEmail: string | null;
  content: AlertContent;
}

/** A stored alert with what a resolve message needs. */
export interface StoredAlertView extends StoredAlert, AlertSubject {
  id: string;
  content: AlertContent;
}

/** Where a message goes: a channel (`slack`, `email`, …) and a target in it. */
export interface Destination {
  channel: string;
  target: string;
}

/** What routing says about one alert. */
export interface AlertRouting<D extends Destination> {
  targets: readonly D[];
  /** The interval at which a still-firing alert is said again (ms). */
  repeatEveryMs: number;
  /** Facts shown with the alert (e.g. a `key_owner` recipient that could not be resolved). */
  notes: readonly string[];
}

interface RaisePlanInput<D extends Destination> {
  /** The kinds the caller evaluated: their firing alerts that are not in `observations` resolve. */
  kinds: readonly AlertKind[];
  /** Limit resolution to these scopes (`scopeType:scopeId`) when the evaluation only covered some. */
  scopes?: readonly string[];
  observations: readonly AlertObservation[];
  /** The stored alerts of `kinds` and of the observations' fingerprints. */
  stored: readonly StoredAlertView[];
  /** The routes, as a function: pure, called once per alert. */
  route: (alert: AlertView) => AlertRouting<D>;
  /**
   * Silences in force (core/silences.ts): a silenced alert fires and resolves in the record but says nothing, and
   * is not marked notified, so once the silence ends it is said as if it had just started (or repeats, or resolves).
   */
  silences?: readonly Silence[];
  /** A note the resolve message of a scope's alert carries (`scopeType:scopeId`). */
  resolveNotes?: ReadonlyMap<string, string>;
  now: Date;
}

/** The columns of an alert that fires (or is seen firing, or is inhibited) in this run. */
export interface FiringAlertRow extends AlertSubject {
  fingerprint: string;
  details: AlertContent;
  inhibitedBy: string | null;
}

type AlertWrite =
  /** Resolved; `notified` moves `last_notified_at` (the resolve is said). */
  | { op: 'resolve'; fingerprint: string; id: string; notified: boolean }
  /** Firing: `notified` moves `last_notified_at`; `newEpisode` restarts `started_at` (and clears `resolved_at`). */
  | { op: 'fire'; row: FiringAlertRow; notified: boolean; newEpisode: boolean }
  /**
   * Still firing exactly as stored (same title, severity, content, inhibition), nothing said: only `last_seen_at`
   * moves, in one statement for all of them. A sync that sees thousands of standing findings every run rewrites none.
   */
  | { op: 'seen'; fingerprint: string; id: string };

/** One message for one target: several alerts of one kind and event go out as one (a storm is one post). */
interface PlannedMessage<D extends Destination> {
  kind: AlertKind;
  event: 'firing' | 'repeat' | 'resolved';
  to: D;
  alerts: AlertView[];
  notes: string[];
  /** The message's identity in the outbox: the alert's fingerprint, or a digest of the group's. */
  fingerprint: string;
  /** The alert the message speaks for when it speaks for one: its row is linked to that alert. */
  alertFingerprint: string | null;
}

export interface RaisePlan<D extends Destination> {
  writes: AlertWrite[];
  messages: PlannedMessage<D>[];
  fired: number;
  repeated: number;
  resolved: number;
}

function view(fingerprint: string, a: AlertSubject, content: AlertContent): AlertView {
  const { kind, severity, scopeType, scopeId, workspaceId, period, title } = a;
  const { workspaceName, keyOwnerEmail } = content;
  return {
    fingerprint,
    kind,
    severity,
    scopeType,
    scopeId,
    workspaceId,
    period,
    title,
    workspaceName,
    keyOwnerEmail,
    content,
  };
}

function viewOf(o: AlertObservation): AlertView {
  return view(observationFingerprint(o), o, {
    details: o.details,
    summary: o.summary ?? '',
    fields: o.fields ?? [],
    links: o.links ?? [],
    workspaceName: o.workspaceName ?? null,
    keyOwnerEmail: o.keyOwnerEmail ?? null,
    scopeName: o.scopeName ?? (o.scopeType === 'workspace' ? (o.workspaceName ?? null) : null),
  });
}

const storedView = (s: StoredAlertView): AlertView => view(s.fingerprint, s, s.content);

/** A group's outbox fingerprint: the alert's own for one, else stable for the same set of alerts. */
function groupFingerprint(kind: AlertKind, fingerprints: readonly string[]): string {
  const [only] = fingerprints;
  if (fingerprints.length === 1 && only !== undefined) return only;
  const digest = createHash('sha256')
    .update([...fingerprints].sort().join('\n'))
    .digest('hex')
    .slice(0, 16);
  return `group|${kind}|${digest}`;
}

function writeOf(d: LifecycleDecision, view: AlertView, prev: StoredAlertView | undefined) {
  // An alert that starts firing (or is first stored inhibited) starts an episode; one that was firing keeps its start.
  const newEpisode = (d.action === 'fire' || d.action === 'inhibit') && prev?.state !== 'firing';
  const { workspaceName: _name, keyOwnerEmail: _owner, content, ...subject } = view;
  const row: FiringAlertRow = { ...subject, details: content, inhibitedBy: d.inhibitedBy };
  return { op: 'fire' as const, row, notified: d.notify, newEpisode };
}

/** The content as its row holds it (jsonb: no `undefined` members, dates as strings), to compare with a stored one. */
const asStored = (content: AlertContent): unknown => JSON.parse(JSON.stringify(content));

/** Whether a quiet decision (refresh, inhibit) would write the row exactly as it is stored. */
function unchanged(d: LifecycleDecision, view: AlertView, prev: StoredAlertView | undefined): prev is StoredAlertView {
  return (
    (d.action === 'refresh' || d.action === 'inhibit') &&
    prev !== undefined &&
    prev.state === 'firing' &&
    prev.inhibitedBy === d.inhibitedBy &&
    prev.title === view.title &&
    prev.severity === view.severity &&
    prev.workspaceId === view.workspaceId &&
    isDeepStrictEqual(prev.content, asStored(view.content))
  );
}

/** A raise's plan at once: for the few alerts of most evaluations (and for tests). */
export function planRaise<D extends Destination>(input: RaisePlanInput<D>): RaisePlan<D> {
  const steps = planRaiseInSteps(input);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** Decisions planned between two yields of planRaiseInSteps. */
const STEP_DECISIONS = 500;

/**
 * The same plan in steps: it yields after each STEP_DECISIONS decisions and returns the plan, so a caller planning
 * thousands of alerts (a sync's standing findings) lets other work run between steps instead of holding the event
 * loop for the whole pass. Pure: the caller decides how to wait between steps.
 */
export function* planRaiseInSteps<D extends Destination>(
  input: RaisePlanInput<D>,
): Generator<void, RaisePlan<D>, void> {
  const stored = new Map(input.stored.map((s) => [s.fingerprint, s]));
  const routings = new Map<string, AlertRouting<D>>();
  const routingOf = (view: AlertView): AlertRouting<D> => {
    let r = routings.get(view.fingerprint);
    if (r === undefined) {
      r = input.route(view);
      routings.set(view.fingerprint, r);
    }
    return r;
  };

  const planned = planAlerts({
    kinds: input.kinds,
    ...(input.scopes === undefined ? {} : { scopes: input.scopes }),
    observations: input.observations,
    stored: input.stored,
    // asked only for the observation the lifecycle keeps of each fingerprint: the one its message routes by below
    repeatEveryMs: (o) => routingOf(viewOf(o)).repeatEveryMs,
    now: input.now,
  });
  yield;

  const silences = input.silences ?? [];
  const decisions = planned.map((d) => {
    if (!d.notify || silences.length === 0) return d;
    const prev = stored.get(d.fingerprint);
    const view = d.observation !== null ? viewOf(d.observation) : prev === undefined ? null : storedView(prev);
    return view !== null && silencedBy(silences, view, input.now) !== null ? { ...d, notify: false } : d;
  });

  const plan: RaisePlan<D> = { writes: [], messages: [], fired: 0, repeated: 0, resolved: 0 };
  const decided = new Map<string, AlertView>();
  for (const [i, d] of decisions.entries()) {
    if (i > 0 && i % STEP_DECISIONS === 0) yield;
    const prev = stored.get(d.fingerprint);
    if (d.observation === null) {
      if (prev === undefined) continue;
      plan.writes.push({ op: 'resolve', fingerprint: d.fingerprint, id: prev.id, notified: d.notify });
      decided.set(d.fingerprint, storedView(prev));
      plan.resolved++;
      continue;
    }
    const view = viewOf(d.observation);
    plan.writes.push(
      unchanged(d, view, prev) ? { op: 'seen', fingerprint: d.fingerprint, id: prev.id } : writeOf(d, view, prev),
    );
    decided.set(d.fingerprint, view);
    if (d.action === 'fire') plan.fired++;
    if (d.action === 'repeat') plan.repeated++;
  }

  const kindOf = (fp: string): AlertKind => {
    const view = decided.get(fp);
    if (view === undefined) throw new Error(`no alert decided for fingerprint ${fp}`);
    return view.kind;
  };
  for (const group of groupDecisions(decisions, kindOf)) {
    // Alerts of one group may route differently (workspace routes): one message per target, listing its alerts.
    const perTarget = new Map<string, { to: D; alerts: AlertView[]; notes: Set<string> }>();
    for (const fp of group.fingerprints) {
      const view = decided.get(fp);
      if (view === undefined) continue;
      const routing = routingOf(view);
      for (const to of routing.targets) {
        // PagerDuty gets one message per alert: its dedup_key is the alert's fingerprint, one incident each
        const key = `${to.channel}\u0000${to.target}${to.channel === 'pagerduty' ? `\u0000${fp}` : ''}`;
        const entry = perTarget.get(key) ?? { to, alerts: [], notes: new Set<string>() };
        entry.alerts.push(view);
        for (const n of routing.notes) entry.notes.add(n);
        const resolveNote =
          group.event === 'resolved' ? input.resolveNotes?.get(`${view.scopeType}:${view.scopeId}`) : undefined;
        if (resolveNote !== undefined) entry.notes.add(resolveNote);
        perTarget.set(key, entry);
      }
    }
    for (const t of perTarget.values()) {
      const fingerprints = t.alerts.map((a) => a.fingerprint);
      const [only] = fingerprints;
      plan.messages.push({
        kind: group.kind,
        event: group.event,
        to: t.to,
        alerts: t.alerts,
        notes: [...t.notes],
        fingerprint: groupFingerprint(group.kind, fingerprints),
        alertFingerprint: fingerprints.length === 1 && only !== undefined ? only : null,
      });
    }
  }
  return plan;
}
