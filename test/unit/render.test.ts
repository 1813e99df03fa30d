import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blockKitErrors } from '../../src/notify/dev/slack-standin.ts';
import { escapeHtml, escapeSlack, singleLine, slackMrkdwn, truncate } from '../../src/notify/escape.ts';
import type { Notification, NotificationItem } from '../../src/notify/message.ts';
import { type MrkdwnObject, renderEmail, renderSlack, type SlackBlock } from '../../src/notify/render.ts';

const HOSTILE = {
  channel: '<!channel>',
  link: '<https://evil.example|Click to verify your key>',
  script: '<script>alert(1)</script>',
  crlf: 'ci-key\r\nBcc: everyone@acme.com',
  user: '<@U0ADMIN> & <!here>',
};

function notification(overrides: Partial<Notification> = {}): Notification {
  return {
    kind: 'usage.runaway',
    event: 'firing',
    severity: 'critical',
    title: 'Runaway spend on key "Production Backend"',
    summary: 'The key spent $412.50 in the last 10 minutes, 38× its usual rate.',
    fields: [
      { label: 'Workspace', value: 'Customer chatbot' },
      { label: 'Rate', value: '$2,475.00/h' },
    ],
    links: [{ label: 'Open key in Console', url: 'https://console.anthropic.com/settings/keys' }],
    ...overrides,
  };
}

function hostileNotification(): Notification {
  return notification({
    title: `Runaway spend on key ${HOSTILE.channel} ${HOSTILE.crlf}`,
    summary: `Created by ${HOSTILE.user}. See ${HOSTILE.link}. ${HOSTILE.script}`,
    fields: [
      { label: 'Key', value: HOSTILE.channel },
      { label: `Workspace ${HOSTILE.script}`, value: HOSTILE.link },
      { label: 'Owner', value: HOSTILE.crlf },
    ],
    links: [
      { label: HOSTILE.channel, url: 'https://console.anthropic.com/settings/keys' },
      { label: 'Run this', url: 'javascript:alert(1)' },
    ],
    items: [{ title: HOSTILE.link, fields: [{ label: 'By', value: HOSTILE.user }] }],
    footer: `Sent for ${HOSTILE.script}`,
  });
}

function mrkdwnTexts(blocks: SlackBlock[]): MrkdwnObject[] {
  const out: MrkdwnObject[] = [];
  for (const b of blocks) {
    if (b.type === 'section' && 'text' in b) out.push(b.text);
    if (b.type === 'section' && 'fields' in b) out.push(...b.fields);
    if (b.type === 'context') out.push(...b.elements);
  }
  return out;
}

function plainTexts(blocks: SlackBlock[]): string[] {
  const out: string[] = [];
  for (const b of blocks) {
    if (b.type === 'header') out.push(b.text.text);
    if (b.type === 'actions') out.push(...b.elements.map((e) => e.text.text));
  }
  return out;
}

function items(n: number): NotificationItem[] {
  return Array.from({ length: n }, (_, i) => ({
    title: `key-${String(i + 1).padStart(3, '0')} (Customer chatbot)`,
    fields: [
      { label: 'Rate', value: `$${(100 + i).toFixed(2)}/h` },
      { label: 'Usual', value: '$4.10/h' },
      { label: 'Created by', value: `engineer-${i}@acme.com` },
    ],
  }));
}

describe('escaping', () => {
  it.each([
    ['<!channel>', '&lt;!channel&gt;'],
    ['<@U123>', '&lt;@U123&gt;'],
    ['<https://x|y>', '&lt;https://x|y&gt;'],
    ['AT&T', 'AT&amp;T'],
    ['&lt; already escaped', '&amp;lt; already escaped'],
  ])('Slack: %s → %s', (input, expected) => {
    expect(escapeSlack(input)).toBe(expected);
  });

  it('HTML: tags and quotes become entities', () => {
    expect(escapeHtml(`<script>alert("1")</script>'`)).toBe('&lt;script&gt;alert(&quot;1&quot;)&lt;/script&gt;&#39;');
  });

  it('cuts mrkdwn without splitting an entity', () => {
    expect(slackMrkdwn('&&&&&', 8)).toBe('&amp;…');
    expect(slackMrkdwn('a<b', 100)).toBe('a&lt;b');
  });

  it('flattens every kind of line break and drops bidi overrides', () => {
    expect(singleLine('a\r\nb\nc\rd\u2028e\u0085f\tg')).toBe('a b c d e f g');
    expect(singleLine('abc\u202edef')).toBe('abcdef');
  });

  it('never splits an emoji when truncating', () => {
    const cut = truncate('🔑'.repeat(10), 6);
    expect(cut).toBe('🔑🔑…');
    expect(cut.isWellFormed()).toBe(true);
  });
});

