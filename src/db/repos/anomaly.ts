import { type Insertable, type Selectable, sql } from 'kysely';
import type { Db } from '../index.ts';
import type { AnomalyStateTable } from '../types.ts';

export type AnomalyStateRow = Selectable<AnomalyStateTable>;
export type NewAnomalyStateRow = Insertable<AnomalyStateTable>;

/** Rows written per statement: well under Postgres's 65,535 bind parameters at 17 columns a row. */
const UPSERT_BATCH = 500;

/**
 * The `anomaly_state` table: what runaway detection remembers of each key and workspace between runs (its runaway
 * episode, its baseline of the hour, what the kill switch did in the episode and the evidence it holds).
 */
export function anomalyRepo(db: Db) {
  return {
    /** Every stored scope state (a few rows per key and workspace with spend: read whole each run). */
    async states(): Promise<AnomalyStateRow[]> {
      return db.selectFrom('anomaly_state').selectAll().execute();
    },

    /** Inserts or replaces the given states, keyed by scope; the caller passes only those that changed. */
    async saveStates(rows: readonly NewAnomalyStateRow[]): Promise<void> {
      for (let i = 0; i < rows.length; i += UPSERT_BATCH) {
        await db
          .insertInto('anomaly_state')
          .values(rows.slice(i, i + UPSERT_BATCH))
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
              // A state saved without the kill switch's record of its episode keeps the stored one: two runs at once
              // both save, and the one that did not act may save last (its reads predate the other's deactivation).
              deactivated_for: sql<Date | null>`CASE WHEN excluded.deactivated_for IS NULL AND excluded.firing
                AND anomaly_state.deactivated_for = excluded.since THEN anomaly_state.deactivated_for
                ELSE excluded.deactivated_for END`,
              kill_switch_evidence: eb.ref('excluded.kill_switch_evidence'),
              updated_at: eb.ref('excluded.updated_at'),
            })),
          )
          .execute();
      }
    },
  };
}
