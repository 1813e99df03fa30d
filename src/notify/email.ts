import nodemailer, { type NodemailerError } from 'nodemailer';
import type { Secret } from '../config/secret.ts';
import { scrubSecrets } from '../log.ts';
import { assertSafeHeader, truncate, UnsafeHeaderError } from './escape.ts';
import type { DeliveryFailure } from './message.ts';

/**
 * The email adapter: nodemailer over SMTP_URL, from EMAIL_FROM. It refuses header values with line breaks before
 * anything is sent, bounds every wait with a timeout, and classifies failures for the outbox.
 */

interface EmailOptions {
  /** `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://…:465` (TLS from the start). */
  smtpUrl: Secret;
  /** EMAIL_FROM: `kw@acme.com` or `"Keywarden" <kw@acme.com>`. */
  from: string;
  /** Defaults: 10 s to connect, 10 s for the greeting, 30 s of silence mid-conversation. */
  timeouts?: { connectionMs?: number; greetingMs?: number; socketMs?: number };
}

type EmailRecipient = string | { name: string; address: string };

/** An image shown by the HTML part through `<img src="cid:…">` (charts), sent as an inline related part. */
export interface InlineImage {
  cid: string;
  filename: string;
  content: Buffer;
  /** Default `image/png`. */
  contentType?: string;
}

export interface OutgoingEmail {
  to: EmailRecipient[];
  subject: string;
  text: string;
  html: string;
  attachments?: InlineImage[];
}

/** `rejected`: recipients the server refused while it accepted others (the message went to the rest). */
export type EmailSendResult =
  | { ok: true; messageId: string; rejected: string[] }
  | { ok: false; failure: DeliveryFailure };

export interface EmailSender {
  sendEmail(email: OutgoingEmail): Promise<EmailSendResult>;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

/** Nodemailer error codes for a connection that failed or went quiet: the next attempt may well succeed. */
const TRANSIENT_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'EPROTOCOL', 'EPROXY']);
/**
 * The server, not the message: the connection was refused, the host not found, or the connection, greeting or TLS
 * upgrade never completed. A reset or an idle socket later in the conversation can belong to one message (a
 * content filter giving up on it), so those do not count.
 */
