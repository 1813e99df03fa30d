import type { Severity } from '../alerts/kinds.ts';
import { escapeHtml, isWebUrl, multiLine, singleLine, slackMrkdwn, slackPlainText, truncate } from './escape.ts';
import type {
  Notification,
  NotificationEvent,
  NotificationField,
  NotificationItem,
  NotificationLink,
} from './message.ts';

/**
 * Notification → Slack message and email. Pure: the same notification always renders the same way, so the outbox
 * can render at enqueue time and store the result. Every string in a Notification is untrusted; this module is the
 * only place markup is added.
 */

// The Block Kit objects keywarden sends. Slack's own types live in a transitive package; these few are enough, and
// keep the limits below next to the shapes they constrain.
export interface PlainTextObject {
  type: 'plain_text';
  text: string;
  emoji?: boolean;
}
export interface MrkdwnObject {
  type: 'mrkdwn';
  text: string;
  /** true: Slack does not auto-link bare URLs, channel names or `@here`-style words in this text. */
  verbatim?: boolean;
}
export interface LinkButton {
  type: 'button';
  text: PlainTextObject;
  url: string;
  action_id: string;
}
export type SlackBlock =
  | { type: 'header'; text: PlainTextObject }
  | { type: 'section'; text: MrkdwnObject }
  | { type: 'section'; fields: MrkdwnObject[] }
  | { type: 'context'; elements: MrkdwnObject[] }
  | { type: 'actions'; elements: LinkButton[] };

export interface SlackMessage {
  /** The fallback: what push notifications, screen readers and old clients show. */
  text: string;
  blocks: SlackBlock[];
}

export interface EmailContent {
  subject: string;
  text: string;
  html: string;
}

/** An image attached to the email by the sender (Content-ID `cid`), placed after the summary. */
export interface InlineImageRef {
  cid: string;
  alt: string;
}

/** Slack's documented Block Kit limits (characters, elements); past them chat.postMessage fails with invalid_blocks. */
const SLACK = {
  blocks: 50,
  header: 150,
  sectionText: 3000,
  fieldsPerSection: 10,
  fieldText: 2000,
  contextText: 2000,
  buttonsPerActions: 25,
  buttonText: 75,
  buttonUrl: 3000,
} as const;

/** Field lists beyond two sections are a rendering mistake upstream; the rest is cut rather than failing the post. */
const MAX_FIELD_SECTIONS = 2;
/** A message listing more than this many subjects is read as "many": the rest become an "and N more" line. */
const SLACK_MAX_ITEMS = 100;
/** One grouped item on one line: enough for a name and a few figures. */
const ITEM_TITLE_MAX = 200;
const ITEM_DETAIL_MAX = 380;
/** The fallback text only has to carry the gist into a push notification. */
const FALLBACK_MAX = 1000;
/** An email can hold more items than a Slack message, but not without bound. */
const EMAIL_MAX_ITEMS = 200;

const SEVERITY_ICON: Record<Severity, string> = { critical: '🚨', warning: '⚠️', info: 'ℹ️' };
const SEVERITY_COLOR: Record<Severity, string> = { critical: '#b42318', warning: '#b54708', info: '#175cd3' };
const RESOLVED_ICON = '✅';
const RESOLVED_COLOR = '#067647';

const EVENT_PREFIX: Record<NotificationEvent, string> = {
  firing: '',
  repeat: 'Still firing: ',
  resolved: 'Resolved: ',
};

/** `🚨 Still firing: <title>`: the raw headline, before any medium's escaping. */
function headline(n: Notification): string {
  const icon = n.event === 'resolved' ? RESOLVED_ICON : SEVERITY_ICON[n.severity];
  return `${icon} ${EVENT_PREFIX[n.event]}${n.title}`;
}

function contextLine(n: Notification): string {
  return `keywarden · ${n.kind} · ${n.event} · ${n.severity}`;
}

function webLinks(n: Notification): NotificationLink[] {
  return n.links.filter((l) => isWebUrl(l.url));
}

/** A link's label, or its host when the label is blank: a button needs a visible name. */
function linkLabel(l: NotificationLink): string {
  return singleLine(l.label).trim() || new URL(l.url).host;
}

