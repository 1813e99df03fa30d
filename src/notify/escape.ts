/**
 * Escaping for every medium a notification reaches. Key, workspace and user names are chosen by whoever has
 * Console access, so a key named `<!channel>` or `<script>` must arrive as those characters, never as markup.
 */

/** Line breaks of every kind, including the Unicode ones some renderers honour. */
const LINE_BREAKS = /\r\n?|[\n\u0085\u2028\u2029]/g;
/**
 * Control characters (invisible at best, terminal escapes at worst) and bidirectional overrides, which can make a
 * key name read differently from what it is.
 */
const INVISIBLE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;

/** Flattens text onto one line: each line break and tab becomes a space, other control characters go. */
export function singleLine(text: string): string {
  return text.replace(LINE_BREAKS, ' ').replace(/\t/g, ' ').replace(INVISIBLE, '');
}

/** Keeps line breaks (as LF) and drops every other control character. */
export function multiLine(text: string): string {
  return text
    .replace(LINE_BREAKS, '\n')
    .replace(/\t/g, ' ')
    .replace(INVISIBLE, (c) => (c === '\n' ? c : ''));
}

/**
 * Cuts text to at most `max` UTF-16 units, ending with `…` when something was cut. Slack's limits count characters,
 * and a string never has more characters than UTF-16 units, so this stays within them. Never splits a surrogate
 * pair, so an emoji in a key name cannot turn into a broken character.
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let out = '';
  for (const ch of text) {
    if (out.length + ch.length > max - 1) break;
    out += ch;
  }
  return `${out}…`;
}

/**
 * Slack mrkdwn escaping. Slack's control sequences all start with `<` (`<!channel>`, `<@U123>`, `<#C1>`,
 * `<https://x|y>`), and `&` starts the entities, so replacing these three is all it takes: the characters still show.
 */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Untrusted text for a mrkdwn field: escaped, then cut to `max` characters of the escaped form without cutting an
 * entity in half (a dangling `&am` would show as such). Line breaks are kept only when `multiline` is set; inline
 * values are flattened so a name cannot start a fake line of its own (`\n*Severity:* info`).
 */
export function slackMrkdwn(text: string, max: number, opts: { multiline?: boolean } = {}): string {
  const clean = opts.multiline ? multiLine(text) : singleLine(text);
  const escaped = escapeSlack(clean);
  if (escaped.length <= max) return escaped;
  let out = '';
  for (const ch of clean) {
    const piece = escapeSlack(ch);
    if (out.length + piece.length > max - 1) break;
    out += piece;
  }
  return `${out}…`;
}

/**
 * Text for a Block Kit `plain_text` object (header, button label). Slack never parses plain_text for mentions or
 * links, so nothing is escaped (an `&amp;` would show literally); it only has to be one line and within the limit.
 */
export function slackPlainText(text: string, max: number): string {
  return truncate(singleLine(text), max);
}

const HTML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** HTML escaping for text and for attribute values (quotes included, so it is safe inside `href="..."`). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ENTITIES[c] ?? c);
}

/** A link target worth rendering: http(s) only, so a `javascript:` URL never becomes a clickable button or link. */
export function isWebUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Refusal to put a value with a line break into an email header. */
export class UnsafeHeaderError extends Error {
  readonly header: string;

  constructor(header: string, value: string) {
    super(
      `email header ${header} contains a line break (CR or LF): ${JSON.stringify(truncate(value, 80))}; ` +
        'refusing to send, since a line break in a header can add headers such as Bcc to the message',
    );
    this.name = 'UnsafeHeaderError';
    this.header = header;
  }
}

/** Throws UnsafeHeaderError when `value` holds a CR or LF (the only characters that end a header line in SMTP). */
export function assertSafeHeader(header: string, value: string): void {
  if (/[\r\n]/.test(value)) throw new UnsafeHeaderError(header, value);
}
