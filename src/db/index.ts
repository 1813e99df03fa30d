import { Kysely, PostgresDialect, sql } from 'kysely';
import { type MigrationResultSet, Migrator } from 'kysely/migration';
import pg from 'pg';
import { migrations } from '../../migrations/index.ts';
import type { Secret } from '../config/secret.ts';
import type { Database } from './types.ts';

export type { Database } from './types.ts';
export type Db = Kysely<Database>;

// timestamptz without time zone conversions surprises: pg parses it to a Date in UTC already. `date` columns
// (1082) stay strings: a calendar day in the organization's timezone is not an instant.
pg.types.setTypeParser(1082, (v) => v);

/** A schema keywarden may name on a connection: an organization's `kw_<id>`, or `public`. */
const SCHEMA_NAME = /^(public|kw_[a-z][a-z0-9_]{0,30})$/;

export function createDb(
  url: Secret | string,
  options: { max?: number; applicationName?: string; schema?: string } = {},
): Db {
  const connectionString = typeof url === 'string' ? url : url.reveal();
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new Error(`"${options.schema}" is not an organization's schema (public or kw_<id>)`);
  }
  const pool = new pg.Pool({
    connectionString,
    // An organization's rows are found by where they are: its schema alone on the path, never with public behind
    // it, so a table missing from the schema fails rather than reading another organization's rows
    ...(options.schema !== undefined ? { options: `-c search_path=${options.schema}` } : {}),
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'keywarden',
    // A dead Postgres must not hang a job forever: fail the attempt, let the job retry.
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection (Postgres restarted) emits 'error' on the pool; without a listener that
  // would crash the process. The next query gets a fresh connection.
  pool.on('error', () => {});
  // A client checked out between two queries (inside a transaction) has no pool listener: when Postgres dies it
  // emits 'error' itself, which crashed the worker (fault drill 3). The transaction's next query fails instead, and
  // the pool drops the broken client on release.
  pool.on('connect', (client) => client.on('error', () => {}));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

export function createMigrator(db: Db, schema?: string): Migrator {
  return new Migrator({
    // migrations are written against Kysely<unknown>: they must not depend on today's table types
    db: db as unknown as Kysely<unknown>,
    provider: { getMigrations: async () => migrations },
    // Kysely looks for its migration table in every schema unless told which: another organization's would count
    ...(schema !== undefined ? { migrationTableSchema: schema } : {}),
  });
}

/**
 * Applies every pending migration (in `schema`, created if missing, when given: `db` must have it alone on its
 * path); throws with the failing migration's name, or on a schema ahead of the code.
 */
export async function migrateToLatest(db: Db, schema?: string): Promise<MigrationResultSet> {
  // public exists, and creating it (even "if not exists") may need a right the tables' owner lacks
  if (schema !== undefined && schema !== 'public') {
    await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(db);
  }
  // Kysely would refuse too, but as "corrupted migrations" with no migration named as failed
  const { unknown } = await schemaState(db);
  if (unknown.length > 0) throw new Error(aheadMessage(unknown));
  const result = await createMigrator(db, schema).migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    const cause = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(`migration ${failed} failed: ${cause}`, { cause: result.error });
  }
  return result;
}

/** Migrations this code knows that the database lacks, and ones the database has that this code does not know. */
async function schemaState(db: Db): Promise<{ pending: string[]; unknown: string[] }> {
  const known = Object.keys(migrations);
  // a database never migrated has no migration table at all
  const { rows: table } = await sql<{ exists: boolean }>`
    SELECT to_regclass('kysely_migration') IS NOT NULL AS exists`.execute(db);
  const { rows } = table[0]?.exists
    ? await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(db)
    : { rows: [] };
  const applied = new Set(rows.map((r) => r.name));
  return {
    pending: known.filter((name) => !applied.has(name)),
    unknown: [...applied].filter((name) => !known.includes(name)),
  };
}

/**
 * A schema ahead of the code: a newer release applied migrations this one does not know, and its image was rolled
 * back. Older code on a newer schema would write rows the newer constraints refuse, or miss what the new tables
 * hold, so it refuses rather than guess; migrations have no `down()`, so the way back is the release that applied
 * them, or the database backup taken before (README "Upgrading and rolling back").
 */
function aheadMessage(unknown: readonly string[]): string {
  return (
    `the database schema is ahead of this code (${unknown.join(', ')} applied by a newer keywarden): run the ` +
    `release that applied it, or restore the database backup taken before it (this code knows up to ${Object.keys(migrations).at(-1)})`
  );
}

/** Why this code must not run on the database's schema (behind it, or ahead of it), or null when it may. */
export async function schemaProblem(db: Db): Promise<string | null> {
  const { pending, unknown } = await schemaState(db);
  if (unknown.length > 0) return aheadMessage(unknown);
  if (pending.length > 0) {
    return `the database schema is behind (${pending.join(', ')} not applied): run \`keywarden migrate\` first`;
  }
  return null;
}

/**
 * Whether this connection's role could lift the audit log's protection: a superuser, or the owner of audit_log
 * (or a member of the owner's role) can disable its trigger or drop it. The worker should connect as a member of
 * keywarden_runtime instead (migrations/007_runtime_role.ts).
 */
export async function canAlterAuditLog(db: Db): Promise<boolean> {
  const { rows } = await sql<{ can: boolean }>`
    SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
        OR coalesce((SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c
                     WHERE c.oid = to_regclass('audit_log')), false) AS can
  `.execute(db);
  return rows[0]?.can === true;
}

export async function pingDb(db: Db): Promise<void> {
  await sql`SELECT 1`.execute(db);
}
