import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { maskSecret } from '../../config/secret.ts';

/**
 * A local stand-in for the Slack Web API, reached through WebClient's `slackApiUrl`: the methods keywarden calls
 * (chat.postMessage, auth.test), bearer-token checks, Block Kit limit checks, and controls to fail the next calls
 * the ways Slack does (429 with Retry-After, `ok:false`, 5xx, a hung request, the host gone). Tests use it through
 * test/support/slack-server.ts; `keywarden demo` runs it so alerts have somewhere to land.
 */

export interface SlackStandinOptions {
  /** Bot tokens accepted; any other gets `invalid_auth`. */
  tokens?: string[];
  host?: string;
  /** 0 (default): an ephemeral port. */
  port?: number;
  /** Sees every call once answered (or, for a hung call, once received): the demo prints posts from here. */
  onCall?: (call: SlackCall) => void;
}

/** How to fail one call. `retryAfter` (seconds, default 1) goes with 429; null sends no Retry-After header. */
export type SlackFault = { status: number; retryAfter?: number | null } | { error: string } | { hang: true };

export interface SlackCall {
  /** `chat.postMessage`, `auth.test`, ... */
  method: string;
  /** The token's mask (never the token), or null when none was sent. */
  tokenHint: string | null;
  /** Arguments as the method sees them: `blocks` parsed from JSON, flags as booleans, `token` removed. */
  args: Record<string, unknown>;
  /** What the stand-in answered; null while a hung call is pending. */
  response: { status: number; ok: boolean; error?: string; channel?: string; ts?: string } | null;
}

export interface SlackStandin {
  /** Web API base to pass as slackApiUrl / SLACK_API_URL; ends with `/`. */
  readonly url: string;
  readonly port: number;
  /** Every call received, in order (including failed and unauthorised ones). */
  readonly calls: SlackCall[];
  /** The next `n` calls fail with `fault` (queued after any faults already pending). */
  failNext(n: number, fault: SlackFault): void;
  /** Down: stop listening and drop open connections (clients get connection refused). Up: listen on the same port. */
  setDown(down: boolean): Promise<void>;
  /** The channel ID a name resolves to (`#ai-alerts` → `C…`), as chat.postMessage returns it. */
  channelId(name: string): string;
  /** Forget calls and pending faults. Timestamps keep increasing, as Slack's do. */
  reset(): void;
  close(): Promise<void>;
}

export const STANDIN_TOKEN = 'xoxb-keywarden-standin-0000';
const TEAM = { team: 'Keywarden stand-in', team_id: 'T0STANDIN', user: 'keywarden', user_id: 'U0KEYWARDEN' };
const BOT_ID = 'B0KEYWARDEN';

/** Form-encoded bodies carry objects as JSON strings and flags as 'true'/'false' (see WebClient.serializeBody). */
const JSON_ARGS = new Set(['blocks', 'attachments', 'metadata']);
const FLAG_ARGS = new Set(['link_names', 'unfurl_links', 'unfurl_media', 'mrkdwn', 'reply_broadcast', 'as_user']);

