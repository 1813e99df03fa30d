import type { Receivers } from '../config/receivers.ts';
import { isWebUrl, multiLine, singleLine, truncate } from './escape.ts';
import { type DeliveryResult, postJson } from './http-delivery.ts';
import type { Notification, NotificationField } from './message.ts';
import { contextLine, headline } from './render.ts';

/**
 * Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received", the successor of the
 * retired Office 365 connectors): an Adaptive Card with the title, the summary and the fields as facts. Workflows
 * does not render action buttons, so the links are markdown links in the text: a person reaches the Console from
 * the card, and acts there.
 */

/** Teams cuts a card whose message passes about 28 KB; grouped alerts stop well before that. */
const MAX_ITEMS = 20;
const TEXT_MAX = 2000;

interface AdaptiveCardMessage {
  type: 'message';
  attachments: { contentType: 'application/vnd.microsoft.card.adaptive'; contentUrl: null; content: AdaptiveCard }[];
}

interface AdaptiveCard {
  $schema: string;
  type: 'AdaptiveCard';
  version: '1.4';
  body: CardElement[];
  msteams: { width: 'Full' };
}

type CardElement =
  | {
      type: 'TextBlock';
      text: string;
      wrap: true;
      weight?: 'Bolder';
      size?: 'Medium';
      isSubtle?: true;
      color?: 'Attention' | 'Warning' | 'Good';
    }
  | { type: 'FactSet'; facts: { title: string; value: string }[] };

/**
 * Text for a TextBlock or a fact. Teams renders a markdown subset in both (`**bold**`, `_italic_`, `[text](url)`,
 * lists), so the characters that start any of it are escaped with a backslash and show as themselves: a key named
 * `[pay here](https://evil)` is that text, not a link. Line breaks are kept only where the field allows them.
 */
export function teamsText(text: string, lines: 'single' | 'multi' = 'single'): string {
  const flat = lines === 'single' ? singleLine(text) : multiLine(text);
  return (
    truncate(flat, TEXT_MAX)
      .replace(/[\\*_[\]()`~#<>|!+-]/g, '\\$&')
      // `1. ` at a line's start would begin a numbered list
      .replace(/^(\s*\d+)\./gm, '$1\\.')
  );
}

/** A markdown link of keywarden's own (Console pages): its label escaped, its URL with the characters that end it encoded. */
function teamsLink(label: string, url: string): string {
  return `[${teamsText(label)}](${url.replace(/[()\s<>]/g, (c) => encodeURIComponent(c))})`;
}

function facts(fields: readonly NotificationField[]): CardElement {
  return { type: 'FactSet', facts: fields.map((f) => ({ title: teamsText(f.label), value: teamsText(f.value) })) };
}

/** The card for a notification. Pure. */
export function renderTeamsMessage(n: Notification): AdaptiveCardMessage {
  const color = n.event === 'resolved' ? 'Good' : n.severity === 'critical' ? 'Attention' : 'Warning';
  const body: CardElement[] = [
    { type: 'TextBlock', text: teamsText(headline(n)), wrap: true, weight: 'Bolder', size: 'Medium', color },
  ];
  if (n.summary) body.push({ type: 'TextBlock', text: teamsText(n.summary, 'multi'), wrap: true });
  if (n.fields.length > 0) body.push(facts(n.fields));
  const items = n.items ?? [];
  for (const item of items.slice(0, MAX_ITEMS)) {
    body.push({ type: 'TextBlock', text: teamsText(item.title), wrap: true, weight: 'Bolder' });
    if (item.fields.length > 0) body.push(facts(item.fields));
  }
  if (items.length > MAX_ITEMS) {
    body.push({ type: 'TextBlock', text: `…and ${items.length - MAX_ITEMS} more`, wrap: true, isSubtle: true });
  }
  const links = n.links.filter((l) => isWebUrl(l.url));
  if (links.length > 0) {
    body.push({
      type: 'TextBlock',
      text: links.map((l) => teamsLink(l.label || 'Open', l.url)).join(' · '),
      wrap: true,
    });
  }
  if (n.footer) body.push({ type: 'TextBlock', text: teamsText(n.footer, 'multi'), wrap: true, isSubtle: true });
  body.push({ type: 'TextBlock', text: teamsText(contextLine(n)), wrap: true, isSubtle: true });
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body,
          msteams: { width: 'Full' },
        },
      },
    ],
  };
}

export interface TeamsClient {
  send(receiver: string, message: AdaptiveCardMessage): Promise<DeliveryResult>;
}

export function createTeamsClient(opts: { receivers: Receivers['teams']; timeoutMs?: number }): TeamsClient {
  return {
    async send(receiver, message) {
      const r = opts.receivers[receiver];
      const what = `teams "${receiver}"`;
      if (r === undefined) {
        return {
          ok: false,
          failure: { kind: 'retryable', reason: `${what}: not in the policy's receivers.teams (was it renamed?)` },
        };
      }
      const url = r.url.reveal();
      const res = await postJson({
        what,
        url,
        body: JSON.stringify(message),
        timeoutMs: opts.timeoutMs ?? 10_000,
        // the URL is the credential (its `sig`): an error page that quotes it must not put it in the outbox row
        secrets: [url, new URL(url).searchParams.get('sig') ?? ''],
        permanentHint: (status) =>
          status === 401 || status === 403 || status === 404
            ? ' (the workflow URL is not valid any more: copy it again from the workflow in Teams)'
            : '',
      });
      // Workflows answers 202 with no id of the post it will make
      return 'status' in res ? { ok: true, providerId: `${receiver}:${res.status}` } : res;
    },
  };
}
