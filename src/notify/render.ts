import type { Severity } from '../kinds.ts';
import { escapeHtml, isWebUrl, multiLine, singleLine, slackMrkdwn, slackPlainText, truncate } from './escape.ts';
import type {
  DigestMessage,
  DigestSection,
  Notification,
  NotificationEvent,
  NotificationField,
  NotificationItem,
  NotificationLink,
} from './message.ts';

/**
 * Notification → Slack message and email, rendered when the message is sent (notify/adapters.ts): the outbox stores
 * the Notification, so a row reads as plain data and a renderer fix reaches the messages still waiting. Pure: the same
 * notification always renders the same way. Every string in a Notification is untrusted; this module is the only
 * place markup is added.
 */

// The Block Kit objects keywarden sends. Slack's own types live in a transitive package; these few are enough, and
// keep the limits below next to the shapes they constrain.
interface PlainTextObject {
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
interface LinkButton {
  type: 'button';
  text: PlainTextObject;
  url: string;
  action_id: string;
}
/** A button that acts (src/actions/): its `value` names a row in Postgres, never what it acts on. */
export interface ActionButton {
  type: 'button';
  text: PlainTextObject;
  action_id: string;
  value: string;
  style?: 'primary' | 'danger';
}
export type SlackBlock =
  | { type: 'header'; text: PlainTextObject }
  | { type: 'section'; text: MrkdwnObject }
  | { type: 'section'; fields: MrkdwnObject[] }
  | { type: 'context'; elements: MrkdwnObject[] }
  | { type: 'actions'; elements: LinkButton[] };

/** What a Slack post may carry: the rendered blocks, and the action buttons an adapter adds to an alert. */
export type SlackPostBlock = SlackBlock | { type: 'actions'; elements: Array<ActionButton | ActionSelect> };

/** A menu that acts: each option's `value` names a row in Postgres, as a button's does. */
export interface ActionSelect {
  type: 'static_select';
  action_id: string;
  placeholder: PlainTextObject;
  options: Array<{ text: PlainTextObject; value: string }>;
}

interface SlackMessage {
  /** The fallback: what push notifications, screen readers and old clients show. */
  text: string;
  blocks: SlackBlock[];
}

interface EmailContent {
  subject: string;
  text: string;
  html: string;
}

/** An image attached to the email by the sender (Content-ID `cid`), placed after the summary. */
interface InlineImageRef {
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
export function headline(n: Notification): string {
  const icon = n.event === 'resolved' ? RESOLVED_ICON : SEVERITY_ICON[n.severity];
  return `${icon} ${EVENT_PREFIX[n.event]}${n.title}`;
}

export function contextLine(n: Notification): string {
  return `keywarden · ${n.kind} · ${n.event} · ${n.severity}`;
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

/** What every Slack message opens with, alert or digest: the header, the summary and the headline fields. */
function slackHead(title: string, summaryText: string, fieldList: NotificationField[]): SlackBlock[] {
  const head: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: slackPlainText(title, SLACK.header), emoji: false } },
  ];
  // Emptiness is judged after cleaning: a summary of control characters renders as nothing, and Slack refuses
  // empty text objects.
  const summary = slackMrkdwn(summaryText, SLACK.sectionText, { multiline: true });
  if (summary.trim()) head.push({ type: 'section', text: mrkdwn(summary) });
  const fieldTexts = fieldList.map((f) => {
    const label = slackMrkdwn(f.label, 100);
    return mrkdwn(`*${label}*\n${slackMrkdwn(f.value, SLACK.fieldText - label.length - 3)}`);
  });
  for (const fields of chunk(fieldTexts, SLACK.fieldsPerSection).slice(0, MAX_FIELD_SECTIONS)) {
    head.push({ type: 'section', fields });
  }
  return head;
}

/** What every Slack message ends with: the context line (and footer), and the http(s) links as buttons. */
function slackTail(context: string, footerText: string | undefined, links: NotificationLink[]): SlackBlock[] {
  const contextTexts = [slackMrkdwn(context, SLACK.contextText)];
  const footer = slackMrkdwn(footerText ?? '', SLACK.contextText, { multiline: true });
  if (footer.trim()) contextTexts.push(footer);
  const tail: SlackBlock[] = [{ type: 'context', elements: contextTexts.map(mrkdwn) }];
  const buttons: LinkButton[] = links
    .filter((l) => isWebUrl(l.url) && l.url.length <= SLACK.buttonUrl)
    .slice(0, SLACK.buttonsPerActions)
    .map((l, i) => ({
      type: 'button',
      text: { type: 'plain_text', text: slackPlainText(linkLabel(l), SLACK.buttonText), emoji: false },
      url: l.url,
      action_id: `open-link-${i}`,
    }));
  if (buttons.length > 0) tail.push({ type: 'actions', elements: buttons });
  return tail;
}

