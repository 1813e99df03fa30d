import { setImmediate } from 'node:timers/promises';
import type { Route } from '../config/policy.ts';
import type { Context } from '../context.ts';
import type { AlertRecord, RaiseTransaction } from '../db/repos/alerts.ts';
import type { AlertKind, Severity } from '../kinds.ts';
import type { AlertFacts, Notification, NotificationEvent } from '../notify/message.ts';
import type { OutboxPayload } from '../notify/outbox.ts';
import { type RouteTarget, routeAlert } from '../notify/routing.ts';
import { type AlertObservation, observationFingerprint } from './core/lifecycle.ts';
import {
  type AlertContent,
  type AlertView,
  planRaiseInSteps,
  type RaisePlan,
  type StoredAlertView,
} from './core/plan.ts';

/**
 * Raising alerts: load what the store remembers, plan (alerts/core/plan.ts, pure), apply the plan to the `alerts`
 * table and write its messages to the outbox, all in ONE transaction under the raise lock (alertsRepo.raising):
 * either the state change and its messages are both recorded, or neither is, so a crash can neither lose a message
 * nor send one twice.
 */

export interface RaiseAlertsInput {
  /** The kinds the caller evaluated: their firing alerts that are not in `observations` resolve. */
  kinds: readonly AlertKind[];
  /** Limit resolution to these scopes (`scopeType:scopeId`) when the evaluation only covered some. */
  scopes?: readonly string[];
  observations: readonly AlertObservation[];
  /** A note the resolve message of a scope's alert carries (`scopeType:scopeId`), e.g. who marked it expected. */
  resolveNotes?: ReadonlyMap<string, string>;
}

export interface RaiseAlertsResult {
  fired: number;
  repeated: number;
  resolved: number;
  /** Outbox rows written: one per (group, target). When > 0 the caller enqueues deliver-notifications. */
  notifications: number;
}

export async function raiseAlerts(
  ctx: Pick<Context, 'repos'>,
  input: RaiseAlertsInput,
  routes: readonly Route[],
  now: Date,
): Promise<RaiseAlertsResult> {
  const silences = await ctx.repos.silences.active(now);
  return ctx.repos.alerts.raising(async (tx) => {
    const stored = await tx.alerts.forRaise(input.kinds, input.observations.map(observationFingerprint));
    const steps = planRaiseInSteps({
      ...input,
      stored: stored.map(storedView),
      silences,
      route: (alert) => routeAlert(alert, routes),
      now,
    });
    // other work (the heartbeat, other jobs' I/O) runs between the steps of a plan of thousands of alerts
    let step = steps.next();
    while (!step.done) {
      await setImmediate();
      step = steps.next();
    }
    return applyRaise(tx, step.value, now);
  });
}

function storedView(r: AlertRecord): StoredAlertView {
  // the raise stored the alert's content in `details` (FiringAlertRow): read back as written
  return { ...r, content: r.details as unknown as AlertContent };
}

async function applyRaise(tx: RaiseTransaction, plan: RaisePlan<RouteTarget>, now: Date): Promise<RaiseAlertsResult> {
  const ids = new Map<string, string>();
  const seen: string[] = [];
  for (const w of plan.writes) {
    if (w.op === 'seen') {
      seen.push(w.id);
      ids.set(w.fingerprint, w.id);
    } else if (w.op === 'resolve') {
      await tx.alerts.resolve(w.id, now, w.notified);
      ids.set(w.fingerprint, w.id);
    } else {
      ids.set(w.row.fingerprint, await tx.alerts.fire(w.row, now, w));
    }
  }
  await tx.alerts.seen(seen, now);
  for (const m of plan.messages) {
    const payload: OutboxPayload = {
      notification: alertNotification(m.kind, m.event, m.alerts, m.notes),
      fingerprints: m.alerts.map((a) => a.fingerprint),
      alerts: m.alerts.map(alertFacts),
    };
    await tx.outbox.insertAlertMessage(
      {
        alertId: m.alertFingerprint === null ? null : (ids.get(m.alertFingerprint) ?? null),
        fingerprint: m.fingerprint,
        event: m.event,
        channel: m.to.channel,
        target: m.to.target,
        payload,
      },
      now,
    );
  }
  return { fired: plan.fired, repeated: plan.repeated, resolved: plan.resolved, notifications: plan.messages.length };
}

/** An alert as data, for the receivers that send it so (webhooks, PagerDuty's custom_details). */
function alertFacts(a: AlertView): AlertFacts {
  return {
    fingerprint: a.fingerprint,
    kind: a.kind,
    severity: a.severity,
    title: a.title,
    scope: { type: a.scopeType, id: a.scopeId, name: a.content.scopeName ?? null },
    workspace: { id: a.workspaceId, name: a.workspaceName },
    details: a.content.details,
  };
}

const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

/** One message for one alert, or a list for several of one kind (a storm of runaways is one post). */
function alertNotification(
  kind: AlertKind,
  event: NotificationEvent,
  alerts: readonly AlertView[],
  notes: readonly string[],
): Notification {
  const severity = alerts.reduce<Severity>(
    (s, a) => (SEVERITY_RANK[a.severity] > SEVERITY_RANK[s] ? a.severity : s),
    'info',
  );
  const footer = notes.length > 0 ? notes.join(' ') : undefined;
  const [only] = alerts;
  if (alerts.length === 1 && only !== undefined) {
    return {
      kind,
      event,
      severity,
      // the renderer adds the event's prefix ("Resolved: ", "Still firing: ")
      title: only.title,
      summary: only.content.summary,
      fields: only.content.fields,
      links: only.content.links,
      ...(footer === undefined ? {} : { footer }),
    };
  }
  return {
    kind,
    event,
    severity,
    title: `${alerts.length} alerts: ${kind}`,
    summary: '',
    fields: [],
    links: [],
    items: alerts.map((a) => ({ title: a.title, fields: a.content.fields })),
    ...(footer === undefined ? {} : { footer }),
  };
}
