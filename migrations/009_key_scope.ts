import { type Kysely, sql } from 'kysely';

/**
 * API keys keep their scope and principal. 2026 responses say a principal-bound key with no workspace as
 * `scope: {type: 'organization'}`; keywarden says the Default Workspace as a null workspace_id, so without the scope
 * such a key would read as a Default Workspace key. Existing rows are workspace keys (classic responses carry no
 * scope); the next sync-inventory fills in the rest. `principal_type` is `user_actor` or `service_account_actor`,
 * `principal_id` the user's or service account's id; both null for plain workspace keys.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE api_keys
      ADD COLUMN scope_type text NOT NULL DEFAULT 'workspace',
      ADD COLUMN principal_type text,
      ADD COLUMN principal_id text
  `.execute(db);
}
