import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WATERMARKS, watermarksRepo } from '../../src/db/repos/watermarks.ts';
import { MINUTE_MS } from '../../src/time.ts';
import { DRILL_POLICY_ROUTES, type DrillStack, startDrillStack } from '../support/drill-stack.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * Drill 7: the admin key is revoked while the real worker runs. `keywarden.blind` must reach Slack and email
 * within two poll intervals, the worker must keep running, and when the key is valid again the alert resolves
 * and polling catches up the minutes it missed.
 */

const ADMIN_KEY = 'sk-ant-admin01-revocation-drill-key-0123456789abcdefAA';
const POLL_EVERY_S = 10;
const USAGE_PATH = '/v1/organizations/usage_report/messages';

const POLICY = `organization: { name: "Revocation drill", timezone: UTC }
schedules:
  poll-usage: "*/${POLL_EVERY_S} * * * * *"
${DRILL_POLICY_ROUTES}`;

describe('the admin key revoked (drill 7)', () => {
  let s: DrillStack;
  const usagePolls = (since: number) =>
    s.emulator.requestLog.filter((r) => r.path.startsWith(USAGE_PATH) && r.time.getTime() >= since);

  beforeAll(async () => {
    s = await startDrillStack({
      secrets: { adminKey: ADMIN_KEY, slackToken: 'xoxb-drill-token-0000', smtpUser: 'kw', smtpPassword: 'drill-pw' },
      policy: POLICY,
    });
    // as if the worker had polled a few minutes ago: no first-run backfill of the month
    const minute = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
    await s.t.db
      .insertInto('watermarks')
      .values({ name: WATERMARKS.usage, position: new Date(minute - 3 * MINUTE_MS) })
      .execute();
    await s.worker.start();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('raises keywarden.blind to Slack and email within two polls, keeps running, and resolves when the key returns', async () => {
    await waitUntil('a first successful poll', () => usagePolls(0).find((r) => r.status === 200), 30_000);

    // ── revoke ──
    const revokedAt = Date.now();
    s.emulator.setAdminKeys([]);
    const watermarkAtRevocation = await watermarksRepo(s.t.db).read(WATERMARKS.usage);
    const blindPost = await waitUntil(
      'the blind alert in Slack',
      () =>
        s.slack.calls.find((c) => c.method === 'chat.postMessage' && /keywarden is blind/.test(String(c.args.text))),
      3 * POLL_EVERY_S * 1000,
    );
    const blindMail = await waitUntil(
      'the blind alert by email',
      () => s.smtp.messages.find((m) => /keywarden is blind/.test(m.subject)),
      3 * POLL_EVERY_S * 1000,
    );
    const bothArrived = Date.now();
    // within two poll intervals, counted on the emulator's request log rather than a stopwatch. Any job's refused
    // call raises it (the spend check after a poll, the inventory sync...), so the alert may come before the next
    // usage poll: what must hold is that it rests on a refusal, and that no more than two polls went by first.
    const meanwhile = s.emulator.requestLog.filter((r) => {
      const at = r.time.getTime();
      return at > revokedAt && at <= bothArrived; // strictly after: a request of the same millisecond came before
    });
    const pollsMeanwhile = meanwhile.filter((r) => r.path.startsWith(USAGE_PATH));
    console.log(
      `blind alert delivered ${bothArrived - revokedAt} ms after revocation, after ${meanwhile.length} refused ` +
        `request(s), ${pollsMeanwhile.length} of them usage polls`,
    );
    expect(meanwhile.filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(1);
    expect(meanwhile.filter((r) => r.status !== null && r.status !== 401)).toEqual([]); // null: still answering
    expect(pollsMeanwhile.length).toBeLessThanOrEqual(2);

    // what the people on call read: the route's channel and address, what is wrong and what to do
    expect(blindPost.response?.ok).toBe(true);
    expect(blindPost.args.channel).toBe('#ops');
    // Slack shows the hint's mask with lookalike stars: a `*` at a word's edge in text that quotes the API is never
    // left to Slack's bold; the email keeps it as is
    expect(String(blindPost.args.text)).toContain('sk-ant-admin01-\u2217\u2217\u2217\u2217efAA');
    expect(blindMail.envelope.to).toEqual(['ops@acme.example']);
    expect(blindMail.text).toContain('sk-ant-admin01-****efAA');
    expect(blindMail.text).toMatch(/401 authentication_error/);
    expect(blindMail.text).toMatch(/set ANTHROPIC_ADMIN_KEY/);
    expect(blindMail.text).not.toContain(ADMIN_KEY);

    // ── still blind for a while: no repeat each poll, and the worker stays up ──
    await waitUntil('two more refused polls', () => usagePolls(bothArrived).length >= 2, 4 * POLL_EVERY_S * 1000);
    expect(s.worker.current.proc.exitCode).toBeNull();
    const blindPosts = () =>
      s.slack.calls.filter((c) => c.method === 'chat.postMessage' && /keywarden is blind/.test(String(c.args.text)));
    expect(blindPosts()).toHaveLength(1);
    expect(s.smtp.messages.filter((m) => /keywarden is blind/.test(m.subject))).toHaveLength(1);
    const firing = await s.t.db.selectFrom('alerts').selectAll().where('kind', '=', 'keywarden.blind').execute();
    expect(firing.map((a) => [a.state, a.severity, a.scope_type])).toEqual([['firing', 'critical', 'organization']]);

    // ── restore ──
    const restoredAt = Date.now();
    s.emulator.setAdminKeys([ADMIN_KEY]);
    const resolvedPost = await waitUntil(
      'the resolved post in Slack',
      () => blindPosts().find((c) => /Resolved/.test(String(c.args.text))),
      3 * POLL_EVERY_S * 1000,
    );
    const resolvedMail = await waitUntil(
      'the resolved email',
      () => s.smtp.messages.find((m) => /Resolved/.test(m.subject) && /keywarden is blind/.test(m.subject)),
      3 * POLL_EVERY_S * 1000,
    );
    expect(resolvedPost.args.thread_ts).toBeDefined(); // in the thread of the firing post
    expect(resolvedMail.envelope.to).toEqual(['ops@acme.example']);
    const resolved = await s.t.db.selectFrom('alerts').selectAll().where('kind', '=', 'keywarden.blind').execute();
    expect(resolved.map((a) => a.state)).toEqual(['resolved']);
    expect(usagePolls(restoredAt).some((r) => r.status === 200)).toBe(true);

    // ── the gap is caught up: the watermark moves past where it stood, with usage for every minute in between ──
    const caughtUp = await waitUntil(
      'the watermark to move past the revocation',
      async () => {
        const w = await watermarksRepo(s.t.db).read(WATERMARKS.usage);
        return w && watermarkAtRevocation && w > watermarkAtRevocation ? w : null;
      },
      90_000,
    );
    const minutes = await s.t.db
      .selectFrom('usage_buckets')
      .select('starting_at')
      .distinct()
      .where('bucket_width', '=', '1m')
      .where('starting_at', '>=', watermarkAtRevocation!)
      .where('starting_at', '<', caughtUp)
      .execute();
    const expected = (caughtUp.getTime() - watermarkAtRevocation!.getTime()) / MINUTE_MS;
    expect(expected).toBeGreaterThanOrEqual(1);
    expect(minutes).toHaveLength(expected);
    expect(s.worker.current.proc.exitCode).toBeNull();
  }, 180_000);
});
