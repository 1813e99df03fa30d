import { sql } from 'kysely';
import type { Db } from '../index.ts';

/** A button offered on one Slack message: the row its `value` names. */
export interface SlackButton {
  id: string;
  notificationId: string;
  alertId: string;
  /** The episode of the alert the message spoke for: a press acts on that episode only. */
  episodeStartedAt: Date;
}

// gen_random_uuid()'s shape; anything else names no row (and would be a Postgres error, not an answer)
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The `slack_buttons` table: the rows Slack button values name (migrations/010_slack_actions.ts). */
export function actionsRepo(db: Db) {
  return {
    /**
     * The button row for an outbox message about one firing alert, made on its first send and the same on every
     * retry; null when the message speaks for no single alert or the alert no longer fires (no button then).
     */
    async offer(notificationId: string, now: Date): Promise<string | null> {
      const { rows } = await sql<{ id: string }>`
        WITH made AS (
          INSERT INTO slack_buttons (notification_id, alert_id, episode_started_at, created_at)
          SELECT n.id, a.id, a.started_at, ${now}
            FROM notifications n JOIN alerts a ON a.id = n.alert_id
           WHERE n.id = ${notificationId} AND a.state = 'firing'
          ON CONFLICT (notification_id) DO NOTHING
          RETURNING id
        )
        SELECT id FROM made UNION ALL SELECT id FROM slack_buttons WHERE notification_id = ${notificationId}
      `.execute(db);
      return rows[0]?.id ?? null;
    },

    /** The button a pressed `value` names, or null when it names none (malformed, forged, or from elsewhere). */
    async find(value: string): Promise<SlackButton | null> {
      if (!UUID.test(value)) return null;
      const row = await db.selectFrom('slack_buttons').selectAll().where('id', '=', value).executeTakeFirst();
      if (row === undefined) return null;
      return {
        id: row.id,
        notificationId: row.notification_id,
        alertId: row.alert_id,
        episodeStartedAt: new Date(row.episode_started_at),
      };
    },
  };
}
