import { inspect } from 'node:util';

/**
 * A secret from the environment. It prints as a mask everywhere (String(), JSON, util.inspect, pino), so a Config
 * or an error that carries one can be logged without leaking it; `reveal()` is the one way to read it, and only
 * the adapters that send it (Admin API client, Slack, SMTP, pg, Redis) call it.
 */
export class Secret {
  readonly #value: string;
  readonly hint: string;

  constructor(value: string) {
    this.#value = value;
    this.hint = maskSecret(value);
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return this.hint;
  }

  toJSON(): string {
    return this.hint;
  }

  [inspect.custom](): string {
    return `Secret(${this.hint})`;
  }
}

/** The shape of a hint: a recognisable prefix and the last 4 characters, never more than that. */
export function maskSecret(value: string): string {
  if (value.length <= 12) return '****';
  const prefix = /^(sk-ant-[a-z]+\d*-|xox[a-z]-|[a-z]+:\/\/)/i.exec(value)?.[0] ?? '';
  return `${prefix}****${value.slice(-4)}`;
}

/**
 * Query parameters whose value is a secret by name: `password`, `sslpassword`, `access_token`, `api_key`, `secret`,
 * `X-Amz-Signature`, … A name matches when it holds one of these words or ends with one. Shared with the log
 * scrubber, so what check-config masks and what the log masks are the same.
 */
export const SECRET_PARAM_NAME = /(pass(word|wd)?|pwd|secret|token|credentials?|auth)|(key|sig(nature)?)$/i;

/** A URL with its password and every secret-named query value masked: for printing DATABASE_URL and friends. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '****';
    for (const name of new Set(u.searchParams.keys())) {
      if (SECRET_PARAM_NAME.test(name)) u.searchParams.set(name, '****');
    }
    return u.toString();
  } catch {
    return '****';
  }
}
