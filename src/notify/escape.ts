/**
 * Escaping for every medium a notification reaches, and for the terminal the CLI prints to. Key, workspace and
 * user names are chosen by whoever has Console access, so a key named `<!channel>` or `<script>` must arrive as
 * those characters, never as markup, and a name holding an escape sequence must never reach a terminal as one.
 */

/** Line breaks of every kind, including the Unicode ones some renderers honour. */
const LINE_BREAKS = /\r\n?|[\n\u0085\u2028\u2029]/g;
/**
 * Control characters (invisible at best, terminal escapes at worst), and format characters: bidirectional
 * overrides, isolates and marks, which make a name read differently from what it is, and zero-width spaces and
 * joiners, which make two different names look the same. The Hangul fillers are letters that render as nothing.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\u115f\u1160\u3164\uffa0]/gu;

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
 * Text for a terminal (the CLI's tables and lists): one line, and every control, format or invisible character
 * shown as an escape (`\x1b`, `\n`, `\u202e`) rather than removed, so nothing acts on the terminal and two names
 * that differ only by an invisible character still look different to the person about to act on one of them.
 */
export function terminalText(text: string): string {
  return text.replace(TERMINAL_UNSAFE, visibleEscape);
}

/**
 * JSON for a terminal (`--json`): valid JSON that parses back to the raw values, with every character that
 * `terminalText` escapes written as a `\u` escape (four hex digits). JSON.stringify already escapes C0 controls, but not DEL,
 * C1 controls (0x9b is CSI to some terminals), bidi overrides or zero-width characters. The JSON structure itself is
 * ASCII, so each of those characters can only be inside a string, where the escape means the same character.
 */
export function terminalJson(value: unknown): string {
  // line breaks in the output are JSON's own indentation: inside strings JSON.stringify writes them as \n
  return JSON.stringify(value, null, 2).replace(JSON_UNSAFE, (c) =>
    [...Array(c.length).keys()].map((i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}

const TERMINAL_UNSAFE = /[\p{Cc}\p{Cf}\u2028\u2029\u115f\u1160\u3164\uffa0]/gu;
const JSON_UNSAFE = /(?!\n)[\p{Cc}\p{Cf}\u2028\u2029\u115f\u1160\u3164\uffa0]/gu;
const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function visibleEscape(c: string): string {
  const named = NAMED_ESCAPES[c];
  if (named) return named;
  const cp = c.codePointAt(0)!;
  if (cp <= 0xff) return `\\x${cp.toString(16).padStart(2, '0')}`;
  return cp <= 0xffff ? `\\u${cp.toString(16).padStart(4, '0')}` : `\\u{${cp.toString(16)}}`;
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
 * Slack has no escape for its formatting characters, so in untrusted text they are replaced by lookalikes Slack does
 * not parse (`*` → `∗`, `_` → `ˍ`, `~` → `∼`, a backtick → `ˋ`, the colons of an emoji code → `∶`): a name cannot
 * bold, strike or hide part of itself, show an emoji, nor close the bold around it and pose as a label
 * (`prod* Owner: *boss@…`). `*`, `_` and `~` only format at a word boundary, so inside a word (`ci_runner_key`) they
 * stay; a backtick opens code anywhere.
 */
function neutralizeMrkdwn(text: string): string {
  return text
    .replace(/`/g, '\u02cb')
    .replace(/[*_~]/g, (c, i: number, all: string) => {
      const boundary = (ch: string | undefined) => ch === undefined || !/[\p{L}\p{N}]/u.test(ch);
      return boundary(all[i - 1]) || boundary(all[i + 1]) ? MRKDWN_LOOKALIKE[c]! : c;
    })
    .replace(EMOJI_CODE, (_m, name: string) => `\u2236${name}\u2236`);
}

/** `:rotating_light:` renders as the emoji: a name could dress itself as one of keywarden's own icons. */
const EMOJI_CODE = /:([a-z][a-z0-9_+'-]*):/gi;

const MRKDWN_LOOKALIKE: Record<string, string> = { '*': '\u2217', _: '\u02cd', '~': '\u223c' };

/**
 * Untrusted text for a mrkdwn field: escaped, then cut to `max` characters of the escaped form without cutting an
 * entity in half (a dangling `&am` would show as such). Line breaks are kept only when `multiline` is set; inline
 * values are flattened so a name cannot start a fake line of its own (`\n*Severity:* info`).
 */
export function slackMrkdwn(text: string, max: number, opts: { multiline?: boolean } = {}): string {
  const clean = neutralizeMrkdwn(opts.multiline ? multiLine(text) : singleLine(text));
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
