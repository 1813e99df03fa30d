import { type Kysely, sql } from 'kysely';

/**
 * A Claude Enterprise member's request for a higher spend limit, as keywarden asked about it in Slack. One row per
 * request the Admin API listed as pending (its `splir_…` id), written when first seen: the member, the period, the
 * limit then and the amount Approve sets (`amount_minor`, fixed when the question is first asked, so the person who
 * presses approves what the message said; null: the message offers Deny only). The API's request has no "amount
 * asked", so keywarden proposes one.
 *
 * `state` is what keywarden knows: `pending`, `approving` / `denying` while one press is calling the Admin API (the
 * claim that makes a double click or a replay send one call; `claimed_at` lets a claim left by a crash be taken
 * over; with `answered_by`, the claim a press releases or settles, so a press whose claim was taken over changes
 * nothing), then `approved` or `denied`, by a Slack user (`answered_by` `slack:U…`) or elsewhere (`console`: the
 * Console or another admin key, found when a press read the request again). `notification_id`: the Slack message
 * that was answered and rewritten.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE increase_requests (
      id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      request_id        text NOT NULL UNIQUE,
      user_id           text NOT NULL,
      period            text NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly')),
      currency          text NOT NULL,
      -- minor units of currency (cents for USD), exact; null: no limit applied when the request was seen
      limit_minor       numeric(20, 0),
      amount_minor      numeric(20, 0),
      requested_at      timestamptz NOT NULL,
      state             text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'approving', 'denying', 'approved', 'denied')),
      claimed_at        timestamptz,
      answered_by       text,
      answered_at       timestamptz,
      -- the member's limit the approval wrote, as the API answered it
      limit_after_minor numeric(20, 0),
      notification_id   bigint REFERENCES notifications (id) ON DELETE SET NULL
    );
    CREATE INDEX increase_requests_user ON increase_requests (user_id);
  `.execute(db);
}
