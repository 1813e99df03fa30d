import { describe, expect, it } from 'vitest';
import { formatAlertList } from '../../src/cli/alerts.ts';
import { formatKeyTable } from '../../src/cli/keys.ts';
import { formatSpendReport } from '../../src/cli/spend.ts';
import { singleLine, slackMrkdwn, terminalJson, terminalText } from '../../src/notify/escape.ts';
import type { Notification } from '../../src/notify/message.ts';
import { renderEmail, renderSlack } from '../../src/notify/render.ts';
import type { KeyRow } from '../../src/rotation/key-rows.ts';

/** Names an organization member can give a key or a workspace in the Console, meant to fool whoever reads them. */
const HOSTILE = {
  // retitles the terminal, clears the screen, moves the cursor home
  escapes: 'prod\x1b]0;pwned\x07\x1b[2J\x1b[H-key',
  // a line break and a fake row under it
  fakeRow: 'ci\nProduction Backend  sk-ant-api03-R2D...igAA  Default  active',
  // the right-to-left override makes "gpj.exe" read "exe.jpg"
  rtl: 'report\u202egpj.exe',
  // zero-width space and joiner: "prod" twice, as two different names
  zeroWidth: 'pr\u200bod\u200d',
  c1: 'x\u009b2Jy',
};

function keyRow(name: string): KeyRow {
  return {
    id: 'apikey_01',
    name,
    hint: 'sk-ant-api03-R2D...igAA',
    workspace: HOSTILE.rtl,
    scope: 'workspace',
    status: 'active',
    ageDays: 3,
    deadline: '2027-01-01',
    policy: 'default',
    stage: 'ok',
    owner: HOSTILE.c1,
    lastUsage: null,
    successor: HOSTILE.zeroWidth,
  };
}

/** Anything a terminal would act on or hide: C0/C1 controls, DEL, bidi controls, zero-width and other format characters. */
const UNSAFE = /[\p{Cc}\p{Cf}\u2028\u2029]/u;
/** Lines of terminal output, each free of unsafe characters (the line breaks between them are the output's own). */
function expectSafeLines(out: string, count: number): void {
  const lines = out.split('\n');
  expect(lines.filter((l) => UNSAFE.test(l))).toEqual([]);
  expect(lines).toHaveLength(count);
}