/** The text Slack puts in push notifications: the headline and the summary. */
function slackFallback(title: string, summary: string): string {
  return slackMrkdwn(summary.trim() ? `${title}: ${summary}` : title, FALLBACK_MAX);
}

/**
 * The Slack message: header, summary, fields, grouped items (packed several per section, with an "and N more" line
 * when even that exceeds the 50-block limit), a context line and link buttons to the Console.
 */
export function renderSlack(n: Notification): SlackMessage {
  const head = slackHead(headline(n), n.summary, n.fields);
  const tail = slackTail(contextLine(n), n.footer, n.links);

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

  return { text: slackFallback(headline(n), n.summary), blocks: [...head, ...middle, ...tail] };
}

function emailSubject(n: Notification): string {
  const tag = n.event === 'resolved' ? '' : `[${n.severity}] `;
  return truncate(singleLine(`[keywarden] ${tag}${EVENT_PREFIX[n.event]}${n.title}`), 200);
}

/** How every plain-text email opens, alert or digest: the title, the summary and the headline fields. */
function textOpening(title: string, summary: string, fields: NotificationField[]): string[] {
  const lines: string[] = [singleLine(title), ''];
  if (summary.trim()) lines.push(multiLine(summary), '');
  for (const f of fields) lines.push(`${singleLine(f.label)}: ${singleLine(f.value)}`);
  if (fields.length > 0) lines.push('');
  return lines;
}

/** How every plain-text email ends: the http(s) links, the context line and the footer. */
function textEnding(context: string, footer: string | undefined, links: NotificationLink[]): string[] {
  const lines: string[] = [];
  const web = links.filter((l) => isWebUrl(l.url));
  for (const l of web) lines.push(`${linkLabel(l)}: ${l.url}`);
  if (web.length > 0) lines.push('');
  lines.push(context);
  if (footer?.trim()) lines.push(multiLine(footer));
  return lines;
}

/** How every HTML email ends: the http(s) links, then the context line and the footer in small grey type. */
function htmlEnding(context: string, footer: string | undefined, links: NotificationLink[]): string[] {
  const parts: string[] = [];
  const web = links.filter((l) => isWebUrl(l.url));
  if (web.length > 0) {
    const anchors = web.map((l) => `<a href="${escapeHtml(l.url)}">${escapeHtml(linkLabel(l))}</a>`);
    parts.push(`<p>${anchors.join(' · ')}</p>`);
  }
  parts.push(`<p style="color:#667085;font-size:12px">${escapeHtml(context)}`);
  if (footer?.trim()) parts.push(`<br>${htmlLines(footer)}`);
  parts.push('</p>', '</body></html>');
  return parts;
}

/** A grouped item's title and detail on one line, cut to the lengths a Slack item is cut to. */
function emailItem(item: NotificationItem): { title: string; detail: string } {
  return {
    title: truncate(singleLine(item.title), ITEM_TITLE_MAX),
    detail: truncate(fieldDetail(item.fields), ITEM_DETAIL_MAX),
  };
}

function emailText(n: Notification, items: NotificationItem[]): string {
  const lines = textOpening(headline(n), n.summary, n.fields);
  if (items.length > 0) {
    for (const item of items.slice(0, EMAIL_MAX_ITEMS)) {
      const { title, detail } = emailItem(item);
      lines.push(`- ${title}${detail ? ` — ${detail}` : ''}`);
    }
    if (items.length > EMAIL_MAX_ITEMS) lines.push(`…and ${items.length - EMAIL_MAX_ITEMS} more`);
    lines.push('');
  }
  lines.push(...textEnding(contextLine(n), n.footer, n.links));
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
      const { title, detail } = emailItem(item);
      parts.push(`<li><strong>${escapeHtml(title)}</strong>${detail ? ` — ${escapeHtml(detail)}` : ''}</li>`);
    }
    if (items.length > EMAIL_MAX_ITEMS) parts.push(`<li>…and ${items.length - EMAIL_MAX_ITEMS} more</li>`);
    parts.push('</ul>');
  }
  parts.push(...htmlEnding(contextLine(n), n.footer, n.links));
  return parts.join('\n');
}

