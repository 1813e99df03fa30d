import type { Denial } from '../../rotation/core/types.ts';
import type { Db } from '../index.ts';

/** A Deny pressed on a rotation.approval_requested message, as the press handler records it. */
interface NewDenial {
  keyId: string;
  alertId: string;
  /** The episode of the alert the buttons were offered for: one answer per episode. */
  episodeStartedAt: Date;
  deniedBy: string;
  deniedByName: string | null;
  reason: string | null;
  deniedAt: Date;
  askAgainAt: Date;
}

/** The `rotation_denials` table (migrations/014_approvals.ts): people's answers "no" to a deactivation. */
export function approvalsRepo(db: Db) {
  return {
    /**
     * Records a denial once per alert episode; a second press of Deny (a double click, the other transport) keeps
     * the first. Returns the denial that stands and whether this call made it.
     */
    async deny(d: NewDenial): Promise<{ denial: Denial; created: boolean }> {
      const inserted = await db
        .insertInto('rotation_denials')
        .values({
          api_key_id: d.keyId,
          alert_id: d.alertId,
          episode_started_at: d.episodeStartedAt,
          denied_by: d.deniedBy,
          denied_by_name: d.deniedByName,
          reason: d.reason,
          denied_at: d.deniedAt,
          ask_again_at: d.askAgainAt,
        })
        .onConflict((oc) => oc.columns(['alert_id', 'episode_started_at']).doNothing())
        .returning(['denied_by', 'denied_at', 'ask_again_at', 'reason'])
        .executeTakeFirst();
      const row =
        inserted ??
        (await db
          .selectFrom('rotation_denials')
          .select(['denied_by', 'denied_at', 'ask_again_at', 'reason'])
          .where('alert_id', '=', d.alertId)
          .where('episode_started_at', '=', d.episodeStartedAt)
          .executeTakeFirstOrThrow());
      return { denial: denialOf(row), created: inserted !== undefined };
    },

    /** The newest denial of each key that has one: the rotation plan asks again after its ask_again_at. */
    async latestDenials(): Promise<Map<string, Denial>> {
      const rows = await db
        .selectFrom('rotation_denials')
        .distinctOn('api_key_id')
        .select(['api_key_id', 'denied_by', 'denied_at', 'ask_again_at', 'reason'])
        .orderBy('api_key_id')
        .orderBy('denied_at', 'desc')
        .execute();
      return new Map(rows.map((r) => [r.api_key_id, denialOf(r)]));
    },
  };
}

function denialOf(row: { denied_by: string; denied_at: Date; ask_again_at: Date; reason: string | null }): Denial {
  return {
    deniedBy: row.denied_by,
    deniedAt: new Date(row.denied_at),
    askAgainAt: new Date(row.ask_again_at),
    reason: row.reason,
  };
}