export async function startSlackStandin(opts: SlackStandinOptions = {}): Promise<SlackStandin> {
  const tokens = new Set(opts.tokens ?? [STANDIN_TOKEN]);
  const host = opts.host ?? '127.0.0.1';
  const calls: SlackCall[] = [];
  const faults: SlackFault[] = [];
  const channels = new Map<string, string>();
  let seq = 0;

  const channelId = (name: string): string => {
    const key = name.replace(/^#/, '').toLowerCase();
    let id = channels.get(key);
    if (!id) {
      id = `C${String(channels.size + 1).padStart(8, '0')}`;
      channels.set(key, id);
    }
    return id;
  };
  /** An ID (known) or a name (created on first use); unknown IDs are `channel_not_found`, as on Slack. */
  const resolveChannel = (value: string): string | null => {
    if (/^[CGD][A-Z0-9]{8,}$/.test(value)) return [...channels.values()].includes(value) ? value : null;
    return channelId(value);
  };
  // Slack ts: seconds.microseconds, unique and increasing per workspace.
  const nextTs = (): string => {
    seq += 1;
    const micros = seq * 100;
    return `${1_700_000_000 + Math.floor(micros / 1_000_000)}.${String(micros % 1_000_000).padStart(6, '0')}`;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://standin');
    const method = url.pathname.split('/').pop() ?? '';
    const parsed = parseArgs(req.headers['content-type'], await readBody(req), url.searchParams);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const token = bearer ?? (typeof parsed.token === 'string' ? parsed.token : undefined);
    delete parsed.token;
    const call: SlackCall = { method, tokenHint: token ? maskSecret(token) : null, args: parsed, response: null };
    calls.push(call);

    const answer = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void => {
      call.response = {
        status,
        ok: body.ok === true,
        ...(typeof body.error === 'string' ? { error: body.error } : {}),
        ...(typeof body.channel === 'string' ? { channel: body.channel } : {}),
        ...(typeof body.ts === 'string' ? { ts: body.ts } : {}),
      };
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
      opts.onCall?.(call);
    };

    const fault = faults.shift();
    if (fault && 'hang' in fault) {
      opts.onCall?.(call);
      return; // never answered; close() drops the connection
    }
    if (fault && 'error' in fault) return answer(200, { ok: false, error: fault.error });
    if (fault) {
      if (fault.status === 429) {
        const retryAfter = fault.retryAfter === undefined ? 1 : fault.retryAfter;
        const headers: Record<string, string> = retryAfter === null ? {} : { 'retry-after': String(retryAfter) };
        return answer(429, { ok: false, error: 'ratelimited' }, headers);
      }
      return answer(fault.status, { ok: false, error: `http_${fault.status}` });
    }

    if (!token) return answer(200, { ok: false, error: 'not_authed' });
    if (!tokens.has(token)) return answer(200, { ok: false, error: 'invalid_auth' });

    switch (method) {
      case 'auth.test':
        return answer(200, {
          ok: true,
          url: 'https://keywarden-standin.slack.com/',
          ...TEAM,
          bot_id: BOT_ID,
          is_enterprise_install: false,
        });
      case 'chat.postMessage': {
        const problem = checkPostMessage(parsed);
        if (problem) return answer(200, { ok: false, ...problem });
        const channel = resolveChannel(String(parsed.channel));
        if (!channel) return answer(200, { ok: false, error: 'channel_not_found' });
        const ts = nextTs();
        const message = {
          type: 'message',
          text: parsed.text ?? '',
          user: TEAM.user_id,
          bot_id: BOT_ID,
          team: TEAM.team_id,
          ts,
          ...(parsed.blocks ? { blocks: parsed.blocks } : {}),
          ...(parsed.thread_ts ? { thread_ts: parsed.thread_ts } : {}),
        };
        return answer(200, { ok: true, channel, ts, message });
      }
      default:
        return answer(200, { ok: false, error: 'unknown_method' });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  // keep-alive sockets from undici would otherwise outlive setDown(true) and keep "reaching" a downed server.
  const stopListening = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });

  const port = await listen(opts.port ?? 0);
  return {
    url: `http://${host}:${port}/api/`,
    port,
    calls,
    failNext(n, fault) {
      for (let i = 0; i < n; i++) faults.push(fault);
    },
    async setDown(down) {
      if (down) await stopListening();
      else if (!server.listening) await listen(port);
    },
    channelId,
    reset() {
      calls.length = 0;
      faults.length = 0;
    },
    close: stopListening,
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Arguments from a JSON body, a form body and the query string, as Slack accepts all three. */
function parseArgs(contentType: string | undefined, body: string, query: URLSearchParams): Record<string, unknown> {
  const args: Record<string, unknown> = Object.fromEntries(query);
  if (contentType?.startsWith('application/json')) {
    try {
      const json: unknown = JSON.parse(body || '{}');
      if (json && typeof json === 'object' && !Array.isArray(json)) Object.assign(args, json);
    } catch {
      args.__invalid_json = true;
    }
    return args;
  }
  for (const [key, value] of new URLSearchParams(body)) {
    if (JSON_ARGS.has(key)) {
      try {
        args[key] = JSON.parse(value);
      } catch {
        args[key] = value; // left as a string: checkPostMessage answers invalid_blocks_format
      }
    } else if (FLAG_ARGS.has(key) && (value === 'true' || value === 'false')) {
      args[key] = value === 'true';
    } else {
      args[key] = value;
    }
  }
  return args;
}

/** Slack's checks on chat.postMessage arguments, with its error names. Null when the message would be accepted. */
function checkPostMessage(args: Record<string, unknown>): Record<string, unknown> | null {
  if (args.__invalid_json) return { error: 'invalid_json' };
  if (typeof args.channel !== 'string' || !args.channel) return { error: 'channel_not_found' };
  const text = typeof args.text === 'string' ? args.text : '';
  if (text.length > 40_000) return { error: 'msg_too_long' };
  if (args.blocks === undefined) return text ? null : { error: 'no_text' };
  if (!Array.isArray(args.blocks)) return { error: 'invalid_blocks_format' };
  const errors = blockKitErrors(args.blocks);
  if (errors.length === 0) return null;
  return { error: 'invalid_blocks', errors, response_metadata: { messages: errors.map((e) => `[ERROR] ${e}`) } };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function textObject(v: unknown, type: 'plain_text' | 'any', max: number, where: string, errors: string[]): void {
  if (!isObject(v) || typeof v.text !== 'string' || (v.type !== 'plain_text' && v.type !== 'mrkdwn')) {
    errors.push(`${where}: must be a text object`);
    return;
  }
  if (type === 'plain_text' && v.type !== 'plain_text') errors.push(`${where}: must be plain_text`);
  if (v.text.length === 0) errors.push(`${where}: must be at least 1 character`);
  if (v.text.length > max) errors.push(`${where}: must be at most ${max} characters (got ${v.text.length})`);
}

/**
 * Block Kit's documented limits for the block types keywarden sends (header, section, context, actions, divider).
 * Other block types are refused: the stand-in does not model them, and keywarden does not send them.
 */
export function blockKitErrors(blocks: unknown[]): string[] {
  const errors: string[] = [];
  if (blocks.length > 50) errors.push(`blocks: must be at most 50 blocks (got ${blocks.length})`);
  const actionIds = new Set<string>();
  blocks.forEach((block, i) => {
    const at = `blocks[${i}]`;
    if (!isObject(block)) {
      errors.push(`${at}: must be an object`);
      return;
    }
    switch (block.type) {
      case 'header':
        textObject(block.text, 'plain_text', 150, `${at}.text`, errors);
        break;
      case 'section': {
        if (block.text === undefined && block.fields === undefined) errors.push(`${at}: needs text or fields`);
        if (block.text !== undefined) textObject(block.text, 'any', 3000, `${at}.text`, errors);
        if (block.fields !== undefined) {
          if (!Array.isArray(block.fields) || block.fields.length > 10) errors.push(`${at}.fields: at most 10 items`);
          else for (const [j, f] of block.fields.entries()) textObject(f, 'any', 2000, `${at}.fields[${j}]`, errors);
        }
        break;
      }
      case 'context':
        if (!Array.isArray(block.elements) || block.elements.length === 0 || block.elements.length > 10) {
          errors.push(`${at}.elements: 1 to 10 items`);
        } else {
          for (const [j, e] of block.elements.entries()) textObject(e, 'any', 2000, `${at}.elements[${j}]`, errors);
        }
        break;
      case 'actions':
        if (!Array.isArray(block.elements) || block.elements.length === 0 || block.elements.length > 25) {
          errors.push(`${at}.elements: 1 to 25 items`);
          break;
        }
        block.elements.forEach((e, j) => {
          const where = `${at}.elements[${j}]`;
          if (!isObject(e) || e.type !== 'button') {
            errors.push(`${where}: only buttons are modelled`);
            return;
          }
          textObject(e.text, 'plain_text', 75, `${where}.text`, errors);
          if (typeof e.url === 'string' && e.url.length > 3000) errors.push(`${where}.url: at most 3000 characters`);
          if (typeof e.action_id === 'string') {
            if (actionIds.has(e.action_id)) errors.push(`${where}.action_id: must be unique in the message`);
            actionIds.add(e.action_id);
          }
        });
        break;
      case 'divider':
        break;
      default:
        errors.push(`${at}.type: ${String(block.type)} is not a block type the stand-in models`);
    }
  });
  return errors;
}
