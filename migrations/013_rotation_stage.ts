import { type Kysely, sql } from 'kysely';

/**
 * A key's rotation stage is a word from a fixed list (RotationStage in src/kinds.ts), and the reminder stage a
 * `due_soon` key stands at has a column of its own, so readers no longer take `due_in_14d` apart. Rows written
 * before are rewritten here; enforce-rotation rewrites every row on its next run anyway.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE rotation_state ADD COLUMN reminder_days integer`.execute(db);
  await sql`
    UPDATE rotation_state
       SET reminder_days = substring(stage FROM '^due_in_([0-9]+)d$')::integer, stage = 'due_soon'
     WHERE stage ~ '^due_in_[0-9]+d$'
  `.execute(db);
  await sql`
    UPDATE rotation_state SET stage = 'not_active'
     WHERE stage NOT IN ('ok', 'due_soon', 'overdue', 'grace', 'blocked', 'hold', 'deactivate', 'would_deactivate',
                         'deferred', 'exempt', 'inactive', 'archived', 'expired', 'not_active')
  `.execute(db);
}
