/**
 * What `keywarden demo` sets out to show, and when it has shown all of it: the demo then says so (a person knows
 * the tour is over) and, with `--exit-when-shown`, stops right there instead of waiting out `--exit-after`.
 */

/** One thing the demo printed: a section of its own, or a message the Slack stand-in or the SMTP sink received. */
export type Shown =
  | { medium: 'terminal'; what: TerminalSection }
  | { medium: 'slack'; channel: string; kind: string }
  | { medium: 'email'; to: readonly string[]; kind: string };

export type TerminalSection = 'inventory' | 'keys' | 'spend' | 'acknowledged' | 'approved';

/** One finding of the tour; `label` names it for people when it is still missing. */
export type Sight =
  | { medium: 'terminal'; what: TerminalSection; label: string }
  | { medium: 'slack'; channel: string; kind: string; label: string }
  | { medium: 'email'; to: string; kind: string; label: string };

/** Every kind of finding the demo's scenario and policy produce within its first minute, where its routes send it. */
export const DEMO_TOUR: readonly Sight[] = [
  { medium: 'terminal', what: 'inventory', label: 'the inventory' },
  { medium: 'terminal', what: 'keys', label: 'the keys table' },
  { medium: 'slack', channel: '#security', kind: 'key.identity', label: 'the key identity findings in Slack' },
  { medium: 'email', to: 'security@acme.example', kind: 'key.identity', label: 'the key identity findings by email' },
  { medium: 'slack', channel: '#ai-alerts', kind: 'usage.runaway', label: 'the runaway key in Slack' },
  { medium: 'slack', channel: '#security', kind: 'rotation.overdue', label: 'the overdue keys in Slack' },
  { medium: 'email', to: 'ana@acme.example', kind: 'rotation.overdue', label: "the overdue notice to the key's owner" },
  { medium: 'slack', channel: '#security', kind: 'rotation.due_soon', label: 'the rotation reminders in Slack' },
  { medium: 'slack', channel: '#finance', kind: 'spend.forecast', label: 'the spend forecast in Slack' },
  { medium: 'email', to: 'finance@acme.example', kind: 'spend.forecast', label: 'the spend forecast by email' },
  { medium: 'terminal', what: 'spend', label: 'the spend table' },
  { medium: 'email', to: 'finance@acme.example', kind: 'digest.finance', label: 'the finance digest' },
  { medium: 'email', to: 'security@acme.example', kind: 'digest.security', label: 'the security digest' },
  { medium: 'terminal', what: 'acknowledged', label: 'Acknowledge pressed on the runaway' },
  { medium: 'terminal', what: 'approved', label: 'Approve pressed on the drained overdue key' },
];

/** The sights still missing once `shown` has been printed. Pure. */
export function stillMissing(missing: readonly Sight[], shown: Shown): Sight[] {
  return missing.filter((sight) => !isShownBy(sight, shown));
}

function isShownBy(sight: Sight, shown: Shown): boolean {
  switch (sight.medium) {
    case 'terminal':
      return shown.medium === 'terminal' && shown.what === sight.what;
    case 'slack':
      return shown.medium === 'slack' && shown.channel === sight.channel && shown.kind === sight.kind;
    case 'email':
      return shown.medium === 'email' && shown.to.includes(sight.to) && shown.kind === sight.kind;
  }
}

/**
 * The kind of a message from the context line every alert and digest carries (`keywarden · rotation.overdue ·
 * firing · warning`, `keywarden · digest.finance`; see notify/render.ts), in Slack's context block or an email's
 * text; the last such line, since the title, which comes first, may hold a key's name. Only a first post counts
 * as showing an alert: a repeat or a resolve is not what the tour waits for.
 */
export function shownKind(contextTexts: readonly string[]): string | null {
  for (const text of [...contextTexts].reverse()) {
    const m = /^keywarden · ([a-z_]+\.[a-z_]+)(?: · ([a-z]+) · [a-z]+)?$/.exec(text.trim());
    if (m) return m[2] === undefined || m[2] === 'firing' ? m[1]! : null;
  }
  return null;
}

/** The texts of a Slack message's context blocks, where `shownKind` looks. */
export function slackContextTexts(blocks: unknown): string[] {
  if (!Array.isArray(blocks)) return [];
  return blocks.flatMap((b: { type?: unknown; elements?: unknown }) =>
    b?.type === 'context' && Array.isArray(b.elements)
      ? b.elements.flatMap((e: { text?: unknown }) => (typeof e?.text === 'string' ? [e.text] : []))
      : [],
  );
}