/** The email: a one-line subject, a plain-text part and an HTML part carrying the same content. */
export function renderEmail(n: Notification, opts: { images?: InlineImageRef[] } = {}): EmailContent {
  const items = n.items ?? [];
  return { subject: emailSubject(n), text: emailText(n, items), html: emailHtml(n, items, opts.images ?? []) };
}

// Digests: the same media, with tables instead of alert fields. Figures are formatted by the composer; here they
// are escaped, aligned and cut to each medium's limits like every other untrusted string.

const DIGEST_ICON = '📊';
/** Slack shows a digest's tables as lists; past this many rows a list says "and N more" (the email has them all). */
const SLACK_DIGEST_ROWS = 15;
/** A cell in the plain-text table: long names are cut so a row stays readable in a fixed-width font. */
const TEXT_CELL_MAX = 48;

/** In Slack, where a digest sits between alerts, an icon tells it apart; an email's subject already does that. */
function digestHeadline(d: DigestMessage): string {
  return `${DIGEST_ICON} ${d.title}`;
}

function digestContext(d: DigestMessage): string {
  return `keywarden · ${d.kind}`;
}

/** `• *first cell* — Label: value · Label: value`: a row as one line, its first cell as the subject. */
function slackDigestRow(section: DigestSection, row: string[]): string {
  const [first = '', ...rest] = row;
  const detail = rest
    .map((cell, i) => ({ label: section.columns[i + 1]?.label ?? '', value: cell }))
    .filter((c) => c.value.trim() !== '')
    .map((c) => `${singleLine(c.label)}: ${singleLine(c.value)}`)
    .join(' · ');
  const title = `• *${slackMrkdwn(first, ITEM_TITLE_MAX)}*`;
  return detail ? `${title} — ${slackMrkdwn(detail, ITEM_DETAIL_MAX)}` : title;
}

/** Each section as a bold title and a list; long lists are cut with an "and N more" line. */
function slackDigestSection(section: DigestSection): string[] {
  const title = `*${slackMrkdwn(section.title, 200)}*`;
  if (section.rows.length === 0) return [title, `_${slackMrkdwn(section.empty, 500)}_`];
  const shown = section.rows.slice(0, SLACK_DIGEST_ROWS);
  const hidden = section.rows.length - shown.length + (section.more ?? 0);
  const lines = [title, ...shown.map((r) => slackDigestRow(section, r))];
  if (hidden > 0) lines.push(`…and ${hidden} more`);
  return lines;
}

/** The digest in Slack: header, summary, headline figures, one list per section, context and link buttons. */
export function renderDigestSlack(d: DigestMessage): SlackMessage {
  const head = slackHead(digestHeadline(d), d.summary, d.fields);
  const tail = slackTail(digestContext(d), d.footer, d.links);

  // Sections stop where the block budget ends; the email carries everything, so a cut is said, not hidden.
  const budget = SLACK.blocks - head.length - tail.length - 1;
  const texts = d.sections.flatMap((s) => packLines(slackDigestSection(s), SLACK.sectionText));
  const middle: SlackBlock[] = texts.slice(0, budget).map((text) => ({ type: 'section', text: mrkdwn(text) }));
  if (texts.length > budget) {
    middle.push({ type: 'context', elements: [mrkdwn('…the rest of this digest is in the email version')] });
  }

  return { text: slackFallback(digestHeadline(d), d.summary), blocks: [...head, ...middle, ...tail] };
}

/** A table in a fixed-width font: columns padded to their widest cell, figures right-aligned. */
function textTable(section: DigestSection, rows: string[][]): string[] {
  const cells = [section.columns.map((c) => c.label), ...rows].map((r) =>
    section.columns.map((_, i) => truncate(singleLine(r[i] ?? ''), TEXT_CELL_MAX)),
  );
  const widths = section.columns.map((_, i) => Math.max(...cells.map((r) => [...(r[i] ?? '')].length)));
  const pad = (text: string, i: number) => {
    const gap = ' '.repeat((widths[i] ?? 0) - [...text].length);
    return section.columns[i]?.align === 'right' ? gap + text : text + gap;
  };
  const lines = cells.map((r) => r.map(pad).join('  ').trimEnd());
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines;
}

