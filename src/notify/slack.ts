import {
  LogLevel,
  type Logger as SlackLogger,
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebAPIRequestError,
  WebClient,
} from '@slack/web-api';
import type { Secret } from '../config/secret.ts';
import type { Logger } from '../log.ts';
import type { DeliveryFailure } from './message.ts';
import type { SlackPostBlock } from './render.ts';

/**
 * The Slack adapter: chat.postMessage and auth.test over @slack/web-api, with every failure classified for the
 * outbox. It knows Block Kit and Slack's errors, nothing about alerts.
 */

interface SlackOptions {
  token: Secret;
  /** Web API base (SLACK_API_URL), e.g. `https://slack.com/api/`. */
  apiUrl: string;
  /** Per-request limit; a hung connection must not hold a delivery worker. Default 10 s. */
  timeoutMs?: number;
  log?: Logger;
}

interface SlackPost {
  /** A channel ID (`C0123…`) or name (`#ai-alerts`). Replies must use the ID Slack returned for the first post. */
  channel: string;
  text: string;
  blocks: SlackPostBlock[];
  /** The `ts` of the first post: repeats and the resolve message go in its thread. */
  threadTs?: string;
}

export type SlackPostResult = { ok: true; ts: string; channel: string } | { ok: false; failure: DeliveryFailure };

type SlackCallResult = { ok: true } | { ok: false; failure: DeliveryFailure };

/** Where Slack's response URLs point (`https://hooks.slack.com/actions/…`). */
const RESPONSE_URL_ORIGIN = 'https://hooks.slack.com';

type SlackAuthResult =
  | { ok: true; team: string; user: string; botId: string | null }
  | { ok: false; failure: DeliveryFailure };

export interface SlackClient {
  postMessage(post: SlackPost): Promise<SlackPostResult>;
  /** chat.update: a message replaced in place (a button press answered: "Acknowledged by …"). */
  updateMessage(update: {
    channel: string;
    ts: string;
    text: string;
    blocks: SlackPostBlock[];
  }): Promise<SlackCallResult>;
  /** usergroups.users.list: the user ids in a user group (`S…`), for who may press a button. */
  usergroupMembers(usergroup: string): Promise<{ ok: true; users: string[] } | { ok: false; failure: DeliveryFailure }>;
  /**
   * Posts to a press's `response_url` (an ephemeral answer to the person who pressed). Only to Slack's hooks host or
   * the Web API's own host: the URL arrives in the payload, and the bot must not post wherever a payload says.
   */
  respond(responseUrl: string, body: { text: string; response_type: 'ephemeral' }): Promise<SlackCallResult>;
  /** Who the token belongs to: for check-config and readiness. */
  authTest(): Promise<SlackAuthResult>;
}

/** Platform errors that say "try again later"; every other `ok:false` is a problem a retry will not fix. */
const TRANSIENT_ERRORS = new Set([
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
  'team_added_to_org',
]);

/** When Slack answers 429 without a usable Retry-After: a minute is Slack's own guidance for tier limits. */
const DEFAULT_RETRY_AFTER_MS = 60_000;

export function createSlackClient(opts: SlackOptions): SlackClient {
  const token = opts.token.reveal();
  const web = new WebClient(token, {
    slackApiUrl: opts.apiUrl,
    // The outbox owns retries (it persists attempts and backs off across restarts); the client must fail fast.
    retryConfig: { retries: 0 },
    // Without this the client sleeps through Retry-After inside the call, holding the worker.
    rejectRateLimitedCalls: true,
    timeout: opts.timeoutMs ?? 10_000,
    // Method names are constants here; never let one redirect the bearer token to another host.
    allowAbsoluteUrls: false,
    logger: slackLogger(opts.log),
  });
  const scrub = (text: string): string => (token ? text.split(token).join(opts.token.hint) : text);

  return {
    async postMessage(post) {
      try {
        const res = await web.chat.postMessage({
          channel: post.channel,
          text: post.text,
          blocks: post.blocks,
          ...(post.threadTs ? { thread_ts: post.threadTs } : {}),
          // Belt and braces behind the escaping: no name linking, no link previews of Console pages.
          link_names: false,
          unfurl_links: false,
          unfurl_media: false,
        });
        if (!res.ts || !res.channel) {
          return { ok: false, failure: { kind: 'retryable', reason: 'slack chat.postMessage: answer without ts' } };
        }
        return { ok: true, ts: res.ts, channel: res.channel };
      } catch (err) {
        return { ok: false, failure: classifySlackError('chat.postMessage', err, scrub) };
      }
    },

    async updateMessage(update) {
      try {
        await web.chat.update({ channel: update.channel, ts: update.ts, text: update.text, blocks: update.blocks });
        return { ok: true };
      } catch (err) {
        return { ok: false, failure: classifySlackError('chat.update', err, scrub) };
      }
    },

    async usergroupMembers(usergroup) {
      try {
        const res = await web.usergroups.users.list({ usergroup });
        return { ok: true, users: res.users ?? [] };
      } catch (err) {
        return { ok: false, failure: classifySlackError('usergroups.users.list', err, scrub) };
      }
    },

    async respond(responseUrl, body) {
      let url: URL;
      try {
        url = new URL(responseUrl);
      } catch {
        return { ok: false, failure: { kind: 'permanent', reason: 'slack response_url: not a URL' } };
      }
      if (url.origin !== RESPONSE_URL_ORIGIN && url.origin !== new URL(opts.apiUrl).origin) {
        return {
          ok: false,
          failure: { kind: 'permanent', reason: `slack response_url: not a Slack host (${url.host})` },
        };
      }
      try {
        // the URL itself is the credential: no token goes with it
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
          redirect: 'error',
        });
        await res.body?.cancel();
        return res.ok
          ? { ok: true }
          : { ok: false, failure: { kind: 'retryable', reason: `slack response_url: HTTP ${res.status}` } };
      } catch (err) {
        const name = err instanceof Error ? err.name : 'error';
        return { ok: false, failure: { kind: 'retryable', reason: `slack response_url: unreachable (${name})` } };
      }
    },

    async authTest() {
      try {
        const res = await web.auth.test();
        return { ok: true, team: res.team ?? '', user: res.user ?? '', botId: res.bot_id ?? null };
      } catch (err) {
        return { ok: false, failure: classifySlackError('auth.test', err, scrub) };
      }
    },
  };
}

