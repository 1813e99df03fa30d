import type { Silence, SilenceMatchers } from '../../alerts/core/silences.ts';
import type { Db } from '../index.ts';

/** A silence with who made it and why, for `keywarden silence list`. */
export interface SilenceRecord extends Silence {
  createdBy: string;
  comment: string;
  createdAt: Date;
}

interface NewSilence {
  matchers: SilenceMatchers;
  startsAt: Date;
  endsAt: Date;
  createdBy: string;
  comment: string;
  /** The Snooze button that made it: one silence per button, however often it is pressed. */
  slackButtonId?: string;
}

type Row = Awaited<ReturnType<ReturnType<typeof selectSilences>['executeTakeFirstOrThrow']>>;

function selectSilences(db: Db) {
  return db.selectFrom('silences').selectAll();
}

function record(r: Row): SilenceRecord {
  return {
    id: r.id,
    matchers: r.matchers as SilenceMatchers,
    startsAt: new Date(r.starts_at),
    endsAt: new Date(r.ends_at),
    expiredAt: r.expired_at === null ? null : new Date(r.expired_at),
    createdBy: r.created_by,
    comment: r.comment,
    createdAt: new Date(r.created_at),
  };
}

/** The `silences` table (migrations/011_slack_actions.ts). */
export function silencesRepo(db: Db) {
  return {
    /** Stores a silence; `created` is false when its button already made one (that one is returned). */
    async add(s: NewSilence, now: Date): Promise<{ silence: SilenceRecord; created: boolean }> {
      const inserted = await db
        .insertInto('silences')
        .values({
          matchers: JSON.stringify(s.matchers),
          starts_at: s.startsAt,
          ends_at: s.endsAt,
          created_by: s.createdBy,
          comment: s.comment,
          created_at: now,
          slack_button_id: s.slackButtonId ?? null,
        })
        .onConflict((oc) => oc.column('slack_button_id').doNothing())
        .returningAll()
        .executeTakeFirst();
      if (inserted !== undefined) return { silence: record(inserted), created: true };
      const existing = await selectSilences(db)
        .where('slack_button_id', '=', s.slackButtonId ?? null)
        .executeTakeFirstOrThrow();
      return { silence: record(existing), created: false };
    },

    /** The silences in force at `now`: what a raise checks its alerts against. */
    async active(now: Date): Promise<SilenceRecord[]> {
      const rows = await selectSilences(db)
        .where('expired_at', 'is', null)
        .where('starts_at', '<=', now)
        .where('ends_at', '>', now)
        .execute();
      return rows.map(record);
    },

    /** For `keywarden silence list`: those in force or still to come, or every one with `all`; newest first. */
    async list(opts: { all: boolean; now: Date }): Promise<SilenceRecord[]> {
      let query = selectSilences(db).orderBy('created_at', 'desc').orderBy('id');
      if (!opts.all) query = query.where('expired_at', 'is', null).where('ends_at', '>', opts.now);
      return (await query.execute()).map(record);
    },

    /** Ends a silence now; false when no silence in force has that id. */
    async expire(id: string, now: Date): Promise<boolean> {
      if (!/^[0-9a-f-]{36}$/.test(id)) return false;
      const row = await db
        .updateTable('silences')
        .set({ expired_at: now })
        .where('id', '=', id)
        .where('expired_at', 'is', null)
        .where('ends_at', '>', now)
        .returning('id')
        .executeTakeFirst();
      return row !== undefined;
    },
  };
}
