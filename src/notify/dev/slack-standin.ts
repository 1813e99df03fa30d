import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { signSlackRequest } from '../../actions/verify.ts';
import { maskSecret } from '../../config/secret.ts';

/**
 * A local stand-in for the Slack Web API, reached through WebClient's `slackApiUrl`: the methods keywarden calls
 * (chat.postMessage, auth.test), bearer-token checks, Block Kit limit checks, and controls to fail the next calls
 * the ways Slack does (429 with Retry-After, `ok:false`, 5xx, a hung request, the host gone). Tests use it through
 * test/support/slack-server.ts; `keywarden demo` runs it so alerts have somewhere to land.
 *
 * For buttons it plays Slack's side of interactivity: it sends signed `block_actions` to a Request URL
 * (pressOverHttp), serves Socket Mode (apps.connections.open with an app token, then a WebSocket that delivers
 * envelopes and waits for their acks: pressOverSocket), answers chat.update and usergroups.users.list, and keeps
 * what is posted to the response URLs it hands out.
 */

export interface SlackStandinOptions {
  /** Bot tokens accepted; any other gets `invalid_auth`. */
  tokens?: string[];
  host?: string;
  /** 0 (default): an ephemeral port. */
  port?: number;
  /** App-level tokens (`xapp-…`) accepted by apps.connections.open. */
  appTokens?: string[];
  /** User groups (`S…`) and their members, for usergroups.users.list. */
  usergroups?: Record<string, string[]>;
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

/** Who presses a button, and where: the parts of a `block_actions` payload a test chooses. */
export interface ButtonPress {
  actionId: string;
  value: string;
  userId?: string;
  userName?: string;
  /** The message the button is on (`channelId:ts`, as chat.postMessage returned it). */
  message?: string;
}

/** A post to a response URL the stand-in handed out with a press. */
export interface ResponsePost {
  body: Record<string, unknown>;
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
  /** The `block_actions` payload Slack would send for this press (its response URL points here). */
  blockActions(press: ButtonPress): Record<string, unknown>;
  /**
   * Sends a press to a Request URL, form-encoded and signed with `signingSecret` (at `timestamp`, seconds; now by
   * default), as Slack does. `body` replaces the form body (for malformed requests). Answers the status and text.
   */
  pressOverHttp(
    url: string,
    signingSecret: string,
    press: ButtonPress,
    opts?: { timestamp?: number; body?: string },
  ): Promise<{ status: number; text: string; body: string }>;
  /**
   * Delivers a press as an `interactive` envelope to the connected Socket Mode client; resolves with the envelope id
   * once the client acks it (rejects after `timeoutMs`, default 5 s, or with no client connected).
   */
  pressOverSocket(press: ButtonPress, opts?: { envelopeId?: string; timeoutMs?: number }): Promise<string>;
  /** Settles when a Socket Mode client has connected and been greeted. */
  socketConnected(): Promise<void>;
  /** Posts received on response URLs, in order. */
  readonly responses: ResponsePost[];
  /** Forget calls and pending faults. Timestamps keep increasing, as Slack's do. */
  reset(): void;
  close(): Promise<void>;
}

export const STANDIN_TOKEN = 'xoxb-keywarden-standin-0000';
export const STANDIN_APP_TOKEN = 'xapp-1-keywarden-standin-0000';
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
  const appTokens = new Set(opts.appTokens ?? [STANDIN_APP_TOKEN]);
  const usergroups = opts.usergroups ?? {};
  const posted = new Set<string>();
  const responses: ResponsePost[] = [];
  let seq = 0;
  let responseSeq = 0;
  const sockets = new Set<Socket>();
  let greeted: Socket | null = null;
  const waitingForClient: Array<() => void> = [];
  const pendingAcks = new Map<string, () => void>();

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
    if (url.pathname.startsWith('/response/')) {
      const text = await readBody(req);
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        body = { invalid_json: text.slice(0, 200) };
      }
      responses.push({ body });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
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
    if (method === 'apps.connections.open') {
      // only an app-level token opens a connection; a bot token is the wrong kind
      if (!appTokens.has(token))
        return answer(200, { ok: false, error: tokens.has(token) ? 'not_allowed_token_type' : 'invalid_auth' });
      return answer(200, { ok: true, url: `ws://${host}:${port}/socket?ticket=${++seq}` });
    }
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
        posted.add(`${channel}:${ts}`);
        return answer(200, { ok: true, channel, ts, message });
      }
      case 'chat.update': {
        const problem = checkPostMessage(parsed);
        if (problem) return answer(200, { ok: false, ...problem });
        const key = `${String(parsed.channel)}:${String(parsed.ts)}`;
        if (!posted.has(key)) return answer(200, { ok: false, error: 'message_not_found' });
        return answer(200, { ok: true, channel: parsed.channel, ts: parsed.ts, text: parsed.text ?? '' });
      }
      case 'usergroups.users.list': {
        const users = usergroups[String(parsed.usergroup)];
        if (users === undefined) return answer(200, { ok: false, error: 'no_such_subteam' });
        return answer(200, { ok: true, users });
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
  // Socket Mode: the WebSocket handshake, then `hello`; the client's acks and pings arrive as frames
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    const key = req.headers['sec-websocket-key'];
    if (!(req.url ?? '').startsWith('/socket') || typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      if (greeted === socket) greeted = null;
    });
    socket.on('error', () => socket.destroy());
    readFrames(socket, (opcode, data) => {
      if (opcode === 0x8) {
        socket.end(frame(0x8, Buffer.alloc(0)));
      } else if (opcode === 0x9) {
        socket.write(frame(0xa, data));
      } else if (opcode === 0x1) {
        try {
          const ack = JSON.parse(data.toString('utf8')) as { envelope_id?: string };
          if (typeof ack.envelope_id === 'string') pendingAcks.get(ack.envelope_id)?.();
        } catch {
          // not JSON: Slack ignores it too
        }
      }
    });
    socket.write(frame(0x1, Buffer.from(JSON.stringify({ type: 'hello', num_connections: 1 }))));
    greeted = socket;
    for (const wake of waitingForClient.splice(0)) wake();
  });

  const blockActions = (press: ButtonPress): Record<string, unknown> => {
    const [channel, ts] = (press.message ?? 'C00000000:1700000000.000100').split(':');
    const userId = press.userId ?? 'U0PRESSER';
    return {
      type: 'block_actions',
      team: { id: TEAM.team_id, domain: 'keywarden-standin' },
      user: {
        id: userId,
        username: press.userName ?? 'presser',
        name: press.userName ?? 'presser',
        team_id: TEAM.team_id,
      },
      api_app_id: 'A0KEYWARDEN',
      token: 'deprecated-verification-token',
      container: { type: 'message', message_ts: ts, channel_id: channel, is_ephemeral: false },
      trigger_id: `${++seq}.trigger`,
      channel: { id: channel, name: 'standin' },
      message: { type: 'message', ts, text: '' },
      response_url: `http://${host}:${port}/response/${++responseSeq}`,
      // keywarden's Snooze and Deny are menus: their press carries the chosen option, not a value of its own
      actions: [
        press.actionId === 'snooze' || press.actionId === 'deny'
          ? {
              type: 'static_select',
              action_id: press.actionId,
              block_id: 'actions',
              selected_option: { text: { type: 'plain_text', text: 'option' }, value: press.value },
              action_ts: `${Date.now() / 1000}`,
            }
          : {
              type: 'button',
              action_id: press.actionId,
              block_id: 'actions',
              value: press.value,
              text: { type: 'plain_text', text: press.actionId },
              action_ts: `${Date.now() / 1000}`,
            },
      ],
    };
  };

  // keep-alive sockets from undici would otherwise outlive setDown(true) and keep "reaching" a downed server.
  const stopListening = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
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
    blockActions,
    async pressOverHttp(url, signingSecret, press, o = {}) {
      const body = o.body ?? new URLSearchParams({ payload: JSON.stringify(blockActions(press)) }).toString();
      const timestamp = o.timestamp ?? Math.floor(Date.now() / 1000);
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          ...signSlackRequest(signingSecret, timestamp, body),
        },
        body,
      });
      return { status: res.status, text: await res.text(), body };
    },
    async pressOverSocket(press, o = {}) {
      const socket = greeted;
      if (socket === null) throw new Error('no Socket Mode client is connected');
      // unique like Slack's: workers on one Redis share the replay guard, which keys envelopes by id
      const envelopeId = o.envelopeId ?? `envelope-${randomUUID()}`;
      const acked = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          pendingAcks.delete(envelopeId);
          reject(new Error(`envelope ${envelopeId} was not acked`));
        }, o.timeoutMs ?? 5_000);
        pendingAcks.set(envelopeId, () => {
          clearTimeout(timer);
          pendingAcks.delete(envelopeId);
          resolve();
        });
      });
      const envelope = {
        envelope_id: envelopeId,
        type: 'interactive',
        accepts_response_payload: false,
        payload: blockActions(press),
      };
      socket.write(frame(0x1, Buffer.from(JSON.stringify(envelope))));
      await acked;
      return envelopeId;
    },
    socketConnected() {
      if (greeted !== null) return Promise.resolve();
      return new Promise<void>((resolve) => waitingForClient.push(resolve));
    },
    responses,
    reset() {
      calls.length = 0;
      faults.length = 0;
      responses.length = 0;
    },
    close: stopListening,
  };
}

