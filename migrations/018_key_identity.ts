import { type Kysely, sql } from 'kysely';

/**
 * API keys keep who is behind them: `personal` (acts as a user), `service_account`, `legacy` (a workspace key that
 * acts as nobody) or `unknown` (the API's response did not say: classic shapes carry no principal). Derived from
 * the principal at each sync-inventory (src/inventory/core/identity.ts); existing rows read `unknown` until the next
 * sync fills them in.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE api_keys
      ADD COLUMN identity text NOT NULL DEFAULT 'unknown'
        CHECK (identity IN ('personal', 'service_account', 'legacy', 'unknown'))
  `.execute(db);
}
