import type { AddressInfo } from 'node:net';
import { type AddressObject, simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerError } from 'smtp-server';

/**
 * A local SMTP server that keeps what it receives: smtp-server on loopback, each message parsed with mailparser.
 * It requires AUTH with one user and password, can refuse the next messages with a 4xx or 5xx reply, and can go
 * down and come back on the same port. Tests use it through test/support/smtp-capture.ts; `keywarden demo` runs
 * it as its mail sink.
 */

export interface SmtpSinkOptions {
  user?: string;
  password?: string;
  host?: string;
  /** 0 (default): an ephemeral port. */
  port?: number;
  /** Sees each accepted message: the demo prints them from here. */
  onMessage?: (message: CapturedEmail) => void;
}

export interface CapturedAttachment {
  filename: string | undefined;
  contentType: string;
  /** Content-ID without angle brackets, as `cid:` URLs name it. */
  cid: string | undefined;
  /** Inline and inside multipart/related: an image the HTML shows, not a file to download. */
  related: boolean;
  contentDisposition: string | undefined;
  content: Buffer;
}

export interface CapturedEmail {
  /** The SMTP envelope (MAIL FROM, RCPT TO): who the server was told to deliver to. */
  envelope: { from: string; to: string[] };
  /** The user that authenticated for this message. */
  user: string;
  /** The From header as text (`"Keywarden" <kw@acme.com>`). */
  from: string;
  /** Addresses in the To headers. */
  to: string[];
  subject: string;
  text: string;
  /** The HTML part with `cid:` links left as sent; '' when there was none. */
  html: string;
  attachments: CapturedAttachment[];
  /** Header name (lower case) → value as sent, unfolded; repeated headers joined with ', '. */
  headers: Record<string, string>;
  messageId: string | undefined;
  /** The message as received, for assertions on the wire format. */
  raw: string;
}

export interface SmtpSink {
  /** `smtp://user:password@127.0.0.1:port`, for SMTP_URL. */
  readonly url: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Accepted messages, in order. */
  readonly messages: CapturedEmail[];
  /** Resolves with the messages once at least `n` have arrived; rejects after `timeoutMs` saying how many did. */
  waitFor(n: number, timeoutMs?: number): Promise<CapturedEmail[]>;
  /** Refuse the next `n` messages at the end of DATA with this reply (4xx: try later; 5xx: never). */
  rejectNext(n: number, reply: { code: number; message?: string }): void;
  /** Down: stop listening and drop connections (clients get connection refused). Up: listen on the same port. */
  setDown(down: boolean): Promise<void>;
  /** Forget messages and pending rejections. */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_USER = 'keywarden';
const DEFAULT_PASSWORD = 'sink-password';

export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const user = opts.user ?? DEFAULT_USER;
  const password = opts.password ?? DEFAULT_PASSWORD;
  const host = opts.host ?? '127.0.0.1';
  const messages: CapturedEmail[] = [];
  const rejections: { code: number; message?: string }[] = [];
  const waiters = new Set<() => void>();

  const onData = (stream: SMTPServerDataStream, session: SessionLike, callback: (err?: Error | null) => void) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      // Refused after the whole message came in: the worst case for a client, which must not count it as sent.
      const reject = rejections.shift();
      if (reject) {
        const err: SMTPServerError = new Error(reject.message ?? defaultReply(reject.code));
        err.responseCode = reject.code;
        return callback(err);
      }
      const raw = Buffer.concat(chunks);
      capture(raw, session).then(
        (message) => {
          messages.push(message);
          opts.onMessage?.(message);
          for (const wake of waiters) wake();
          callback();
        },
        (err: Error) => callback(err),
      );
    });
  };

  const createSmtpServer = () =>
    new SMTPServer({
      // Loopback only, so no TLS: AUTH over plain text is allowed and STARTTLS not offered (its built-in
      // certificate is self-signed and a client verifying certificates would refuse it).
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      authOptional: false,
      logger: false,
      closeTimeout: 100,
      onAuth(auth, _session, callback) {
        if (auth.username === user && auth.password === password) return callback(null, { user: auth.username });
        const err: SMTPServerError = new Error('Authentication credentials invalid');
        err.responseCode = 535;
        return callback(err);
      },
      onData,
    })
      // A client that dies mid-message (a killed worker) resets its connection inside a transaction, and
      // smtp-server emits that on the server, where without a listener it would be thrown. The message is simply
      // not received: the client never got its reply and sends it again. (Listening errors reject `listen`.)
      .on('error', () => {});

  let server = createSmtpServer();
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.server.address() as AddressInfo).port);
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!server.server.listening) return resolve();
      server.close(() => resolve());
      // Drop sessions now: a server that is down does not finish conversations.
      for (const connection of server.connections) connection.close();
    });

  const port = await listen(opts.port ?? 0);
  return {
    url: `smtp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}`,
    port,
    user,
    password,
    messages,
    waitFor(n, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (messages.length < n) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(messages.slice());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`SMTP sink: expected ${n} message(s) within ${timeoutMs} ms, got ${messages.length}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    rejectNext(n, reply) {
      for (let i = 0; i < n; i++) rejections.push(reply);
    },
    async setDown(down) {
      if (down) {
        await stop();
      } else if (!server.server.listening) {
        server = createSmtpServer();
        await listen(port);
      }
    },
    reset() {
      messages.length = 0;
      rejections.length = 0;
    },
    close: stop,
  };
}

interface SessionLike {
  user?: unknown;
  envelope: { mailFrom: { address: string } | false; rcptTo: { address: string }[] };
}

function defaultReply(code: number): string {
  return code >= 500 ? 'Message rejected by the SMTP sink' : 'Mailbox busy, try again later';
}

function addresses(value: AddressObject | AddressObject[] | undefined): string[] {
  if (!value) return [];
  return (Array.isArray(value) ? value : [value]).flatMap((o) => o.value.map((a) => a.address ?? ''));
}

async function capture(raw: Buffer, session: SessionLike): Promise<CapturedEmail> {
  const parsed = await simpleParser(raw, { keepCidLinks: true });
  const headers: Record<string, string> = {};
  for (const { key, line } of parsed.headerLines) {
    const value = line
      .slice(line.indexOf(':') + 1)
      .replace(/\r?\n[ \t]+/g, ' ')
      .trim();
    headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
  }
  return {
    envelope: {
      from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      to: session.envelope.rcptTo.map((r) => r.address),
    },
    user: typeof session.user === 'string' ? session.user : '',
    from: parsed.from?.text ?? '',
    to: addresses(parsed.to),
    subject: parsed.subject ?? '',
    text: parsed.text ?? '',
    html: typeof parsed.html === 'string' ? parsed.html : '',
    attachments: parsed.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      cid: a.cid,
      related: a.related === true,
      contentDisposition: a.contentDisposition,
      content: a.content,
    })),
    headers,
    messageId: parsed.messageId,
    raw: raw.toString('utf8'),
  };
}
