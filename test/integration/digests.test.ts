import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { financeDigestJob } from '../../jobs/finance-digest.ts';
import { securityDigestJob } from '../../jobs/security-digest.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Secret } from '../../src/config/secret.ts';
import { DIGEST_CHART_CID } from '../../src/notify/adapters.ts';
import { blockKitErrors } from '../../src/notify/dev/slack-standin.ts';
import { createEmailSender } from '../../src/notify/email.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
import { testJobContext } from '../support/context.ts';
import { DEMO_ADMIN_KEY, useDemoOrg } from '../support/demo-org.ts';
import { DIGEST_TARGETS, digestConfig, prepareDigestOrg } from '../support/digest-fixture.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { type CapturedEmail, type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';

const org = useDemoOrg();
let slack: SlackServer;
let smtp: SmtpCapture;
let env: ReturnType<typeof testJobContext>;

beforeAll(async () => {
  [slack, smtp] = await Promise.all([startSlackServer(), startSmtpCapture()]);
  env = testJobContext({
    db: org.t.db,
    emulatorUrl: org.emulator.url,
    adminKey: DEMO_ADMIN_KEY,
    clock: org.clock,
    config: digestConfig(),
    notifier: {
      slack: createSlackClient({ token: new Secret(slack.token), apiUrl: slack.url, timeoutMs: 2000 }),
      email: createEmailSender({ smtpUrl: new Secret(smtp.url), from: 'keywarden@acme.example' }),
      close: async () => {},
    },
  });
  await prepareDigestOrg(env.ctx, org.t.db);
});

afterAll(async () => {
  await env?.close();
  await Promise.all([slack?.close(), smtp?.close()]);
});

const deliver = () => deliverNotifications(env.ctx);
const mailTo = (address: string) => smtp.messages.filter((m) => m.to.includes(address));
const postsTo = (channel: string) =>
  slack.calls.filter((c) => c.method === 'chat.postMessage' && c.args.channel === channel && c.response?.ok);

/** The plain-text part's section under `title` (up to the next blank line). */
function section(mail: CapturedEmail, title: string): string {
  const start = mail.text.indexOf(`${title}\n`);
  if (start < 0) throw new Error(`no section "${title}" in:\n${mail.text}`);
  const end = mail.text.indexOf('\n\n', start);
  return mail.text.slice(start, end < 0 ? undefined : end);
}

