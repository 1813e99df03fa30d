import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * Shapes of secrets keywarden handles: Anthropic keys (admin and API), Slack tokens, and passwords inside URLs.
 * The scrubber masks them wherever they appear in a log line (messages, error stacks, URLs, nested objects), as a
 * second line of defence behind `Secret` and the redaction paths: an error message from a library may quote a
 * header or a connection string we never meant to log.
 */
const TOKEN_PATTERNS: RegExp[] = [
  /(?<prefix>sk-ant-[a-z]+\d*-)[A-Za-z0-9_-]{4,}/g,
  /(?<prefix>xox[abposr]-)[A-Za-z0-9-]{4,}/g,
];
const URL_PASSWORD = /\b(?<scheme>[a-z][a-z0-9+.-]*:\/\/)(?<user>[^:@/\s]*):(?<pass>[^@/\s]+)@/gi;

export function scrubSecrets(text: string): string {
  let out = text;
  for (const re of TOKEN_PATTERNS) {
    out = out.replace(re, (match, prefix: string) => `${prefix}****${match.slice(-4)}`);
  }
  return out.replace(URL_PASSWORD, (_m, scheme: string, user: string) => `${scheme}${user}:****@`);
}

/** Field paths that hold secrets by name, whatever their shape. */
const REDACT_PATHS = [
  'adminKey',
  'apiKey',
  'token',
  'password',
  'authorization',
  '*.adminKey',
  '*.apiKey',
  '*.token',
  '*.password',
  '*.authorization',
  'headers["x-api-key"]',
  '*.headers["x-api-key"]',
  'headers.authorization',
  '*.headers.authorization',
];

export interface LoggerOptions {
  level: string;
  /** Pretty output for people at a terminal; JSON otherwise (production, CI, pipes). */
  pretty?: boolean;
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY === true && !process.env.CI);
  const hooks = {
    // Every line passes through here as its final string: the one place no field or stack can slip past.
    streamWrite: scrubSecrets,
  };
  const base = {
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    hooks,
    serializers: { err: pino.stdSerializers.err },
  };
  if (options.destination) return pino(base, options.destination);
  if (pretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss' } },
    });
  }
  return pino(base);
}