/**
 * What the outbox should do about a failed call. `scrub` removes the token from any text that came from outside
 * (a proxy may echo the Authorization header in an error).
 */
function classifySlackError(method: string, err: unknown, scrub: (s: string) => string): DeliveryFailure {
  const prefix = `slack ${method}`;
  if (err instanceof WebAPIRateLimitedError) {
    return {
      kind: 'rate_limited',
      retryAfterMs: err.retryAfter * 1000,
      reason: `${prefix}: rate limited (Retry-After ${err.retryAfter}s)`,
    };
  }
  if (err instanceof WebAPIPlatformError) {
    const code = String(err.data.error);
    if (code === 'ratelimited') {
      const seconds = err.data.response_metadata?.retryAfter;
      return {
        kind: 'rate_limited',
        retryAfterMs: seconds ? seconds * 1000 : DEFAULT_RETRY_AFTER_MS,
        reason: `${prefix}: ratelimited`,
      };
    }
    const reason = `${prefix}: ${scrub(code)}${platformHint(code)}`;
    return TRANSIENT_ERRORS.has(code) ? { kind: 'retryable', reason } : { kind: 'permanent', reason };
  }
  if (err instanceof WebAPIHTTPError) {
    const reason = `${prefix}: HTTP ${err.statusCode} ${scrub(err.statusMessage)}`.trimEnd();
    // Slack itself only uses 200 and 429; anything else is a proxy or an outage. 5xx and 408 pass, other 4xx are a
    // wrong SLACK_API_URL and will not fix themselves.
    return err.statusCode >= 500 || err.statusCode === 408
      ? { kind: 'retryable', reason, unreachable: true }
      : { kind: 'permanent', reason: `${reason} (check SLACK_API_URL)` };
  }
  if (err instanceof WebAPIRequestError) {
    const original = err.original;
    const timedOut = original.name === 'TimeoutError' || original.name === 'AbortError';
    const cause = (original.cause as { code?: string } | undefined)?.code;
    const detail = timedOut ? 'timed out' : `unreachable (${cause ?? scrub(original.message)})`;
    return { kind: 'retryable', reason: `${prefix}: ${detail}`, unreachable: true };
  }
  // A 429 without a parsable Retry-After: the client rejects with a plain Error (see its makeRequest).
  if (err instanceof Error && err.message.startsWith('Retry header did not contain a valid timeout')) {
    return {
      kind: 'rate_limited',
      retryAfterMs: DEFAULT_RETRY_AFTER_MS,
      reason: `${prefix}: rate limited (no Retry-After)`,
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { kind: 'retryable', reason: `${prefix}: ${scrub(message)}` };
}

/** The errors an operator can fix, with what to do. */
function platformHint(code: string): string {
  switch (code) {
    case 'invalid_auth':
    case 'not_authed':
    case 'token_revoked':
    case 'token_expired':
    case 'account_inactive':
      return ' (SLACK_BOT_TOKEN is not valid: issue a new bot token)';
    case 'channel_not_found':
      return ' (no such channel, or it is private and the bot is not in it)';
    case 'not_in_channel':
      return ' (invite the bot to the channel)';
    case 'is_archived':
      return ' (the channel is archived: update the route)';
    case 'missing_scope':
      return ' (the bot token needs the chat:write scope, and usergroups:read for user groups in slack_actions.allow)';
    default:
      return '';
  }
}

/**
 * @slack/web-api logs through its own Logger interface (console by default). Route it into pino, one level down:
 * the adapter returns every failure classified, so the caller decides what deserves a warning.
 */
function slackLogger(log: Logger | undefined): SlackLogger {
  const child = log?.child({ component: 'slack' });
  let level = LogLevel.INFO;
  const write =
    (fn: ((msg: string) => void) | undefined) =>
    (...msg: unknown[]) =>
      fn?.(msg.map(String).join(' '));
  return {
    debug: write(child && ((m) => child.trace(m))),
    info: write(child && ((m) => child.debug(m))),
    warn: write(child && ((m) => child.debug(m))),
    error: write(child && ((m) => child.warn(m))),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}
