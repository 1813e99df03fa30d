import { sql } from 'kysely';
import type { Db } from './index.ts';

/**
 * Key status changes happen one run at a time across every process: the worker's jobs and an operator's
 * `keywarden run … --once` or `keys reactivate` (which run outside BullMQ, so BullMQ's own job locks do not cover
 * them); shells take it through `repos.keys.withStatusLock`. The lock is a Postgres session lock on a connection
 * held for the run: a process that dies drops its connection, and the lock with it.
 */
export const KEY_STATUS_LOCK = 'keywarden.key-status';

/**
 * Runs `fn` holding the named lock; returns null at once, without running it, when another session holds it.
 * `perSchema`: the lock of the connection's schema (an organization's), as advisory locks span the database; the
 * `public` schema (the one organization of a file without `organizations:`) keeps the bare name it always had.
 */
export async function withAdvisoryLock<T>(
  db: Db,
  name: string,
  fn: () => Promise<T>,
  opts: { perSchema?: boolean } = {},
): Promise<{ value: T } | null> {
  const key = opts.perSchema
    ? sql`hashtext(CASE WHEN current_schema() = 'public' THEN ${name} ELSE ${name} || '@' || current_schema() END)`
    : sql`hashtext(${name})`;
  return db.connection().execute(async (conn) => {
    const got = await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(${key}) AS ok`.execute(conn);
    if (!got.rows[0]?.ok) return null;
    try {
      return { value: await fn() };
    } finally {
      await sql`SELECT pg_advisory_unlock(${key})`.execute(conn);
    }
  });
}
