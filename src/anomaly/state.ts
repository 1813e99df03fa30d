import type { Db } from '../db/index.ts';
import type { Baseline, BaselineSource } from './core/baseline.ts';
import type { RunawayState } from './core/runaway.ts';

/** What detection remembers of one key or workspace between runs (table anomaly_state). */
export interface ScopeState {
  scopeType: 'key' | 'workspace';
  scopeId: string;
  runaway: RunawayState | null;
  /** The baseline of the hour `hour`: typicalRate reads complete hours only, so it holds for the whole hour. */
  baseline: { hour: Date; value: Baseline } | null;
  /** Workspace: a key alert of this workspace was firing when the episode fired, and says it already. */
  coveredByKey: boolean;
  /** Key: the episode (its start) for which the kill switch set the key inactive. */
  deactivatedFor: Date | null;
  /** Key: the commit time of the poll that first showed it above the hard cap in this episode (two polls act). */
  killSwitchEvidence: Date | null;
}

export const scopeKey = (scopeType: string, scopeId: string) => `${scopeType}:${scopeId}`;

const date = (d: Date | string | null) => (d === null ? null : new Date(d));

export async function loadStates(db: Db): Promise<Map<string, ScopeState>> {
  const rows = await db.selectFrom('anomaly_state').selectAll().execute();
  const out = new Map<string, ScopeState>();
  for (const r of rows) {
    const baseline =
      r.baseline_hour !== null && r.typical_hourly_usd !== null
        ? {
            hour: new Date(r.baseline_hour),
            value: {
              typicalHourlyUsd: r.typical_hourly_usd,
              source: (r.baseline_source ?? 'floor') as BaselineSource,
              samples: r.baseline_samples ?? 0,
              minuteDispersionUsd: r.minute_dispersion_usd,
              activeShare: r.active_share,
              persistence: r.persistence,
            },
          }
        : null;
    out.set(scopeKey(r.scope_type, r.scope_id), {
      scopeType: r.scope_type,
      scopeId: r.scope_id,
      runaway:
        r.evaluated_until === null
          ? null
          : {
              firing: r.firing,
              since: date(r.since),
              lastAbnormal: date(r.last_abnormal),
              evaluatedUntil: date(r.evaluated_until),
            },
      baseline,
      coveredByKey: r.covered_by_key,
      deactivatedFor: date(r.deactivated_for),
      killSwitchEvidence: date(r.kill_switch_evidence),
    });
  }
  return out;
}

/** Upserts the given states (the caller passes only those that changed). */
export async function saveStates(db: Db, states: readonly ScopeState[], now: Date): Promise<void> {
  for (let i = 0; i < states.length; i += 500) {
    const values = states.slice(i, i + 500).map((s) => ({
      scope_type: s.scopeType,
      scope_id: s.scopeId,
      firing: s.runaway?.firing ?? false,
      since: s.runaway?.since ?? null,
      last_abnormal: s.runaway?.lastAbnormal ?? null,
      evaluated_until: s.runaway?.evaluatedUntil ?? null,
      baseline_hour: s.baseline?.hour ?? null,
      typical_hourly_usd: s.baseline?.value.typicalHourlyUsd ?? null,
      baseline_source: s.baseline?.value.source ?? null,
      baseline_samples: s.baseline?.value.samples ?? null,
      minute_dispersion_usd: s.baseline?.value.minuteDispersionUsd ?? null,
      active_share: s.baseline?.value.activeShare ?? null,
      persistence: s.baseline?.value.persistence ?? null,
      covered_by_key: s.coveredByKey,
      deactivated_for: s.deactivatedFor,
      kill_switch_evidence: s.killSwitchEvidence,
      updated_at: now,
    }));
    await db
      .insertInto('anomaly_state')
      .values(values)
      .onConflict((oc) =>
        oc.columns(['scope_type', 'scope_id']).doUpdateSet((eb) => ({
          firing: eb.ref('excluded.firing'),
          since: eb.ref('excluded.since'),
          last_abnormal: eb.ref('excluded.last_abnormal'),
          evaluated_until: eb.ref('excluded.evaluated_until'),
          baseline_hour: eb.ref('excluded.baseline_hour'),
          typical_hourly_usd: eb.ref('excluded.typical_hourly_usd'),
          baseline_source: eb.ref('excluded.baseline_source'),
          baseline_samples: eb.ref('excluded.baseline_samples'),
          minute_dispersion_usd: eb.ref('excluded.minute_dispersion_usd'),
          active_share: eb.ref('excluded.active_share'),
          persistence: eb.ref('excluded.persistence'),
          covered_by_key: eb.ref('excluded.covered_by_key'),
          deactivated_for: eb.ref('excluded.deactivated_for'),
          kill_switch_evidence: eb.ref('excluded.kill_switch_evidence'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute();
  }
}
