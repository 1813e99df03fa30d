import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Route } from '../config/policy.ts';
import type { Db } from '../db/index.ts';
import type { DeliveryChannel } from '../db/types.ts';
import type { Severity } from '../kinds.ts';
import type {
  AlertFacts,
  Notification,
  NotificationEvent,
  NotificationField,
  NotificationLink,
} from '../notify/message.ts';
import { insertAlertNotification, type OutboxPayload } from '../notify/outbox.ts';
import { type RoutableAlert, routeAlert } from '../notify/routing.ts';
import { type AlertObservation, groupDecisions, observationFingerprint, planAlerts } from './lifecycle.ts';

/**
 * Applies the lifecycle's decisions to the `alerts` table and writes the outbox rows in ONE transaction: either the
 * state change and its notifications are both recorded, or neither is, so a crash can neither lose a notification
 * nor send one twice. Raising is serialised across replicas by a transaction-scoped advisory lock: two runs that
 * both saw "not firing yet" would otherwise both write a firing notification.
 */

export interface RaiseAlertsInput {
  /** The kinds the caller evaluated: their firing alerts that are not in `observations` resolve. */
  kinds: readonly string[];
  /** Limit resolution to these scopes (`scopeType:scopeId`) when the evaluation only covered some. */
  scopes?: readonly string[];
  observations: readonly AlertObservation[];
}

export interface RaiseAlertsResult {
  fired: number;
  repeated: number;
  resolved: number;
  /** Outbox rows written: one per (group, target). When > 0 the caller enqueues deliver-notifications. */
  notifications: number;
}

/** What an alert row keeps beyond its columns, so a resolve message can be written without the observation. */
interface StoredDetails {
  details: Record<string, unknown>;
  summary: string;
  fields: NotificationField[];
  links: NotificationLink[];
  workspaceName: string | null;
  keyOwnerEmail: string | null;
  /** Absent on alerts stored before receivers carried data. */
  scopeName?: string | null;
}

interface AlertView {
  fingerprint: string;
  kind: string;
  severity: Severity;
  scopeType: string;
  scopeId: string;
  workspaceId: string | null;
  title: string;
  stored: StoredDetails;
}

function detailsOf(o: AlertObservation): StoredDetails {
  return {
    details: o.details,
    summary: o.summary ?? '',
    fields: o.fields ?? [],
    links: o.links ?? [],
    workspaceName: o.workspaceName ?? null,
    keyOwnerEmail: o.keyOwnerEmail ?? null,
    scopeName: o.scopeName ?? (o.scopeType === 'workspace' ? (o.workspaceName ?? null) : null),
  };
}

function factsOf(a: AlertView): AlertFacts {
  return {
    fingerprint: a.fingerprint,
    kind: a.kind,
    severity: a.severity,
    title: a.title,
    scope: { type: a.scopeType, id: a.scopeId, name: a.stored.scopeName ?? null },
    workspace: { id: a.workspaceId, name: a.stored.workspaceName },
    details: a.stored.details,
  };
}

function routable(a: AlertView): RoutableAlert {
  return {
    kind: a.kind,
    severity: a.severity,
    workspaceId: a.workspaceId,
    workspaceName: a.stored.workspaceName,
    keyOwnerEmail: a.stored.keyOwnerEmail,
  };
}

const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

/** One message for one alert, or a list for several of one kind (a storm of runaways is one post). */
export function buildNotification(
  kind: string,
  event: NotificationEvent,
  alerts: AlertView[],
  notes: string[],
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
      summary: only.stored.summary,
      fields: only.stored.fields,
      links: only.stored.links,
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
    items: alerts.map((a) => ({ title: a.title, fields: a.stored.fields })),
    ...(footer === undefined ? {} : { footer }),
  };
}

function groupFingerprint(kind: string, fingerprints: string[]): string {
  const [only] = fingerprints;
  if (fingerprints.length === 1 && only !== undefined) return only;
  const digest = createHash('sha256')
    .update([...fingerprints].sort().join('\n'))
    .digest('hex')
    .slice(0, 16);
  return `group|${kind}|${digest}`;
}

