import { type DestinationStream, type Logger, pino } from 'pino';
import { SECRET_PARAM_NAME } from './config/secret.ts';

export type { Logger } from 'pino';

/**
 * Shapes of secrets keywarden handles: Anthropic keys (admin and API), Slack tokens, passwords inside URLs and
 * secret-named query parameters (`?password=`, `&access_token=`).
 * The scrubber masks them wherever they appear in a log line (messages, error stacks, URLs, nested objects), as a
 * second line of defence behind `Secret` and the redaction paths: an error message from a library may quote a
 * header or a connection string we never meant to log.
 */
const TOKEN_PATTERNS: RegExp[] = [
  /(?<prefix>sk-ant-[a-z]+\d*-)[A-Za-z0-9_-]{4,}/g,
  /(?<prefix>xox[abposr]-)[A-Za-z0-9-]{4,}/g,
];
const URL_PASSWORD = /\b(?<scheme>[a-z][a-z0-9+.-]*:\/\/)(?<user>[^:@/\s]*):(?<pass>[^@/\s]+)@/gi;
/**
 * `?name=value` and `&name=value` in a URL's query: the value is masked when the name says it is a secret. A
 * backslash ends a value too: in a JSON line it escapes the quote that follows, which must stay whole.
 */
const QUERY_PARAM = /(?<lead>[?&;])(?<name>[^=&#?;\s'"<>\\]+)=(?<value>[^&#;\s'"<>\\]+)/g;

export function scrubSecrets(text: string): string {
  let out = text;
  for (const re of TOKEN_PATTERNS) {
    out = out.replace(re, (match, prefix: string) => `${prefix}****${match.slice(-4)}`);
  }
  out = out.replace(URL_PASSWORD, (_m, scheme: string, user: string) => `${scheme}${user}:****@`);
  return out.replace(QUERY_PARAM, (match, lead: string, name: string) =>
    SECRET_PARAM_NAME.test(name) ? `${lead}${name}=****` : match,
  );
}

/**
 * Fields in which a library's error carries the command it failed, arguments and all: ioredis puts
 * `command: { name, args }` on every command a refused login fails, and a login's args hold the password
 * (`HELLO 3 AUTH user password`), which no pattern can recognise. Neither is kept; the command's name is.
 */
const COMMAND_FIELDS = ['command', 'args'] as const;

function commandName(command: unknown): string | undefined {
  const name = (command as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : undefined;
}

/** pino's error serializer, without the fields a failed command's arguments ride in, down the `cause` chain. */
function serializeError(err: Error): unknown {
  const out = pino.stdSerializers.err(err) as Record<string, unknown>;
  for (let level: Record<string, unknown> | undefined = out; level; ) {
    const name = commandName(level.command);
    for (const field of COMMAND_FIELDS) delete level[field];
    if (name) level.command = name;
    level =
      typeof level.cause === 'object' && level.cause !== null ? (level.cause as Record<string, unknown>) : undefined;
  }
  return out;
}

/**
 * The same error with its message and stack scrubbed, for places that store an error outside the log: BullMQ keeps
 * a failed job's message (`failedReason`) and stack (`stacktrace`) in Redis. Scrubbed in place so its class (which
 * BullMQ reads, e.g. UnrecoverableError) stays; an error whose fields cannot be written becomes a plain Error.
 */
export function scrubError(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(scrubSecrets(String(err)));
  try {
    const fields = err as unknown as Record<string, unknown>;
    for (const field of COMMAND_FIELDS) delete fields[field];
    err.message = scrubSecrets(err.message);
    if (err.stack) err.stack = scrubSecrets(err.stack);
    return err;
  } catch {
    const copy = new Error(scrubSecrets(err.message));
    copy.name = err.name;
    copy.stack = err.stack ? scrubSecrets(err.stack) : copy.stack;
    return copy;
  }
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
    serializers: { err: serializeError },
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