function digestText(d: DigestMessage): string {
  const lines = textOpening(d.title, d.summary, d.fields);
  for (const section of d.sections) {
    const title = singleLine(section.title);
    lines.push(title, '='.repeat([...title].length));
    if (section.rows.length === 0) lines.push(singleLine(section.empty));
    else {
      const shown = section.rows.slice(0, EMAIL_MAX_ITEMS);
      lines.push(...textTable(section, shown));
      const hidden = section.rows.length - shown.length + (section.more ?? 0);
      if (hidden > 0) lines.push(`…and ${hidden} more`);
    }
    lines.push('');
  }
  lines.push(...textEnding(digestContext(d), d.footer, d.links));
  return `${lines.join('\n')}\n`;
}

const CELL = 'padding:5px 10px;border-bottom:1px solid #eaecf0;vertical-align:top';

function htmlTable(section: DigestSection, rows: string[][]): string {
  const align = (i: number) => (section.columns[i]?.align === 'right' ? 'right' : 'left');
  const head = section.columns
    .map(
      (c, i) =>
        `<th style="${CELL};text-align:${align(i)};background:#f2f4f7;font-weight:600;white-space:nowrap">${escapeHtml(singleLine(c.label))}</th>`,
    )
    .join('');
  const body = rows.map((r) => {
    const cells = section.columns.map((_, i) => {
      const nowrap = align(i) === 'right' ? ';white-space:nowrap' : '';
      return `<td style="${CELL};text-align:${align(i)}${nowrap}">${escapeHtml(singleLine(r[i] ?? ''))}</td>`;
    });
    return `<tr>${cells.join('')}</tr>`;
  });
  return [
    '<table style="border-collapse:collapse;margin:4px 0 8px;font-size:14px">',
    `<thead><tr>${head}</tr></thead>`,
    `<tbody>${body.join('\n')}</tbody>`,
    '</table>',
  ].join('\n');
}

function digestHtml(d: DigestMessage, images: InlineImageRef[]): string {
  const parts: string[] = [
    '<!doctype html>',
    '<html><head><meta charset="utf-8"></head>',
    '<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#101828;line-height:1.45;max-width:760px">',
    `<h2 style="margin:0 0 12px">${escapeHtml(singleLine(d.title))}</h2>`,
  ];
  if (d.summary.trim()) parts.push(`<p>${htmlLines(d.summary)}</p>`);
  if (d.fields.length > 0) {
    parts.push('<table style="border-collapse:collapse;margin:8px 0">');
    for (const f of d.fields) {
      parts.push(
        `<tr><th style="text-align:left;padding:2px 16px 2px 0;vertical-align:top">${escapeHtml(singleLine(f.label))}</th>` +
          `<td style="padding:2px 0">${escapeHtml(singleLine(f.value))}</td></tr>`,
      );
    }
    parts.push('</table>');
  }
  for (const img of images) {
    parts.push(
      `<p><img src="cid:${escapeHtml(img.cid)}" alt="${escapeHtml(singleLine(img.alt))}" width="720" style="max-width:100%;height:auto"></p>`,
    );
  }
  for (const section of d.sections) {
    parts.push(`<h3 style="margin:20px 0 6px;font-size:16px">${escapeHtml(singleLine(section.title))}</h3>`);
    if (section.rows.length === 0) {
      parts.push(`<p style="color:#475467;margin:4px 0">${escapeHtml(singleLine(section.empty))}</p>`);
      continue;
    }
    const shown = section.rows.slice(0, EMAIL_MAX_ITEMS);
    parts.push(htmlTable(section, shown));
    const hidden = section.rows.length - shown.length + (section.more ?? 0);
    if (hidden > 0) parts.push(`<p style="color:#475467;margin:4px 0">…and ${hidden} more</p>`);
  }
  parts.push(...htmlEnding(digestContext(d), d.footer, d.links));
  return parts.join('\n');
}

/** The digest as an email: subject, plain-text tables, and HTML tables with the inline images after the figures. */
export function renderDigestEmail(d: DigestMessage, opts: { images?: InlineImageRef[] } = {}): EmailContent {
  return {
    subject: truncate(singleLine(`[keywarden] ${d.title}`), 200),
    text: digestText(d),
    html: digestHtml(d, opts.images ?? []),
  };
}