/** One unmasked WebSocket frame (a server's frames are never masked). */
function frame(opcode: number, data: Buffer): Buffer {
  const head =
    data.length < 126
      ? Buffer.from([0x80 | opcode, data.length])
      : data.length < 65536
        ? Buffer.from([0x80 | opcode, 126, data.length >> 8, data.length & 0xff])
        : Buffer.concat([Buffer.from([0x80 | opcode, 127]), bigLength(data.length)]);
  return Buffer.concat([head, data]);
}

function bigLength(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Reads the client's frames (masked, as RFC 6455 requires of clients) and hands each whole one to `onFrame`. */
function readFrames(socket: Socket, onFrame: (opcode: number, data: Buffer) => void): void {
  let buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (buffer.length < 2) return;
      const opcode = buffer[0]! & 0x0f;
      const masked = (buffer[1]! & 0x80) !== 0;
      let length = buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffer.length < 10) return;
        length = Number(buffer.readBigUInt64BE(2));
        offset = 10;
      }
      const maskLength = masked ? 4 : 0;
      if (buffer.length < offset + maskLength + length) return;
      const mask = buffer.subarray(offset, offset + maskLength);
      const data = Buffer.from(buffer.subarray(offset + maskLength, offset + maskLength + length));
      if (masked) for (let i = 0; i < data.length; i++) data[i]! ^= mask[i % 4]!;
      buffer = buffer.subarray(offset + maskLength + length);
      onFrame(opcode, data);
    }
  });
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
          if (isObject(e) && e.type === 'static_select') {
            textObject(e.placeholder, 'plain_text', 150, `${where}.placeholder`, errors);
            if (!Array.isArray(e.options) || e.options.length === 0 || e.options.length > 100) {
              errors.push(`${where}.options: 1 to 100 items`);
            } else {
              for (const [k, o] of e.options.entries()) {
                if (!isObject(o)) continue;
                textObject(o.text, 'plain_text', 75, `${where}.options[${k}].text`, errors);
                if (typeof o.value !== 'string' || o.value.length > 150) {
                  errors.push(`${where}.options[${k}].value: 1 to 150 characters`);
                }
              }
            }
            if (typeof e.action_id === 'string') {
              if (actionIds.has(e.action_id)) errors.push(`${where}.action_id: must be unique in the message`);
              actionIds.add(e.action_id);
            }
            return;
          }
          if (!isObject(e) || e.type !== 'button') {
            errors.push(`${where}: only buttons and static selects are modelled`);
            return;
          }
          if (typeof e.value === 'string' && e.value.length > 2000)
            errors.push(`${where}.value: at most 2000 characters`);
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