export async function raiseAlerts(
  db: Db,
  input: RaiseAlertsInput,
  routes: readonly Route[],
  now: Date,
): Promise<RaiseAlertsResult> {
  return db.transaction().execute(async (trx) => {
    // Row locks cannot cover alerts that do not exist yet; one lock for all raising is cheap (runs are seconds apart).
    await sql`SELECT pg_advisory_xact_lock(hashtext('keywarden.raise-alerts'))`.execute(trx);
    const fps = input.observations.map(observationFingerprint);
    const rows = await trx
      .selectFrom('alerts')
      .selectAll()
      .where((eb) => {
        const ors = [];
        if (input.kinds.length > 0) ors.push(eb('kind', 'in', [...input.kinds]));
        if (fps.length > 0) ors.push(eb('fingerprint', 'in', fps));
        return eb.or(ors);
      })
      .execute();
    const byFp = new Map(rows.map((r) => [r.fingerprint, r]));
    const repeatOf = (o: AlertObservation) =>
      routeAlert(routable({ ...o, fingerprint: '', stored: detailsOf(o) }), routes).repeatEveryMs;
    const decisions = planAlerts({
      kinds: input.kinds,
      ...(input.scopes === undefined ? {} : { scopes: input.scopes }),
      observations: input.observations,
      stored: rows.map((r) => ({
        fingerprint: r.fingerprint,
        kind: r.kind,
        scopeType: r.scope_type,
        scopeId: r.scope_id,
        state: r.state,
        lastNotifiedAt: r.last_notified_at === null ? null : new Date(r.last_notified_at),
        inhibitedBy: r.inhibited_by,
      })),
      repeatEveryMs: repeatOf,
      now,
    });

    const views = new Map<string, AlertView>();
    const ids = new Map<string, string>();
    const result: RaiseAlertsResult = { fired: 0, repeated: 0, resolved: 0, notifications: 0 };
    for (const d of decisions) {
      const o = d.observation;
      if (o === null) {
        const r = byFp.get(d.fingerprint);
        if (r === undefined) continue;
        await trx
          .updateTable('alerts')
          .set({ state: 'resolved', resolved_at: now, ...(d.notify ? { last_notified_at: now } : {}) })
          .where('id', '=', r.id)
          .execute();
        result.resolved++;
        views.set(d.fingerprint, {
          fingerprint: d.fingerprint,
          kind: r.kind,
          severity: r.severity,
          scopeType: r.scope_type,
          scopeId: r.scope_id,
          workspaceId: r.workspace_id,
          title: r.title,
          stored: r.details as unknown as StoredDetails,
        });
        ids.set(d.fingerprint, r.id);
        continue;
      }
      const stored = detailsOf(o);
      const newEpisode = d.action === 'fire' && byFp.get(d.fingerprint)?.state !== 'firing';
      const columns = {
        kind: o.kind,
        severity: o.severity,
        scope_type: o.scopeType,
        scope_id: o.scopeId,
        workspace_id: o.workspaceId,
        period: o.period,
        state: 'firing' as const,
        // a once-per-period alert that lapsed and holds again is firing again, silently (lifecycle.ts)
        resolved_at: null,
        title: o.title,
        details: JSON.stringify(stored),
        last_seen_at: now,
        inhibited_by: d.inhibitedBy,
        ...(d.notify ? { last_notified_at: now } : {}),
        ...(newEpisode || (d.action === 'inhibit' && byFp.get(d.fingerprint)?.state !== 'firing')
          ? { started_at: now, resolved_at: null }
          : {}),
      };
      const row = await trx
        .insertInto('alerts')
        .values({ fingerprint: d.fingerprint, started_at: now, ...columns })
        .onConflict((oc) => oc.column('fingerprint').doUpdateSet(columns))
        .returning('id')
        .executeTakeFirstOrThrow();
      ids.set(d.fingerprint, row.id);
      views.set(d.fingerprint, {
        fingerprint: d.fingerprint,
        kind: o.kind,
        severity: o.severity,
        scopeType: o.scopeType,
        scopeId: o.scopeId,
        workspaceId: o.workspaceId,
        title: o.title,
        stored,
      });
      if (d.action === 'fire') result.fired++;
      if (d.action === 'repeat') result.repeated++;
    }

    const kindOf = (fp: string) => views.get(fp)?.kind ?? '';
    for (const group of groupDecisions(decisions, kindOf)) {
      // Alerts of one group may route differently (workspace routes): split by target, one message per target.
      const perTarget = new Map<
        string,
        { channel: DeliveryChannel; target: string; alerts: AlertView[]; notes: Set<string> }
      >();
      for (const fp of group.fingerprints) {
        const view = views.get(fp);
        if (view === undefined) continue;
        const routing = routeAlert(routable(view), routes);
        for (const t of routing.targets) {
          // PagerDuty gets one event per alert: its dedup_key is the alert's fingerprint, one incident each
          const key = `${t.channel}\u0000${t.target}${t.channel === 'pagerduty' ? `\u0000${fp}` : ''}`;
          const entry = perTarget.get(key) ?? { ...t, alerts: [], notes: new Set<string>() };
          entry.alerts.push(view);
          for (const n of routing.notes) entry.notes.add(n);
          perTarget.set(key, entry);
        }
      }
      for (const t of perTarget.values()) {
        const fingerprints = t.alerts.map((a) => a.fingerprint);
        const fingerprint = groupFingerprint(group.kind, fingerprints);
        const payload: OutboxPayload = {
          notification: buildNotification(group.kind, group.event, t.alerts, [...t.notes]),
          fingerprints,
          alerts: t.alerts.map(factsOf),
        };
        const [firstAlert] = fingerprints;
        await insertAlertNotification(
          trx,
          {
            alertId: fingerprints.length === 1 && firstAlert !== undefined ? (ids.get(firstAlert) ?? null) : null,
            fingerprint,
            event: group.event,
            channel: t.channel,
            target: t.target,
            payload,
          },
          now,
        );
        result.notifications++;
      }
    }
    return result;
  });
}
