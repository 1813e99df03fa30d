import { type Kysely, sql } from 'kysely';

/**
 * Two roles: the one that runs migrations owns the tables; the worker connects as a member of `keywarden_runtime`,
 * which may read and write the tables but only INSERT and SELECT on audit_log. The append-only trigger on
 * audit_log stops UPDATE and DELETE by anyone, but the table's owner can disable or drop the trigger, rename the
 * table or drop it; only a role that does not own the table cannot (README "Database roles").
 *
 * The group role is created here when it is missing, which needs CREATEROLE. Without it, this migration fails
 * with the statement to run once as a role that has it; the grants then follow on the next `keywarden migrate`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    DO $$
    BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'keywarden_runtime') THEN
        BEGIN
          CREATE ROLE keywarden_runtime NOLOGIN;
        EXCEPTION
          -- another database of the cluster migrating at the same moment created it
          WHEN duplicate_object THEN NULL;
          WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'the role keywarden_runtime does not exist and % may not create it (needs CREATEROLE)', current_user
              USING HINT = 'run once as a role with CREATEROLE: CREATE ROLE keywarden_runtime NOLOGIN; then keywarden migrate again';
        END;
      END IF;
    END
    $$
  `.execute(db);
  const schema = sql.id(await currentSchema(db));
  await sql`GRANT USAGE ON SCHEMA ${schema} TO keywarden_runtime`.execute(db);
  await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO keywarden_runtime`.execute(db);
  await sql`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${schema} TO keywarden_runtime`.execute(db);
  // the record of what happened, and of which schema is applied, is not the worker's to change
  await sql`REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM keywarden_runtime`.execute(db);
  await sql`REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON kysely_migration, kysely_migration_lock FROM keywarden_runtime`.execute(
    db,
  );
  // tables and sequences later migrations create (as this same owner) get the same grants
  await sql`ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO keywarden_runtime`.execute(
    db,
  );
  await sql`ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT USAGE, SELECT ON SEQUENCES TO keywarden_runtime`.execute(
    db,
  );
}

async function currentSchema(db: Kysely<unknown>): Promise<string> {
  const { rows } = await sql<{ schema: string }>`SELECT current_schema() AS schema`.execute(db);
  return rows[0]!.schema;
}