describe('terminal output of organization-controlled names', () => {
  it.each(Object.entries(HOSTILE))(
    'terminalText(%s) is one line with every unsafe character shown, not acted on',
    (_k, name) => {
      const out = terminalText(name);
      expect(out).not.toMatch(UNSAFE);
      expect(out.split('\n')).toHaveLength(1);
    },
  );

  it('shows what was hidden: an escape, a line break, an override and a zero-width space become visible escapes', () => {
    expect(terminalText(HOSTILE.escapes)).toBe('prod\\x1b]0;pwned\\x07\\x1b[2J\\x1b[H-key');
    expect(terminalText('a\nb\tc')).toBe('a\\nb\\tc');
    expect(terminalText(HOSTILE.rtl)).toBe('report\\u202egpj.exe');
    expect(terminalText(HOSTILE.zeroWidth)).toBe('pr\\u200bod\\u200d');
    expect(terminalText('Produktion · 生产 🔑')).toBe('Produktion · 生产 🔑');
  });

  it('keys: every row stays one line and no cell carries a control or format character', () => {
    const table = formatKeyTable(Object.values(HOSTILE).map(keyRow));
    expectSafeLines(table, 2 + Object.keys(HOSTILE).length);
    expect(table).toContain('ci\\nProduction Backend');
  });

  it('spend: names are sanitized the same way', () => {
    const row = (name: string) => ({
      scopeType: 'key' as const,
      scopeId: 'apikey_01',
      name,
      limitUsd: null,
      monthToDateUsd: '1.000000000000',
      p10Usd: '1.500000000000',
      p50Usd: '2.000000000000',
      p90Usd: '3.000000000000',
      p90ShareOfLimit: null,
      crossingP50: null,
      crossingP90: null,
      method: 'linear',
    });
    const out = formatSpendReport({
      month: '2026-12',
      madeAt: '2026-12-04T10:00:00.000Z',
      rows: Object.values(HOSTILE).map(row),
    });
    expectSafeLines(out, 4 + Object.keys(HOSTILE).length);
  });

  it('alerts: titles, targets and delivery errors are sanitized', () => {
    const out = formatAlertList(
      [
        {
          fingerprint: 'fp1',
          kind: 'usage.runaway',
          severity: 'critical',
          state: 'firing',
          title: `Runaway spend on key "${HOSTILE.rtl}" ${HOSTILE.escapes}`,
          startedAt: '2026-12-04T10:00:00.000Z',
          lastSeenAt: '2026-12-04T10:00:00.000Z',
          resolvedAt: null,
          inhibitedBy: null,
          deliveries: [
            {
              id: '1',
              event: 'firing',
              channel: 'email',
              target: `owner\u202e@acme.example`,
              status: 'failed',
              attempts: 3,
              possiblyDuplicate: false,
              lastError: `smtp 550: no such user ${HOSTILE.fakeRow}`,
              sentAt: null,
              nextAttemptAt: null,
            },
          ],
        },
      ],
      false,
    );
    expectSafeLines(out, 3);
  });

  it('--json stays valid JSON, parses back to the raw name, and its text holds no unsafe character', () => {
    const value = { names: Object.values(HOSTILE), emoji: '👩‍💻' };
    const text = terminalJson(value);
    expect(text.split('\n').filter((l) => UNSAFE.test(l))).toEqual([]);
    expect(JSON.parse(text)).toEqual(value);
  });
});

describe('lookalikes in Slack and email', () => {
  it('zero-width and bidi characters are stripped', () => {
    expect(singleLine('pr\u200bod\u200c\u200d\u2060\ufeff\u200e\u200f\u061c')).toBe('prod');
  });

  it.each([
    ['*bold*', '∗bold∗'],
    ['_italic_', 'ˍitalicˍ'],
    ['~struck~', '∼struck∼'],
    ['`code`', 'ˋcodeˋ'],
    ['Production* — Owner: *boss', 'Production∗ — Owner: ∗boss'],
    ['ci_runner_key', 'ci_runner_key'],
    ['a*b', 'a*b'],
    [':rotating_light: URGENT', '∶rotating_light∶ URGENT'],
    ['at 10:30 UTC', 'at 10:30 UTC'],
  ])('mrkdwn formatting in a name is neutralized: %s → %s', (name, expected) => {
    expect(slackMrkdwn(name, 100)).toBe(expected);
  });

  it('a rendered item cannot close the bold around its name and fake a field', () => {
    const n: Notification = {
      kind: 'rotation.overdue',
      event: 'firing',
      severity: 'warning',
      title: 'Keys past their deadline',
      summary: '',
      fields: [],
      links: [],
      items: [{ title: 'prod* Owner: *security@acme.com', fields: [] }],
    };
    const texts = renderSlack(n).blocks.flatMap((b) => (b.type === 'section' && 'text' in b ? [b.text.text] : []));
    expect(texts).toContain('• *prod∗ Owner: ∗security@acme.com*');
  });

  it('email items are cut like Slack items', () => {
    const long = 'k'.repeat(5000);
    const n: Notification = {
      kind: 'rotation.overdue',
      event: 'firing',
      severity: 'warning',
      title: 'Keys past their deadline',
      summary: '',
      fields: [],
      links: [],
      items: [{ title: long, fields: [{ label: 'Owner', value: long }] }],
    };
    const email = renderEmail(n);
    const line = email.text.split('\n').find((l) => l.startsWith('- '))!;
    expect(line.length).toBeLessThan(700);
    expect(line).toContain('…');
    expect(email.html.length).toBeLessThan(3000);
  });
});