const UNREACHABLE_SYSTEM_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const UNREACHABLE_TIMEOUTS = new Set(['CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'UPGRADE_TIMEOUT']);
/** Codes that say the configuration or the message is wrong: retrying sends the same thing again. */
const CONFIG_CODES = new Set(['EAUTH', 'ENOAUTH', 'ECONFIG', 'ETLS', 'EREQUIRETLS', 'EENVELOPE', 'EMESSAGE']);

export function createEmailSender(opts: EmailOptions): EmailSender {
  const url = new URL(opts.smtpUrl.reveal());
  const secure = url.protocol === 'smtps:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1'); // IPv6 literals come bracketed
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  const transport = nodemailer.createTransport({
    host,
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    ...(user ? { auth: { user, pass } } : {}),
    // Credentials never cross the network in clear text: off loopback, STARTTLS is required when we log in.
    // A relay without auth (a sidecar, a cluster-internal MTA) keeps nodemailer's opportunistic STARTTLS.
    requireTLS: Boolean(user) && !secure && !LOOPBACK.has(host),
    connectionTimeout: opts.timeouts?.connectionMs ?? 10_000,
    greetingTimeout: opts.timeouts?.greetingMs ?? 10_000,
    socketTimeout: opts.timeouts?.socketMs ?? 30_000,
    dnsTimeout: opts.timeouts?.connectionMs ?? 10_000,
    // Attachments are buffers we built; a path or URL in one must never make the worker read a file or fetch.
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  });
  // Error texts come from the server and the socket layer; make sure neither can carry the password out.
  const scrub = (text: string): string => scrubSecrets(pass ? text.split(pass).join('****') : text);

  return {
    async sendEmail(email) {
      try {
        checkHeaders(opts.from, email);
      } catch (err) {
        if (err instanceof UnsafeHeaderError) return { ok: false, failure: { kind: 'permanent', reason: err.message } };
        throw err;
      }
      if (email.to.length === 0) return { ok: false, failure: { kind: 'permanent', reason: 'email: no recipients' } };
      const refused = email.to.map(recipientAddress).find((a) => !isPlainAddress(a));
      if (refused !== undefined) {
        return {
          ok: false,
          failure: {
            kind: 'permanent',
            reason: `email: recipient ${JSON.stringify(truncate(refused, 120))} is not exactly one plain email address (name@domain); refusing to send`,
          },
        };
      }
      try {
        const info = await transport.sendMail({
          from: opts.from,
          // objects, not strings: nodemailer parses a string as an address list (`a@x, b@y`, `Name <b@y>`), and a
          // key owner's address comes from the Admin API, where its user chose it
          to: email.to.map((r) => (typeof r === 'string' ? { name: '', address: r } : r)),
          subject: email.subject,
          text: email.text,
          html: email.html,
          attachments: (email.attachments ?? []).map((a) => ({
            filename: a.filename,
            content: a.content,
            contentType: a.contentType ?? 'image/png',
            cid: a.cid,
            contentDisposition: 'inline',
          })),
        });
        return { ok: true, messageId: info.messageId, rejected: info.rejected.map(String) };
      } catch (err) {
        return { ok: false, failure: classifySmtpError(err, scrub) };
      }
    },
  };
}

function recipientAddress(r: EmailRecipient): string {
  return typeof r === 'string' ? r : r.address;
}

/**
 * One address and nothing else: a dot-atom local part (no quotes, no comments) and a domain of dot-separated labels.
 * What a list, a display name, a group or a comment needs (`,` `;` `<` `>` `:` `(` `"` and spaces) cannot appear.
 */
const PLAIN_ADDRESS =
  /^[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+(\.[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+)*@[\p{L}\p{N}]([\p{L}\p{N}-]*[\p{L}\p{N}])?(\.[\p{L}\p{N}]([\p{L}\p{N}-]*[\p{L}\p{N}])?)+$/u;

function isPlainAddress(address: string): boolean {
  return address.length <= 254 && PLAIN_ADDRESS.test(address);
}

/**
 * Every value that ends up in a header line: From, To (names and addresses), Subject, and the attachment names
 * and Content-IDs. A CR or LF in any of them could start a header of its own (`Bcc: everyone@…`).
 */
function checkHeaders(from: string, email: OutgoingEmail): void {
  assertSafeHeader('From', from);
  for (const to of email.to) {
    if (typeof to === 'string') assertSafeHeader('To', to);
    else {
      assertSafeHeader('To (name)', to.name);
      assertSafeHeader('To (address)', to.address);
    }
  }
  assertSafeHeader('Subject', email.subject);
  for (const a of email.attachments ?? []) {
    assertSafeHeader('attachment filename', a.filename);
    assertSafeHeader('attachment Content-ID', a.cid);
    if (a.contentType) assertSafeHeader('attachment Content-Type', a.contentType);
  }
}

/**
 * An SMTP reply decides by its class: 4xx says try later, 5xx says never (nodemailer's `permanent` flag, which
 * also treats 503 "bad sequence" as transient). Without a reply, a connection that failed or timed out is retryable
 * and a refused configuration is not. `unreachable` tells the outbox that the server itself is out (421, or no
 * conversation at all), so the other emails of its run need not try.
 */
function classifySmtpError(err: unknown, scrub: (s: string) => string): DeliveryFailure {
  const e = (err ?? {}) as NodemailerError;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const head = ['smtp', code, e.responseCode].filter((p) => p !== undefined).join(' ');
  const reason = `${head}: ${scrub(e.message ?? String(err))}`;
  const retryable = (unreachable: boolean): DeliveryFailure =>
    unreachable ? { kind: 'retryable', reason, unreachable } : { kind: 'retryable', reason };
  if (typeof e.responseCode === 'number' && e.responseCode >= 400) {
    const permanent = e.permanent ?? e.responseCode >= 500;
    // 421: the service is not available and closes the channel, for every message alike
    return permanent ? { kind: 'permanent', reason } : retryable(e.responseCode === 421);
  }
  if (code && TRANSIENT_CODES.has(code)) {
    return retryable(
      code === 'EDNS' ||
        (e.originalCode !== undefined && UNREACHABLE_SYSTEM_CODES.has(e.originalCode)) ||
        (e.timeoutType !== undefined && UNREACHABLE_TIMEOUTS.has(e.timeoutType)),
    );
  }
  if (code && CONFIG_CODES.has(code)) return { kind: 'permanent', reason };
  return retryable(false);
}
