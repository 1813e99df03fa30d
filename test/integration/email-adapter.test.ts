import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createEmailSender, type EmailSendResult, type OutgoingEmail } from '../../src/notify/email.ts';
import type { Notification } from '../../src/notify/message.ts';
import { renderEmail } from '../../src/notify/render.ts';
import { startRawTcpServer } from '../support/raw-tcp-server.ts';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';

// Characters that must survive URL decoding, and a marker to look for in anything that could leak.
const PASSWORD = 'p@ss:CANARY/w0rd';
const FROM = '"Keywarden" <keywarden@acme.test>';
// A 1×1 PNG: the smallest real image to embed.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);
const FAST = { connectionMs: 1000, greetingMs: 300, socketMs: 1000 };

const alert: Notification = {
  kind: 'spend.threshold',
  event: 'firing',
  severity: 'warning',
  title: 'Workspace "Customer chatbot" passed 80% of its monthly limit',
  summary: 'Spent $1,612.40 of $2,000.00 this month.',
  fields: [{ label: 'Projected month-end', value: '$2,310.00 (±$140.00)' }],
  links: [{ label: 'Open cost report', url: 'https://console.anthropic.com/cost' }],
};

let sink: SmtpCapture;

function sender(smtpUrl = sink.url, from = FROM) {
  return createEmailSender({ smtpUrl: new Secret(smtpUrl), from, timeouts: FAST });
}

function email(overrides: Partial<OutgoingEmail> = {}): OutgoingEmail {
  return { to: ['finance@acme.test'], ...renderEmail(alert), ...overrides };
}

function failure(result: EmailSendResult) {
  if (result.ok) throw new Error(`expected a failure, got message ${result.messageId}`);
  expect(JSON.stringify(result)).not.toContain('CANARY');
  return result.failure;
}