describe('Slack rendering', () => {
  it('renders header, summary, fields, context and link buttons with a text fallback', () => {
    const msg = renderSlack(notification());
    expect(msg.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'context', 'actions']);
    expect(blockKitErrors(msg.blocks)).toEqual([]);
    expect(msg.text).toContain('Runaway spend on key "Production Backend"');
    expect(msg.text).toContain('$412.50');
    const actions = msg.blocks.find((b) => b.type === 'actions');
    expect(actions?.elements[0]).toMatchObject({
      type: 'button',
      url: 'https://console.anthropic.com/settings/keys',
      text: { type: 'plain_text', text: 'Open key in Console' },
    });
  });

  it('keeps user text inert: no mention, link or tag survives, and no line break in a header or button', () => {
    const msg = renderSlack(hostileNotification());
    expect(blockKitErrors(msg.blocks)).toEqual([]);
    const texts = mrkdwnTexts(msg.blocks);
    for (const t of [...texts.map((m) => m.text), msg.text]) {
      expect(t).not.toMatch(/[<>]/);
    }
    const all = texts.map((m) => m.text).join('\n');
    expect(all).toContain('&lt;!channel&gt;');
    expect(all).toContain('&lt;https://evil.example|Click to verify your key&gt;');
    expect(all).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(all).toContain('&lt;@U0ADMIN&gt; &amp; &lt;!here&gt;');
    // verbatim: Slack must not auto-link words in user text either
    expect(texts.every((m) => m.verbatim === true)).toBe(true);
    for (const p of plainTexts(msg.blocks)) expect(p).not.toMatch(/[\r\n]/);
    expect(plainTexts(msg.blocks)[0]).toContain('ci-key Bcc: everyone@acme.com');
    // A name with a line break cannot fake a line of its own inside a field
    const owner = texts.find((m) => m.text.startsWith('*Owner*'));
    expect(owner?.text).toBe('*Owner*\nci-key Bcc: everyone@acme.com');
  });

  it('drops links that are not http(s)', () => {
    const msg = renderSlack(hostileNotification());
    const urls = msg.blocks.flatMap((b) => (b.type === 'actions' ? b.elements.map((e) => e.url) : []));
    expect(urls).toEqual(['https://console.anthropic.com/settings/keys']);
  });

  it.each([
    ['firing', '🚨 Runaway'],
    ['repeat', '🚨 Still firing: Runaway'],
    ['resolved', '✅ Resolved: Runaway'],
  ] as const)('%s headline starts with "%s"', (event, start) => {
    const header = renderSlack(notification({ event })).blocks[0];
    expect(header?.type === 'header' && header.text.text.startsWith(start)).toBe(true);
  });

  it('cuts a long title to the 150-character header limit', () => {
    const msg = renderSlack(notification({ title: `Key ${'x'.repeat(400)}` }));
    const header = msg.blocks[0];
    expect(header?.type).toBe('header');
    if (header?.type !== 'header') return;
    expect(header.text.text.length).toBe(150);
    expect(header.text.text.endsWith('…')).toBe(true);
    expect(blockKitErrors(msg.blocks)).toEqual([]);
  });

  it('fits a group of 40 runaway keys into one message under the block limit, listing every key', () => {
    const msg = renderSlack(notification({ items: items(40) }));
    expect(blockKitErrors(msg.blocks)).toEqual([]);
    expect(msg.blocks.length).toBeLessThanOrEqual(50);
    const all = mrkdwnTexts(msg.blocks)
      .map((m) => m.text)
      .join('\n');
    for (let i = 1; i <= 40; i++) expect(all).toContain(`key-${String(i).padStart(3, '0')}`);
    expect(all).not.toContain('more');
  });

  it('says how many were left out when a group is too big to list', () => {
    const msg = renderSlack(notification({ items: items(500) }));
    expect(blockKitErrors(msg.blocks)).toEqual([]);
    const texts = mrkdwnTexts(msg.blocks).map((m) => m.text);
    const listed = texts.join('\n').match(/^• /gm)?.length ?? 0;
    const more = texts.map((t) => /^…and (\d+) more$/.exec(t)).find(Boolean);
    expect(more).toBeTruthy();
    expect(listed + Number(more?.[1])).toBe(500);
  });

  it('stays valid Block Kit, and inert, whatever the strings are', () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 400 }),
      fc.string({ unit: 'grapheme', maxLength: 4000 }),
      fc.constantFrom(...Object.values(HOSTILE)),
    );
    const field = fc.record({ label: text, value: text });
    fc.assert(
      fc.property(
        fc.record({
          title: text,
          summary: text,
          fields: fc.array(field, { maxLength: 25 }),
          links: fc.array(fc.record({ label: text, url: fc.oneof(fc.webUrl(), text) }), { maxLength: 30 }),
          items: fc.array(fc.record({ title: text, fields: fc.array(field, { maxLength: 4 }) }), { maxLength: 60 }),
          footer: text,
        }),
        (strings) => {
          const msg = renderSlack(notification(strings));
          expect(blockKitErrors(msg.blocks)).toEqual([]);
          for (const m of mrkdwnTexts(msg.blocks)) expect(m.text).not.toMatch(/[<>]/);
          expect(msg.text).not.toMatch(/[<>]/);
          const email = renderEmail(notification(strings));
          expect(email.subject).not.toMatch(/[\r\n]/);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('email rendering', () => {
  it('renders a subject, a text part and an HTML part with the same content', () => {
    const email = renderEmail(notification(), { images: [{ cid: 'chart-1@keywarden', alt: 'Spend, last 24 h' }] });
    expect(email.subject).toBe('[keywarden] [critical] Runaway spend on key "Production Backend"');
    for (const part of [email.text, email.html]) {
      expect(part).toContain('Customer chatbot');
      expect(part).toContain('$2,475.00/h');
    }
    expect(email.text).toContain('Open key in Console: https://console.anthropic.com/settings/keys');
    expect(email.html).toContain('<a href="https://console.anthropic.com/settings/keys">Open key in Console</a>');
    expect(email.html).toContain('<img src="cid:chart-1@keywarden" alt="Spend, last 24 h"');
  });

  it.each([
    ['repeat', '[keywarden] [critical] Still firing: Runaway spend'],
    ['resolved', '[keywarden] Resolved: Runaway spend'],
  ] as const)('%s subject starts with "%s"', (event, start) => {
    expect(renderEmail(notification({ event })).subject.startsWith(start)).toBe(true);
  });

  it('escapes user text in HTML, keeps it readable in text, and keeps line breaks out of the subject', () => {
    const email = renderEmail(hostileNotification());
    expect(email.html).not.toContain('<script>');
    expect(email.html).not.toContain('javascript:');
    expect(email.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(email.html).toContain('&lt;!channel&gt;');
    expect(email.subject).not.toMatch(/[\r\n]/);
    expect(email.subject).toContain('ci-key Bcc: everyone@acme.com');
    expect(email.text).toContain('Key: <!channel>');
    expect(email.text).not.toContain('javascript:');
    expect(email.text).toContain('Owner: ci-key Bcc: everyone@acme.com');
  });

  it('lists grouped items in both parts', () => {
    const email = renderEmail(notification({ items: items(40) }));
    expect(email.text.match(/^- key-/gm)?.length).toBe(40);
    expect(email.html.match(/<li>/g)?.length).toBe(40);
  });
});
