import { sql } from 'kysely';
import type { Db } from '../index.ts';

/** A button offered on one Slack message: the row its `value` names. */
export interface SlackButton {
  id: string;
  notificationId: string;
  /** What it offers: `ack`, `snooze:4h`, … */
  choice: string;
  alertId: string;
  /** The episode of the alert the message spoke for: a press acts on that episode only. */
  episodeStartedAt: Date;
}

// gen_random_uuid()'s shape; anything else names no row (and would be a Postgres error, not an answer)
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The `slack_buttons` table: the rows Slack button values name (migrations/011_slack_actions.ts). */
export function actionsRepo(db: Db) {
  return {
    /**
     * The button rows (one per choice) for an outbox message about one firing alert, made on its first send and
     * the same on every retry; empty when the message speaks for no single alert or the alert no longer fires.
     */
    async offer(notificationId: string, choices: readonly string[], now: Date): Promise<Map<string, string>> {
      await sql`
        INSERT INTO slack_buttons (notification_id, choice, alert_id, episode_started_at, created_at)
        SELECT n.id, c.choice, a.id, a.started_at, ${now}
          FROM notifications n JOIN alerts a ON a.id = n.alert_id,
               unnest(${sql.val([...choices])}::text[]) AS c (choice)
         WHERE n.id = ${notificationId} AND a.state = 'firing'
        ON CONFLICT (notification_id, choice) DO NOTHING
      `.execute(db);
      const rows = await db
        .selectFrom('slack_buttons')
        .select(['id', 'choice'])
        .where('notification_id', '=', notificationId)
        .execute();
      return new Map(rows.map((r) => [r.choice, r.id]));
    },

    /** The button a pressed `value` names, or null when it names none (malformed, forged, or from elsewhere). */
    async find(value: string): Promise<SlackButton | null> {
      if (!UUID.test(value)) return null;
      const row = await db.selectFrom('slack_buttons').selectAll().where('id', '=', value).executeTakeFirst();
      if (row === undefined) return null;
      return {
        id: row.id,
        notificationId: row.notification_id,
        choice: row.choice,
        alertId: row.alert_id,
        episodeStartedAt: new Date(row.episode_started_at),
      };
    },
  };
}