describe('finance digest', () => {
  it('emails the month with an inline chart, the top keys and workspaces, and the drifted days', async () => {
    expect(await financeDigestJob.handler(env.ctx, {})).toMatchObject({ period: '2026-11-16', queued: 2 });
    expect(await deliver()).toMatchObject({ sent: 2, failed: 0 });

    const [mail] = mailTo(DIGEST_TARGETS.financeEmail);
    expect(mail?.subject).toBe('[keywarden] Finance digest: Acme AI, Mon, 16 Nov 2026');
    // the chart: one inline PNG in multipart/related, named by the HTML through its Content-ID
    expect(mail?.attachments).toHaveLength(1);
    const [png] = mail!.attachments;
    expect(png).toMatchObject({ contentType: 'image/png', cid: DIGEST_CHART_CID, related: true });
    expect(png!.content.subarray(1, 4).toString()).toBe('PNG');
    expect(png!.content.readUInt32BE(16)).toBe(1440); // width: 720 CSS pixels at 2×
    expect(mail!.html).toContain(`src="cid:${DIGEST_CHART_CID}"`);
    expect(mail!.html).toMatch(/alt="Cumulative spend in November 2026: \$2,470\.50 by 16 Nov; projected \$4,700 /);

    // headline figures: exact sums of November's usage (October's $9,999 hour is not in them)
    expect(mail!.text).toContain('Spent in November 2026: $2,470.50');
    expect(mail!.text).toContain('Yesterday: $162.00');
    // the latest projection, not the one from the day before
    expect(mail!.text).toContain('Projected month end: $4,700 (likely $4,350–$5,400)');
    expect(mail!.text).toContain('Monthly limit: $5,000 · 49% used');
    expect(mail!.text).toContain('Limit reached: unlikely; possible from 27 Nov at the high end of the range');
    expect(mail!.text).toContain('It may exceed its $5,000 limit.');

    const keys = section(mail!, 'Top keys this month');
    const order = ['Production Backend', 'Support bot', 'Data labeling batch', 'CI runner', 'Legacy integration'];
    const positions = order.map((name) => keys.indexOf(name));
    expect(positions.every((p) => p > 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(keys).toMatch(
      /Production Backend\s+Customer chatbot\s+\$1,220\.00\s+49%\s+\$2,400 \(\$2,250–\$2,600\)\s+\$1,000 · 122% used/,
    );
    expect(keys).toMatch(/No API key \(Console and Workbench\)\s+\$30\.50\s+1\.2%/);

    const workspaces = section(mail!, 'Top workspaces this month');
    expect(workspaces).toMatch(
      /Customer chatbot\s+\$1,830\.00\s+74%\s+\$3,550 \(\$3,300–\$3,900\)\s+\$2,000 · 92% used/,
    );
    expect(workspaces).toMatch(/Research\s+\$411\.75/);
    expect(workspaces).toMatch(/Default Workspace\s+\$45\.75/);

    const drift = section(mail!, 'Priced usage against the cost report (drift over 2%)');
    expect(drift).toMatch(/12 Nov\s+Research\s+\$100\.00\s+\$103\.50\s+\+3\.5%/);
    expect(drift).toMatch(/14 Nov\s+Default Workspace\s+\$0\.00\s+\$3\.00\s+not in report/);
    expect(drift).not.toContain('28 Oct');
    // the HTML has the same tables
    expect(mail!.html).toContain(
      '<td style="padding:5px 10px;border-bottom:1px solid #eaecf0;vertical-align:top;text-align:left">Production Backend</td>',
    );

    // Slack gets the figures and the lists, no image
    const [post] = postsTo(DIGEST_TARGETS.financeSlack);
    expect(blockKitErrors(post!.args.blocks as unknown[])).toEqual([]);
    const blocks = JSON.stringify(post!.args.blocks);
    expect(post!.args.text).toMatch(/Finance digest: Acme AI.*has spent \$2,470\.50 in November 2026 so far/);
    expect(blocks).toContain('• *Production Backend* — Workspace: Customer chatbot · Spent: $1,220.00');
    expect(blocks).toContain('*Priced usage against the cost report (drift over 2%)*');
  });

  it('is sent once per day and target, whatever reruns, restarts and replicas do', async () => {
    const before = { mail: smtp.messages.length, posts: postsTo(DIGEST_TARGETS.financeSlack).length };
    // the same day: a rerun, and two replicas at once
    const runs = await Promise.all([
      financeDigestJob.handler(env.ctx, {}),
      financeDigestJob.handler(env.ctx, {}),
      financeDigestJob.handler(env.ctx, {}),
    ]);
    expect(runs.map((r) => (r as { queued: number }).queued)).toEqual([0, 0, 0]);
    await deliver();
    expect(smtp.messages.length).toBe(before.mail);
    expect(postsTo(DIGEST_TARGETS.financeSlack).length).toBe(before.posts);

    // the next day, replicas racing from scratch: one row per target between them
    org.clock.advance(86_400_000);
    try {
      const next = await Promise.all([financeDigestJob.handler(env.ctx, {}), financeDigestJob.handler(env.ctx, {})]);
      expect(next.reduce<number>((n, r) => n + (r as { queued: number }).queued, 0)).toBe(2);
      await deliver();
      expect(mailTo(DIGEST_TARGETS.financeEmail).map((m) => m.subject)).toEqual([
        '[keywarden] Finance digest: Acme AI, Mon, 16 Nov 2026',
        '[keywarden] Finance digest: Acme AI, Tue, 17 Nov 2026',
      ]);
    } finally {
      org.clock.advance(-86_400_000);
    }
  });

  it('does nothing when the policy has no finance digest', async () => {
    const bare = testJobContext({
      db: org.t.db,
      emulatorUrl: org.emulator.url,
      adminKey: DEMO_ADMIN_KEY,
      clock: org.clock,
      config: loadConfig({ env: {} }),
    });
    try {
      const count = async () =>
        (await org.t.db.selectFrom('notifications').select('id').where('event', '=', 'digest').execute()).length;
      const before = await count();
      expect(await financeDigestJob.handler(bare.ctx, {})).toEqual({ skipped: 'digests.finance is not configured' });
      expect(await securityDigestJob.handler(bare.ctx, {})).toEqual({ skipped: 'digests.security is not configured' });
      expect(await count()).toBe(before);
    } finally {
      await bare.close();
    }
  });

  it('waits for the first projection of a new month instead of sending a digest without one', async () => {
    const count = async () =>
      (await org.t.db.selectFrom('notifications').select('id').where('event', '=', 'digest').execute()).length;
    const before = await count();
    // 16 Nov + 20 days: December, whose projections project-spend has not made yet (November's do not count)
    org.clock.advance(20 * 86_400_000);
    try {
      expect(await financeDigestJob.handler(env.ctx, {})).toEqual({
        period: '2026-12-06',
        queued: 0,
        skipped: 'no projection for this month yet',
      });
      expect(await count()).toBe(before);
    } finally {
      org.clock.advance(-20 * 86_400_000);
    }
  });
});

describe('security digest', () => {
  it('lists keys by rotation stage, orphaned keys, keys without expiry and the admins, by email and Slack', async () => {
    expect(await securityDigestJob.handler(env.ctx, {})).toMatchObject({ period: '2026-W47', queued: 2 });
    await deliver();
    const [mail] = mailTo(DIGEST_TARGETS.securityEmail);
    expect(mail?.subject).toBe('[keywarden] Security digest: Acme AI, week of Mon, 16 Nov 2026');
    expect(mail?.attachments).toEqual([]);

    const overdue = section(mail!, 'Overdue for rotation');
    for (const name of ['Production Backend', 'Research notebook', 'Legacy integration'])
      expect(overdue).toContain(name);
    expect(overdue).not.toContain('Support bot');
    // its creator (Bob) left before keywarden's first sync, so only his user id is known: the owner column says so
    expect(overdue).toMatch(/Research notebook\s+Research\s+former member user_\w+/);
    expect(overdue).toMatch(/Legacy integration\s+Default Workspace\s+no user \(created by the API\)/);

    const dueSoon = section(mail!, 'Due for rotation soon');
    // 80 days old with a 90-day limit; and a key whose own expiry (5 days) comes first
    expect(dueSoon).toMatch(/CI runner\s+Internal tools\s+femi@acme\.example\s+26 Nov 2026\s+10/);
    expect(dueSoon).toMatch(/Slack assistant\s+Internal tools\s+femi@acme\.example\s+21 Nov 2026\s+5/);

    const orphaned = section(mail!, 'Orphaned keys (their creator left the organization)');
    expect(orphaned).toMatch(/Research notebook\s+Research\s+former member user_\w+\s+\d+ \w{3} 2026/);
    expect(orphaned.split('\n')).toHaveLength(5); // title, underline, header, rule, one key

    const noExpiry = section(mail!, 'Keys without an expiry date');
    expect(noExpiry).toContain('Production Backend');
    expect(noExpiry).not.toContain('Slack assistant'); // it has one

    const admins = section(mail!, 'Members with the admin role');
    expect(admins).toMatch(/Dana Admin\s+dana@acme\.example/);
    expect(mail!.text).toContain('Admins: 1');
    expect(mail!.text).toContain('1 member holds the admin role.');

    const stages = section(mail!, 'Active keys by rotation stage');
    expect(stages).toMatch(/within policy\s+\d+/);

    const [post] = postsTo(DIGEST_TARGETS.securitySlack);
    expect(blockKitErrors(post!.args.blocks as unknown[])).toEqual([]);
    const blocks = JSON.stringify(post!.args.blocks);
    expect(blocks).toContain('*Orphaned keys (their creator left the organization)*');
    expect(blocks).toContain('• *Research notebook* — Workspace: Research · Created by: former member user_');
    expect(blocks).toContain('*Admins*\\n1');

    // the same ISO week later on: nothing new
    org.clock.advance(3 * 86_400_000);
    try {
      expect(await securityDigestJob.handler(env.ctx, {})).toMatchObject({ period: '2026-W47', queued: 0 });
    } finally {
      org.clock.advance(-3 * 86_400_000);
    }
  });
});
