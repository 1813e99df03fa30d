import { describe, expect, it } from 'vitest';
import { DEMO_TOUR, type Shown, shownKind, slackContextTexts, stillMissing } from '../../src/demo/tour.ts';
import type { DigestMessage, Notification } from '../../src/notify/message.ts';
import { renderDigestEmail, renderDigestSlack, renderEmail, renderSlack } from '../../src/notify/render.ts';

function notification(overrides: Partial<Notification> = {}): Notification {
  return {
    kind: 'rotation.due_soon',
    event: 'firing',
    severity: 'info',
    title: 'API key "CI runner" is due for rotation',
    summary: 'Rotate it before 2026-12-14.',
    fields: [{ label: 'Workspace', value: 'Internal tools' }],
    links: [],
    ...overrides,
  };
}

const digest: DigestMessage = {
  kind: 'digest.finance',
  title: 'Finance digest: Acme AI (demo), Fri, 4 Dec 2026',
  summary: 'Acme AI (demo) has spent $3,294.44 in December 2026 so far.',
  fields: [],
  sections: [],
  links: [],
};

const everything: Shown[] = [
  { medium: 'terminal', what: 'inventory' },
  { medium: 'terminal', what: 'keys' },
  { medium: 'slack', channel: '#security', kind: 'key.identity' },
  { medium: 'email', to: ['security@acme.example'], kind: 'key.identity' },
  { medium: 'slack', channel: '#ai-alerts', kind: 'usage.runaway' },
  { medium: 'slack', channel: '#security', kind: 'rotation.overdue' },
  { medium: 'email', to: ['ana@acme.example'], kind: 'rotation.overdue' },
  { medium: 'slack', channel: '#security', kind: 'rotation.due_soon' },
  { medium: 'slack', channel: '#finance', kind: 'spend.forecast' },
  { medium: 'email', to: ['finance@acme.example'], kind: 'spend.forecast' },
  { medium: 'terminal', what: 'spend' },
  { medium: 'email', to: ['finance@acme.example'], kind: 'digest.finance' },
  { medium: 'email', to: ['security@acme.example'], kind: 'digest.security' },
  { medium: 'terminal', what: 'acknowledged' },
  { medium: 'terminal', what: 'approved' },
];

const walk = (shown: readonly Shown[]) => shown.reduce(stillMissing, [...DEMO_TOUR]);

describe('the demo tour', () => {
  it('is complete once every finding was shown, in any order', () => {
    expect(walk(everything)).toEqual([]);
    expect(walk([...everything].reverse())).toEqual([]);
  });

  it('names what is still missing, and only a message to the right place and of the right kind counts', () => {
    const missing = walk([
      ...everything.filter((s) => !(s.medium === 'email' && s.kind === 'rotation.overdue')),
      // the security address got the overdue notice, the owner did not
      { medium: 'email', to: ['security@acme.example'], kind: 'rotation.overdue' },
      { medium: 'slack', channel: '#ai-alerts', kind: 'rotation.overdue' },
    ]);
    expect(missing.map((s) => s.label)).toEqual(["the overdue notice to the key's owner"]);
    expect(walk(everything.slice(1)).map((s) => s.label)).toEqual(['the inventory']);
  });

  it("reads the kind from the context line of keywarden's own Slack messages and emails", () => {
    const slack = renderSlack(notification());
    expect(shownKind(slackContextTexts(slack.blocks))).toBe('rotation.due_soon');
    const email = renderEmail(notification({ kind: 'key.orphaned' }));
    expect(shownKind(email.text.split('\n'))).toBe('key.orphaned');
    expect(shownKind(slackContextTexts(renderDigestSlack(digest).blocks))).toBe('digest.finance');
    expect(shownKind(renderDigestEmail(digest).text.split('\n'))).toBe('digest.finance');
  });

  it('does not count a repeat or a resolve as showing an alert, nor a name that looks like a context line', () => {
    expect(shownKind(slackContextTexts(renderSlack(notification({ event: 'repeat' })).blocks))).toBeNull();
    expect(shownKind(renderEmail(notification({ event: 'resolved' })).text.split('\n'))).toBeNull();
    const disguised = notification({ title: 'keywarden · usage.runaway · firing · critical', kind: 'spend.threshold' });
    expect(shownKind(renderEmail(disguised).text.split('\n'))).toBe('spend.threshold');
    expect(slackContextTexts('not blocks')).toEqual([]);
  });
});