function fieldDetail(fields: NotificationField[]): string {
  return fields.map((f) => `${singleLine(f.label)}: ${singleLine(f.value)}`).join(' · ');
}

function chunk<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

function slackItemLine(item: NotificationItem): string {
  const title = `• *${slackMrkdwn(item.title, ITEM_TITLE_MAX)}*`;
  return item.fields.length > 0 ? `${title} — ${slackMrkdwn(fieldDetail(item.fields), ITEM_DETAIL_MAX)}` : title;
}

/** Whole lines into as few texts as fit in `max` characters each. */
function packLines(lines: string[], max: number): string[] {
  const out: string[] = [];
  let current = '';
  for (const line of lines) {
    if (current && current.length + 1 + line.length > max) {
      out.push(current);
      current = line;
    } else {
      current = current ? `${current}\n${line}` : line;
    }
  }
  if (current) out.push(current);
  return out;
}

function mrkdwn(text: string): MrkdwnObject {
  // verbatim: Slack would otherwise auto-link words in user text (a key named `@here`, a bare channel name).
  return { type: 'mrkdwn', text, verbatim: true };
}

/**
 * The Slack message: header, summary, fields, grouped items (packed several per section, with an "and N more" line
 * when even that exceeds the 50-block limit), a context line and link buttons to the Console.
 */
export function renderSlack(n: Notification): SlackMessage {
  const head: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: slackPlainText(headline(n), SLACK.header), emoji: false } },
  ];
  // Emptiness is judged after cleaning: a summary of control characters renders as nothing, and Slack refuses
  // empty text objects.
  const summary = slackMrkdwn(n.summary, SLACK.sectionText, { multiline: true });
  if (summary.trim()) head.push({ type: 'section', text: mrkdwn(summary) });
  const fieldTexts = n.fields.map((f) => {
    const label = slackMrkdwn(f.label, 100);
    return mrkdwn(`*${label}*\n${slackMrkdwn(f.value, SLACK.fieldText - label.length - 3)}`);
  });
  for (const fields of chunk(fieldTexts, SLACK.fieldsPerSection).slice(0, MAX_FIELD_SECTIONS)) {
    head.push({ type: 'section', fields });
  }

  const tail: SlackBlock[] = [];
  const contextTexts = [slackMrkdwn(contextLine(n), SLACK.contextText)];
  const footer = slackMrkdwn(n.footer ?? '', SLACK.contextText, { multiline: true });
  if (footer.trim()) contextTexts.push(footer);
  tail.push({ type: 'context', elements: contextTexts.map(mrkdwn) });
  const buttons: LinkButton[] = webLinks(n)
    .filter((l) => l.url.length <= SLACK.buttonUrl)
    .slice(0, SLACK.buttonsPerActions)
    .map((l, i) => ({
      type: 'button',
      text: { type: 'plain_text', text: slackPlainText(linkLabel(l), SLACK.buttonText), emoji: false },
      url: l.url,
      action_id: `open-link-${i}`,
    }));
  if (buttons.length > 0) tail.push({ type: 'actions', elements: buttons });

  const middle: SlackBlock[] = [];
  const items = n.items ?? [];
  if (items.length > 0) {
    // Room left for item sections, keeping one block for the "and N more" line.
    const budget = SLACK.blocks - head.length - tail.length - 1;
    const sections = packLines(items.slice(0, SLACK_MAX_ITEMS).map(slackItemLine), SLACK.sectionText);
    let shown = 0;
    for (const text of sections.slice(0, budget)) {
      middle.push({ type: 'section', text: mrkdwn(text) });
      shown += text.split('\n').length;
    }
    if (shown < items.length) {
      middle.push({ type: 'context', elements: [mrkdwn(`…and ${items.length - shown} more`)] });
    }
  }

  const fallback = n.summary.trim() ? `${headline(n)}: ${n.summary}` : headline(n);
  return { text: slackMrkdwn(fallback, FALLBACK_MAX), blocks: [...head, ...middle, ...tail] };
}

function emailSubject(n: Notification): string {
  const tag = n.event === 'resolved' ? '' : `[${n.severity}] `;
  return truncate(singleLine(`[keywarden] ${tag}${EVENT_PREFIX[n.event]}${n.title}`), 200);
}

