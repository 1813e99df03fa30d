import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createEmailSender } from '../../src/notify/email.ts';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';

/**
 * A recipient can come from the Admin API (a key owner's email, which its user chose), so it is one address or
 * nothing: never a list, a display name or a group for the mail library to parse into other recipients.
 */

let sink: SmtpCapture;
beforeAll(async () => {
  sink = await startSmtpCapture();
});
afterAll(async () => {
  await sink.close();
});

const send = (to: string) =>
  createEmailSender({ smtpUrl: new Secret(sink.url), from: 'keywarden@acme.test' }).sendEmail({
    to: [to],
    subject: 'API key past its deadline',
    text: 'text',
    html: '<p>html</p>',
  });

describe('email recipients', () => {
  it.each([
    ['a list', 'ana@acme.test, evil@attacker.test'],
    ['a list with a semicolon', 'ana@acme.test; evil@attacker.test'],
    ['a display name hiding another address', 'Ana Boss <evil@attacker.test>'],
    ['a group', 'team: evil@attacker.test, other@attacker.test;'],
    ['a comment', 'ana@acme.test (evil@attacker.test)'],
    ['a quoted local part', '"ana@acme.test"@attacker.test'],
    ['no domain', 'ana'],
  ])('%s is refused, permanently, naming it; nothing is sent', async (_name, to) => {
    const before = sink.messages.length;
    const result = await send(to);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.failure.kind).toBe('permanent');
    expect(result.failure.reason).toContain('is not exactly one plain email address');
    expect(sink.messages.length).toBe(before);
  });

  it('one plain address is delivered to that address only', async () => {
    const result = await send('ana.lopez+keys@acme.test');
    expect(result.ok).toBe(true);
    const mail = sink.messages.at(-1)!;
    expect(mail.envelope.to).toEqual(['ana.lopez+keys@acme.test']);
    expect(mail.to).toEqual(['ana.lopez+keys@acme.test']);
  });
});
