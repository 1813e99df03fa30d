import { type Insertable, type Selectable, sql } from 'kysely';
import type { Db } from '../index.ts';
import type { AnomalyMarksTable, AnomalyStateTable } from '../types.ts';

export type AnomalyStateRow = Selectable<AnomalyStateTable>;
export type NewAnomalyStateRow = Insertable<AnomalyStateTable>;
export type AnomalyMarkRow = Selectable<AnomalyMarksTable>;

/** A "Mark as expected" as a button press makes it (migrations/015_anomaly_marks.ts). */
export interface NewAnomalyMark {
  scopeType: 'key' | 'workspace';
  scopeId: string;
  coveredHourlyUsd: number;
  startsAt: Date;
  until: Date;
  markedBy: string;
  alertId: string | null;
  slackButtonId: string | null;
}

/** Rows written per statement: well under Postgres's 65,535 bind parameters at 18 columns a row. */
const UPSERT_BATCH = 500;

/**
 * The `anomaly_state` table: what runaway detection remembers of each key and workspace between runs (its runaway
 * episode, its baseline of the hour, what the kill switch did in the episode and the evidence it holds); and the
 * `anomaly_marks` table: the "Mark as expected" marks people made from runaway alerts.
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
              cleared_at: eb.ref('excluded.cleared_at'),
              updated_at: eb.ref('excluded.updated_at'),
            })),
          )
          .execute();
      }
    },

    /**
     * Records a mark; a second press of the same button (`slackButtonId`) makes none and returns the first one,
     * with `created` false.
     */
    async addMark(mark: NewAnomalyMark, now: Date): Promise<{ mark: AnomalyMarkRow; created: boolean }> {
      const inserted = await db
        .insertInto('anomaly_marks')
        .values({
          scope_type: mark.scopeType,
          scope_id: mark.scopeId,
          covered_hourly_usd: mark.coveredHourlyUsd,
          starts_at: mark.startsAt,
          until: mark.until,
          marked_by: mark.markedBy,
          alert_id: mark.alertId,
          slack_button_id: mark.slackButtonId,
          created_at: now,
        })
        .onConflict((oc) => oc.column('slack_button_id').doNothing())
        .returningAll()
        .executeTakeFirst();
      if (inserted !== undefined) return { mark: inserted, created: true };
      const existing = await db
        .selectFrom('anomaly_marks')
        .selectAll()
        .where('slack_button_id', '=', mark.slackButtonId)
        .executeTakeFirstOrThrow();
      return { mark: existing, created: false };
    },

    /** The marks that hold at `at` (started, not yet ended): few, read whole each detection run. */
    async holdingMarks(at: Date): Promise<AnomalyMarkRow[]> {
      return db.selectFrom('anomaly_marks').selectAll().where('starts_at', '<=', at).where('until', '>', at).execute();
    },
  };
}
