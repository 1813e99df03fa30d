import { describe, expect, it } from 'vitest';
import { jobs } from '../../jobs/index.ts';
import { parsePolicy } from '../../src/config/index.ts';
import { isoWeek, localDate } from '../../src/digest/period.ts';
import { blockKitErrors } from '../../src/notify/dev/slack-standin.ts';
import type { DigestMessage, DigestSection } from '../../src/notify/message.ts';
import { renderDigestEmail, renderDigestSlack } from '../../src/notify/render.ts';
import { buildRegistry } from '../../src/queue/registry.ts';
import { desiredSchedules } from '../../src/queue/schedules.ts';

const HOSTILE = '<!channel> <script>alert(1)</script> & <https://evil.example|verify>';

function digest(sections: DigestSection[], extra: Partial<DigestMessage> = {}): DigestMessage {
  return {
    kind: 'digest.finance',
    title: 'Finance digest: Acme AI, Mon, 16 Nov 2026',
    summary: 'Acme AI has spent $2,470.50 in November 2026 so far.',
    fields: [{ label: 'Spent in November 2026', value: '$2,470.50' }],
    sections,
    links: [{ label: 'Cost in the Console', url: 'https://console.anthropic.com/settings/cost' }],
    ...extra,
  };
}

const keysSection = (rows: string[][], more = 0): DigestSection => ({
  title: 'Top keys this month',
  columns: [{ label: 'Key' }, { label: 'Spent', align: 'right' }],
  rows,
  empty: 'No key has spent anything this month.',
  more,
});

describe('digest rendering', () => {
  it('aligns the plain-text tables, figures to the right', () => {
    const { text } = renderDigestEmail(
      digest([
        keysSection([
          ['Production Backend', '$1,220.00'],
          ['CI', '$3.00'],
        ]),
      ]),
    );
    expect(text).toContain(
      [
        'Top keys this month',
        '===================',
        'Key                     Spent',
        '------------------  ---------',
        'Production Backend  $1,220.00',
        'CI                      $3.00',
      ].join('\n'),
    );
  });

  it('says what an empty list means, and how many rows were left out', () => {
    const email = renderDigestEmail(digest([keysSection([]), { ...keysSection([['a', '$1.00']], 7), title: 'More' }]));
    expect(email.text).toContain('Top keys this month\n===================\nNo key has spent anything this month.');
    expect(email.text).toContain('…and 7 more');
    expect(email.html).toContain('No key has spent anything this month.');
    expect(email.html).toContain('…and 7 more');
  });

  it('escapes names for every medium and keeps line breaks out of the subject', () => {
    const d = digest([keysSection([[HOSTILE, '$1.00']])], { title: `Digest\r\nBcc: everyone@acme.example ${HOSTILE}` });
    const email = renderDigestEmail(d);
    expect(email.subject).not.toMatch(/[\r\n]/);
    expect(email.html).not.toContain('<script>');
    expect(email.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    const slack = renderDigestSlack(d);
    // mrkdwn is parsed by Slack, so it is escaped; the header is plain_text, which Slack shows as it is
    const mrkdwn = JSON.stringify(slack.blocks.filter((b) => b.type !== 'header'));
    expect(mrkdwn).not.toContain('<!channel>');
    expect(mrkdwn).toContain('&lt;!channel&gt;');
    expect(blockKitErrors(slack.blocks)).toEqual([]);
  });

  it('shows the chart after the headline figures, sized for the page, named by Content-ID', () => {
    const { html } = renderDigestEmail(digest([]), {
      images: [{ cid: 'spend-chart@keywarden', alt: 'Spend "so far"' }],
    });
    expect(html).toContain(
      '<img src="cid:spend-chart@keywarden" alt="Spend &quot;so far&quot;" width="720" style="max-width:100%;height:auto">',
    );
    expect(html.indexOf('Spent in November 2026')).toBeLessThan(html.indexOf('cid:spend-chart'));
  });

  it('keeps a huge digest within Slack limits: long lists cut with a count, the rest pointed to the email', () => {
    const long = 'x'.repeat(500);
    const sections = Array.from({ length: 30 }, (_, i) => ({
      ...keysSection(Array.from({ length: 40 }, (_, j) => [`${long}${j}`, `$${j}.00`])),
      title: `Section ${i}`,
    }));
    const slack = renderDigestSlack(digest(sections));
    expect(blockKitErrors(slack.blocks)).toEqual([]);
    expect(slack.blocks.length).toBeLessThanOrEqual(50);
    const json = JSON.stringify(slack.blocks);
    expect(json).toContain('…and 25 more');
    expect(json).toContain('the rest of this digest is in the email version');
  });
});

describe('digest periods and schedules', () => {
  it.each([
    ['2026-11-16', '2026-W47'], // a Monday
    ['2026-11-22', '2026-W47'], // its Sunday
    ['2021-01-03', '2020-W53'], // early January in the previous ISO year
    ['2024-12-30', '2025-W01'], // late December in the next one
  ])('%s is in ISO week %s', (date, week) => {
    expect(isoWeek(date)).toBe(week);
  });

  it("takes the day in the organization's timezone", () => {
    const at = new Date('2026-11-16T23:30:00Z');
    expect(localDate(at, 'UTC')).toBe('2026-11-16');
    expect(localDate(at, 'Europe/Paris')).toBe('2026-11-17');
    expect(localDate(new Date('2026-11-16T03:30:00Z'), 'America/Los_Angeles')).toBe('2026-11-15');
  });

  it("schedules each digest on its policy cron, in the organization's timezone, and not at all without one", () => {
    const problems: string[] = [];
    const policy = parsePolicy(
      `organization: { timezone: Europe/Paris }
digests:
  finance: { cron: "0 8 * * *", email: [finance@acme.example] }
`,
      'keywarden.yaml',
      problems,
    )!;
    expect(problems).toEqual([]);
    const specs = desiredSchedules(buildRegistry(jobs), policy);
    expect(specs.find((s) => s.id === 'finance-digest')).toMatchObject({
      pattern: '0 8 * * *',
      tz: 'Europe/Paris',
      queue: 'notify',
    });
    expect(specs.find((s) => s.id === 'security-digest')).toBeUndefined();
  });
});