/** A port where nothing listens: any connection attempt would come back as ECONNREFUSED (retryable). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  sink = await startSmtpCapture({ user: 'keywarden', password: PASSWORD });
});
afterAll(async () => {
  await sink.close();
});
beforeEach(() => {
  sink.reset();
});

describe('email adapter against the SMTP capture server', () => {
  it('delivers HTML and text parts with an inline chart, after logging in', async () => {
    const content = renderEmail(alert, { images: [{ cid: 'spend-chart@keywarden', alt: 'Spend this month' }] });
    const result = await sender().sendEmail({
      to: ['finance@acme.test', { name: 'Ada Lovelace', address: 'ada@acme.test' }],
      ...content,
      attachments: [{ cid: 'spend-chart@keywarden', filename: 'spend.png', content: PNG }],
    });
    expect(result).toMatchObject({ ok: true, rejected: [] });

    const [message] = await sink.waitFor(1);
    expect(message?.user).toBe('keywarden');
    expect(message?.envelope).toEqual({ from: 'keywarden@acme.test', to: ['finance@acme.test', 'ada@acme.test'] });
    expect(message?.from).toBe('"Keywarden" <keywarden@acme.test>');
    expect(message?.to).toEqual(['finance@acme.test', 'ada@acme.test']);
    expect(message?.subject).toBe(content.subject);
    expect(message?.messageId).toBe(result.ok ? result.messageId : '');
    expect(message?.text).toContain('Projected month-end: $2,310.00 (±$140.00)');
    expect(message?.html).toContain('<a href="https://console.anthropic.com/cost">Open cost report</a>');
    expect(message?.html).toContain('src="cid:spend-chart@keywarden"');
    expect(message?.attachments).toHaveLength(1);
    expect(message?.attachments[0]).toMatchObject({
      cid: 'spend-chart@keywarden',
      contentType: 'image/png',
      related: true,
      contentDisposition: 'inline',
    });
    expect(message?.attachments[0]?.content.equals(PNG)).toBe(true);
  });

  it('reports a wrong password as permanent and never quotes it', async () => {
    const wrong = sink.url.replace(encodeURIComponent(PASSWORD), encodeURIComponent('wrong-CANARY-pw'));
    const f = failure(await sender(wrong).sendEmail(email()));
    expect(f.kind).toBe('permanent');
    expect(f.reason).toContain('535');
    expect(sink.messages).toHaveLength(0);
  });

  it.each([
    ['a subject', { subject: 'Key ci-deploy\r\nBcc: everyone@acme.test' }, 'Subject'],
    ['a recipient name', { to: [{ name: 'Eve\nBcc: everyone@acme.test', address: 'eve@acme.test' }] }, 'To (name)'],
    ['a recipient address', { to: ['eve@acme.test\r\nBcc: everyone@acme.test'] }, 'To'],
    [
      'an attachment name',
      { attachments: [{ cid: 'c@k', filename: 'x.png\r\nBcc: everyone@acme.test', content: PNG }] },
      'attachment filename',
    ],
  ])('refuses a line break in %s before connecting', async (_what, overrides, header) => {
    // Pointed at a dead port: had it tried to send, the answer would be a retryable connection error.
    const f = failure(await sender(`smtp://keywarden:x@127.0.0.1:${await deadPort()}`).sendEmail(email(overrides)));
    expect(f.kind).toBe('permanent');
    expect(f.reason).toContain(`email header ${header} contains a line break`);
  });

  it('refuses a line break in EMAIL_FROM', async () => {
    const f = failure(await sender(sink.url, 'Keywarden\r\nBcc: everyone@acme.test <kw@acme.test>').sendEmail(email()));
    expect(f).toMatchObject({ kind: 'permanent', reason: expect.stringContaining('header From') });
    expect(sink.messages).toHaveLength(0);
  });

  it('treats a 4xx reply as retryable, and the next attempt delivers', async () => {
    sink.rejectNext(1, { code: 451, message: 'Greylisted, try again later' });
    const mail = sender();
    const f = failure(await mail.sendEmail(email()));
    expect(f.kind).toBe('retryable');
    expect(f.reason).toContain('451');
    // the server answered: this message waits, not every message to it
    expect(f).not.toHaveProperty('unreachable');
    expect(await mail.sendEmail(email())).toMatchObject({ ok: true });
    expect(sink.messages).toHaveLength(1);
  });

  it('treats a 5xx reply as permanent', async () => {
    sink.rejectNext(1, { code: 550, message: 'Mailbox unavailable' });
    const f = failure(await sender().sendEmail(email()));
    expect(f.kind).toBe('permanent');
    expect(f.reason).toContain('550');
    expect(sink.messages).toHaveLength(0);
  });

  it('treats a server that is down as retryable, and delivers when it is back on the same port', async () => {
    const mail = sender();
    await sink.setDown(true);
    try {
      const f = failure(await mail.sendEmail(email()));
      expect(f).toMatchObject({ kind: 'retryable', unreachable: true });
      expect(f.reason).toContain('ECONNREFUSED');
    } finally {
      await sink.setDown(false);
    }
    expect(await mail.sendEmail(email())).toMatchObject({ ok: true });
    expect(await sink.waitFor(1)).toHaveLength(1);
  });

  it('gives up on a server that accepts the connection but never greets, as retryable', async () => {
    const f = await withRawServer(
      () => {},
      (url) => sender(url).sendEmail(email()),
    );
    expect(f).toMatchObject({ kind: 'retryable', unreachable: true });
    expect(f.reason).toContain('ETIMEDOUT');
  });

  // `unreachable` holds the outbox's other emails: only for the server being out, never for one message's trouble
  it.each([
    ['greets with 421 (service not available)', true, 'greeting-421'],
    ['goes silent after the message', false, 'silent-after-data'],
    ['resets the connection after the message', false, 'reset-after-data'],
  ] as const)('a server that %s: retryable, unreachable %s', async (_, unreachable, behaviour) => {
    const f = await withRawServer(rawSmtp(behaviour), (url) => sender(url).sendEmail(email()));
    expect(f.kind).toBe('retryable');
    if (unreachable) expect(f).toMatchObject({ unreachable: true });
    else expect(f).not.toHaveProperty('unreachable');
  });
});

/** A raw TCP server on loopback for one send, closed afterwards; the send's failure is returned. */
async function withRawServer(
  onConnection: (socket: Socket) => void,
  send: (smtpUrl: string) => Promise<EmailSendResult>,
): Promise<ReturnType<typeof failure>> {
  const server = await startRawTcpServer(onConnection);
  try {
    return failure(await send(`smtp://keywarden:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}`));
  } finally {
    await server.close();
  }
}

/** Just enough SMTP to take a message (any login accepted), then misbehave as told. */
function rawSmtp(behaviour: 'greeting-421' | 'silent-after-data' | 'reset-after-data') {
  return (socket: Socket) => {
    if (behaviour === 'greeting-421') {
      socket.end('421 Service not available, closing transmission channel\r\n');
      return;
    }
    socket.write('220 raw.test ESMTP\r\n');
    let inData = false;
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end = buffered.indexOf('\r\n');
      while (end >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        end = buffered.indexOf('\r\n');
        if (inData) {
          if (line !== '.') continue;
          // the whole message is in: now the server fails this one message
          if (behaviour === 'reset-after-data') socket.resetAndDestroy();
          return;
        }
        if (/^EHLO/i.test(line)) socket.write('250-raw.test\r\n250 AUTH PLAIN LOGIN\r\n');
        else if (/^AUTH/i.test(line)) socket.write('235 Accepted\r\n');
        else if (/^DATA/i.test(line)) {
          inData = true;
          socket.write('354 Go ahead\r\n');
        } else socket.write('250 OK\r\n');
      }
    });
  };
}