function emailText(n: Notification, items: NotificationItem[]): string {
  const lines: string[] = [singleLine(headline(n)), ''];
  if (n.summary.trim()) lines.push(multiLine(n.summary), '');
  for (const f of n.fields) lines.push(`${singleLine(f.label)}: ${singleLine(f.value)}`);
  if (n.fields.length > 0) lines.push('');
  if (items.length > 0) {
    for (const item of items.slice(0, EMAIL_MAX_ITEMS)) {
      const detail = fieldDetail(item.fields);
      lines.push(`- ${singleLine(item.title)}${detail ? ` — ${detail}` : ''}`);
    }
    if (items.length > EMAIL_MAX_ITEMS) lines.push(`…and ${items.length - EMAIL_MAX_ITEMS} more`);
    lines.push('');
  }
  for (const l of webLinks(n)) lines.push(`${linkLabel(l)}: ${l.url}`);
  if (webLinks(n).length > 0) lines.push('');
  lines.push(contextLine(n));
  if (n.footer?.trim()) lines.push(multiLine(n.footer));
  return `${lines.join('\n')}\n`;
}

/** Text with its line breaks shown as <br>: summaries and footers keep their shape. */
function htmlLines(text: string): string {
  return multiLine(text).split('\n').map(escapeHtml).join('<br>');
}

function emailHtml(n: Notification, items: NotificationItem[], images: InlineImageRef[]): string {
  const color = n.event === 'resolved' ? RESOLVED_COLOR : SEVERITY_COLOR[n.severity];
  const parts: string[] = [
    '<!doctype html>',
    '<html><head><meta charset="utf-8"></head>',
    '<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#101828;line-height:1.45">',
    `<h2 style="margin:0 0 12px;color:${color}">${escapeHtml(singleLine(headline(n)))}</h2>`,
  ];
  if (n.summary.trim()) parts.push(`<p>${htmlLines(n.summary)}</p>`);
  for (const img of images) {
    parts.push(
      `<p><img src="cid:${escapeHtml(img.cid)}" alt="${escapeHtml(singleLine(img.alt))}" style="max-width:100%"></p>`,
    );
  }
  if (n.fields.length > 0) {
    parts.push('<table style="border-collapse:collapse;margin:8px 0">');
    for (const f of n.fields) {
      parts.push(
        `<tr><th style="text-align:left;padding:2px 12px 2px 0;vertical-align:top">${escapeHtml(singleLine(f.label))}</th>` +
          `<td style="padding:2px 0">${escapeHtml(singleLine(f.value))}</td></tr>`,
      );
    }
    parts.push('</table>');
  }
  if (items.length > 0) {
    parts.push('<ul style="padding-left:20px">');
    for (const item of items.slice(0, EMAIL_MAX_ITEMS)) {
      const detail = fieldDetail(item.fields);
      parts.push(
        `<li><strong>${escapeHtml(singleLine(item.title))}</strong>${detail ? ` — ${escapeHtml(detail)}` : ''}</li>`,
      );
    }
    if (items.length > EMAIL_MAX_ITEMS) parts.push(`<li>…and ${items.length - EMAIL_MAX_ITEMS} more</li>`);
    parts.push('</ul>');
  }
  const links = webLinks(n);
  if (links.length > 0) {
    const anchors = links.map((l) => `<a href="${escapeHtml(l.url)}">${escapeHtml(linkLabel(l))}</a>`);
    parts.push(`<p>${anchors.join(' · ')}</p>`);
  }
  parts.push(`<p style="color:#667085;font-size:12px">${escapeHtml(contextLine(n))}`);
  if (n.footer?.trim()) parts.push(`<br>${htmlLines(n.footer)}`);
  parts.push('</p>', '</body></html>');
  return parts.join('\n');
}

/** The email: a one-line subject, a plain-text part and an HTML part carrying the same content. */
export function renderEmail(n: Notification, opts: { images?: InlineImageRef[] } = {}): EmailContent {
  const items = n.items ?? [];
  return { subject: emailSubject(n), text: emailText(n, items), html: emailHtml(n, items, opts.images ?? []) };
}
