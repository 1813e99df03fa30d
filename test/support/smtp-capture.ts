import {
  type CapturedEmail,
  type SmtpSink,
  type SmtpSinkOptions,
  startSmtpSink,
} from '../../src/notify/dev/smtp-sink.ts';

export type { CapturedEmail, SmtpSink as SmtpCapture };

/** An SMTP server on 127.0.0.1 and an ephemeral port that keeps and parses what it receives. */
export function startSmtpCapture(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  return startSmtpSink(opts);
}
