import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createEmailSender } from '../../src/notify/email.ts';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';

let sink: SmtpCapture;

beforeAll(async () => {
  sink = await startSmtpCapture();
});
afterAll(async () => {
  await sink.close();
});

/** Sends one SMTP command line and resolves with the server's (last) reply line once it has the expected code. */
function command(socket: Socket, line: string | null, code: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      // a multi-line reply ends with the line "<code> " (space, not dash)
      const last = buffered.split('\r\n').find((l) => /^\d{3} /.test(l));
      if (last === undefined) return;
      socket.off('data', onData);
      if (last.startsWith(String(code))) resolve(last);
      else reject(new Error(`expected ${code} after ${line ?? 'connecting'}, got: ${last}`));
    };
    socket.on('data', onData);
    if (line !== null) socket.write(`${line}\r\n`);
  });
}

describe('SMTP sink', () => {
  it('survives a client reset in the middle of a message: that message is not kept, the next one is', async () => {
    // a raw client that dies mid-DATA, as a worker killed while sending does: its connection is reset (RST) while
    // a transaction is open, which smtp-server reports as an error event on the server
    const socket = connect(sink.port, '127.0.0.1');
    await command(socket, null, 220);
    await command(socket, 'EHLO killed.test', 250);
    const plain = Buffer.from(`\0${sink.user}\0${sink.password}`).toString('base64');
    await command(socket, `AUTH PLAIN ${plain}`, 235);
    await command(socket, 'MAIL FROM:<keywarden@acme.test>', 250);
    await command(socket, 'RCPT TO:<finance@acme.test>', 250);
    await command(socket, 'DATA', 354);
    socket.write('Subject: half a message\r\n\r\nthe worker died here');
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.resetAndDestroy();
    await closed;

    // the sink (and this process) go on: the resent message arrives, the half one was never kept
    const sender = createEmailSender({ smtpUrl: new Secret(sink.url), from: 'keywarden@acme.test' });
    const sent = await sender.sendEmail({
      to: ['finance@acme.test'],
      subject: 'the message, sent again',
      text: 'whole',
      html: '<p>whole</p>',
    });
    expect(sent.ok).toBe(true);
    const messages = await sink.waitFor(1);
    expect(messages.map((m) => m.subject)).toEqual(['the message, sent again']);
  });
});
