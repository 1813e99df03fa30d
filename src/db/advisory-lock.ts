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
 * An organization's own name for a lock: advisory locks span the database, and every organization's runs start on
 * the same tick, so a lock held while one organization's Admin API is awaited must not hold another's. Named from the
 * schema the organization is configured with (never from what a connection resolves at run time); public, or no
 * schema of its own, keeps the bare name every earlier version takes, so a rolling upgrade of one organization stays
 * exclusive.
 */
export function organizationLock(name: string, schema: string | undefined): string {
  return schema === undefined || schema === 'public' ? name : `${name}@${schema}`;
}

/** Runs `fn` holding the named lock; returns null at once, without running it, when another session holds it. */
export async function withAdvisoryLock<T>(db: Db, name: string, fn: () => Promise<T>): Promise<{ value: T } | null> {
  return db.connection().execute(async (conn) => {
    const got = await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(hashtext(${name})) AS ok`.execute(conn);
    if (!got.rows[0]?.ok) return null;
    try {
      return { value: await fn() };
    } finally {
      await sql`SELECT pg_advisory_unlock(hashtext(${name}))`.execute(conn);
    }
  });
}
