import type { AnomalyMarkRow, AnomalyStateRow, NewAnomalyStateRow } from '../db/repos/anomaly.ts';
import type { BaselineSource } from './core/baseline.ts';
import type { ExpectedMark } from './core/expected.ts';
import { type ScopeState, scopeKey } from './core/plan.ts';

/** Detection's state between runs, as the anomaly repository stores it (one row per key or workspace). */

const date = (d: Date | string | null) => (d === null ? null : new Date(d));

export function statesFromRows(rows: readonly AnomalyStateRow[]): Map<string, ScopeState> {
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
              clearedAt: date(r.cleared_at),
            },
      baseline,
      coveredByKey: r.covered_by_key,
      deactivatedFor: date(r.deactivated_for),
      killSwitchEvidence: date(r.kill_switch_evidence),
    });
  }
  return out;
}

export function stateRow(s: ScopeState, now: Date): NewAnomalyStateRow {
  return {
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
    cleared_at: s.runaway?.clearedAt ?? null,
    updated_at: now,
  };
}

export function markFromRow(r: AnomalyMarkRow): ExpectedMark {
  return {
    scopeType: r.scope_type,
    scopeId: r.scope_id,
    coveredHourlyUsd: r.covered_hourly_usd,
    startsAt: new Date(r.starts_at),
    until: new Date(r.until),
    markedBy: r.marked_by,
  };
}
