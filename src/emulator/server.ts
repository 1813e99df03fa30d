import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ANALYTICS_BETA } from '../anthropic/analytics.ts';
import { FAST_MODE_BETA } from '../anthropic/types.ts';
import { type Clock, systemClock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { Pico } from '../money.ts';
import { MINUTE_MS } from '../time.ts';
import { bad, createAdminApi, errorBody, HttpError, type ResponseShape } from './api.ts';
import { type FaultOptions, FaultPlan, faultOptionsSchema, malformedBody } from './faults.ts';
import { SimulatedOrg } from './org.ts';
import { base62From } from './random/hash.ts';
import type { Scenario } from './scenario.ts';
import { missingSpendLimitsBeta, spendLimitsControlSchema } from './spend-limits.ts';
import { keyMinuteUsage, type UsageCell } from './traffic.ts';

/**
 * The Admin API emulator over HTTP (node:http): the endpoints of api.ts behind the API's authentication, fault
 * injection and a request log; and a few control endpoints under /_emulator/ for another process (the demo, a
 * fault drill) to steer it.
 *
 * Control endpoints need no admin key (so a drill can revoke the admin key and restore it), and answer loopback
 * peers only (403 otherwise), wherever the emulator is bound:
 *   GET  /_emulator/health       scenario, start, now, pending scripted faults
 *   POST /_emulator/faults       body: FaultOptions (replaces the current ones; {} clears them)
 *   POST /_emulator/admin-keys   body: { "keys": ["sk-ant-admin…"] } (requests with other keys then get 401)
 *   POST /_emulator/spend-limits body: { access?, set?: [...], delete?: [...], usage_tier? } (spend-limits.ts), at now
 *   GET  /_emulator/requests     the last 200 entries of the request log
 */

export interface EmulatorOptions {
  scenario: Scenario;
  /** Default 0: an ephemeral port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The emulator's "now". Default the system clock. */
  clock?: Clock;
  /** Scenario start; default the clock's time when the emulator starts. */
  startAt?: Date;
  /** Accepted admin keys; default the scenario's `admin_keys`. */
  adminKeys?: string[];
  /** Minutes after a minute ends before its usage is visible; default the scenario's (0 unless it says). */
  freshnessDelayMinutes?: number;
  faults?: FaultOptions;
  log?: Logger;
}

export interface RequestLogEntry {
  method: string;
  /** Path and query, as sent. */
  path: string;
  /** When the request arrived, on the wall clock (not the emulator's clock): retry spacing is real time. */
  time: Date;
  /** Null while unanswered (a hang). */
  status: number | null;
  /** Time spent by the emulator itself, from arrival to the response written (injected delays included). */
  durationMs: number | null;
}

export interface Emulator {
  /** The base URL, for ANTHROPIC_BASE_URL. */
  url: string;
  state: SimulatedOrg;
  /** Admin API requests, oldest first; the last 10,000 are kept. */
  requestLog: readonly RequestLogEntry[];
  setFaults(faults: FaultOptions): void;
  setAdminKeys(keys: string[]): void;
  /** Ground truth: the usage of a key in the minute containing `minute`, freshness delay ignored. */
  usageAt(keyId: string, minute: Date): UsageCell[];
  /** Ground truth: a workspace's (null: the Default Workspace's) priced usage on the UTC day of `day`, as visible now. */
  costPicoFor(workspaceId: string | null, day: Date): Pico;
  /** Ground truth: a key's billed cost over [from, to), as the analytics cost API shows it now. */
  billedPicoFor(keyId: string, from: Date, to: Date): Pico;
  close(): Promise<void>;
}

const LOG_LIMIT = 10_000;
/** The versions the emulator answers, and the shapes each gets (the scenario's `api_shape` may override). */
const VERSION_SHAPES: Record<string, ResponseShape> = {
  '2023-01-01': 'classic',
  '2023-06-01': 'classic',
  '2026-10-21': '2026',
};

export async function startEmulator(opts: EmulatorOptions): Promise<Emulator> {
  const clock = opts.clock ?? systemClock;
  const org = new SimulatedOrg(opts.scenario, opts.startAt ?? clock.now());
  const delayMinutes = opts.freshnessDelayMinutes ?? opts.scenario.freshness_delay_minutes;
  const log = opts.log ?? null;
  let adminKeys = new Set(opts.adminKeys ?? opts.scenario.admin_keys);
  let faults = new FaultPlan(opts.faults);
  const requestLog: RequestLogEntry[] = [];
  const hanging = new Set<ServerResponse>();
  let requestCount = 0;

  const api = createAdminApi(org, () => delayMinutes + faults.options.dataDelayMinutes);

  // ── HTTP ─────────────────────────────────────────────────────────────────────────────────────────────────
  function send(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  function sendError(
    res: ServerResponse,
    status: number,
    message: string,
    requestId: string,
    headers = {},
    errorCode: string | null = null,
  ): void {
    send(res, status, errorBody(status, message, requestId, errorCode), headers);
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const started = performance.now();
    const entry: RequestLogEntry = {
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      time: new Date(),
      status: null,
      durationMs: null,
    };
    requestLog.push(entry);
    if (requestLog.length > LOG_LIMIT) requestLog.shift();
    res.on('finish', () => {
      entry.status = res.statusCode;
      entry.durationMs = performance.now() - started;
    });
    const requestId = `req_01${base62From(`${org.id}:${++requestCount}`, 22)}`;
    // the emulator's own clock, as the real API's `Date` is its own (keywarden reads it to notice clock skew)
    const headers = {
      'request-id': requestId,
      'anthropic-organization-id': org.id,
      date: clock.now().toUTCString(),
    };

    const fault = faults.next(url.pathname);
    if (fault.delayMs) await sleep(fault.delayMs);
    if (fault.hang) {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    if (fault.body !== undefined) {
      const type = fault.contentType ?? 'application/json';
      res.writeHead(fault.status ?? 200, { 'content-type': type, ...headers });
      res.end(fault.body);
      return;
    }
    if (fault.status) {
      const extra: Record<string, string> = {};
      if (fault.retryAfterSeconds !== undefined) extra['retry-after'] = String(fault.retryAfterSeconds);
      if (fault.shouldRetry !== undefined) extra['x-should-retry'] = String(fault.shouldRetry);
      const message = fault.status === 429 ? 'Number of requests has exceeded your rate limit' : 'Injected fault';
      sendError(res, fault.status, message, requestId, { ...headers, ...extra }, fault.errorCode ?? null);
      return;
    }
    // x-api-key as documented, or `Authorization: Bearer` as the official SDK sends it.
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const key = req.headers['x-api-key'] ?? bearer;
    if (typeof key !== 'string' || !adminKeys.has(key)) {
      sendError(res, 401, 'invalid x-api-key', requestId, headers);
      return;
    }
    // The real API refuses a request without a version with a 400 before anything else; so does this one.
    const version = req.headers['anthropic-version'];
    const versionShape = typeof version === 'string' ? VERSION_SHAPES[version] : undefined;
    if (versionShape === undefined) {
      const message = version
        ? `anthropic-version: "${version}" is not a valid version`
        : 'anthropic-version: header is required';
      sendError(res, 400, message, requestId, headers);
      return;
    }
    // The usage report's speed filter and grouping are a beta: without its header the API refuses them.
    const speed = url.searchParams.has('speeds[]') || url.searchParams.getAll('group_by[]').includes('speed');
    const betas = String(req.headers['anthropic-beta'] ?? '')
      .split(',')
      .map((b) => b.trim());
    if (speed && url.pathname.endsWith('/usage_report/messages') && !betas.includes(FAST_MODE_BETA)) {
      sendError(
        res,
        400,
        `speeds, group_by speed: need the header anthropic-beta: ${FAST_MODE_BETA}`,
        requestId,
        headers,
      );
      return;
    }
    const spendLimitsBeta = missingSpendLimitsBeta(url.pathname, betas);
    if (spendLimitsBeta !== null) {
      sendError(res, 400, `spend limits: need the header anthropic-beta: ${spendLimitsBeta}`, requestId, headers);
      return;
    }
    if (url.pathname.startsWith('/v1/organizations/analytics/') && !betas.includes(ANALYTICS_BETA)) {
      sendError(
        res,
        400,
        `this endpoint is a beta: send the header anthropic-beta: ${ANALYTICS_BETA}`,
        requestId,
        headers,
      );
      return;
    }
    const shape = org.scenario.api_shape === 'by_version' ? versionShape : org.scenario.api_shape;
    try {
      const answer = await api.route(entry.method, url, () => readJson(req), clock.now().getTime(), shape);
      const withWorkspace = answer.workspaceId ? { ...headers, 'anthropic-workspace-id': answer.workspaceId } : headers;
      const malformed = malformedBody(answer.body, fault);
      if (malformed === null) send(res, 200, answer.body, withWorkspace);
      else res.writeHead(200, { 'content-type': 'application/json', ...withWorkspace }).end(malformed);
    } catch (err) {
      if (err instanceof HttpError) sendError(res, err.status, err.message, requestId, headers, err.errorCode);
      else {
        log?.error({ err, path: url.pathname }, 'emulator: handler failed');
        sendError(res, 500, 'Internal server error', requestId, headers);
      }
    }
    log?.debug({ method: entry.method, path: entry.path, status: res.statusCode }, 'emulator request');
  }

  function isLoopback(address: string | undefined): boolean {
    return address !== undefined && (address === '::1' || /^(::ffff:)?127\./.test(address));
  }

  async function handleControl(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!isLoopback(req.socket.remoteAddress)) {
      sendError(res, 403, 'the /_emulator/ endpoints answer loopback clients only', 'req_control');
      return;
    }
    const p = url.pathname;
    try {
      if (p === '/_emulator/health' && req.method === 'GET') {
        send(res, 200, {
          status: 'ok',
          scenario: org.scenario.name,
          organization_id: org.id,
          start: new Date(org.startMs).toISOString(),
          now: clock.now().toISOString(),
          freshness_delay_minutes: delayMinutes,
          pending_scripted_faults: faults.pending,
        });
      } else if (p === '/_emulator/faults' && req.method === 'POST') {
        const parsed = faultOptionsSchema.safeParse(await readJson(req));
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          throw bad(`${issue.path.join('.') || '(body)'}: ${issue.message}`);
        }
        faults = new FaultPlan(parsed.data);
        send(res, 200, { faults: faults.options });
      } else if (p === '/_emulator/admin-keys' && req.method === 'POST') {
        const body = (await readJson(req)) as { keys?: unknown };
        if (!Array.isArray(body?.keys) || !body.keys.every((k) => typeof k === 'string')) {
          throw bad('keys: must be a list of admin keys');
        }
        adminKeys = new Set(body.keys as string[]);
        send(res, 200, { admin_keys: adminKeys.size });
      } else if (p === '/_emulator/spend-limits' && req.method === 'POST') {
        const parsed = spendLimitsControlSchema.safeParse(await readJson(req));
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          throw bad(`${issue.path.join('.') || '(body)'}: ${issue.message}`);
        }
        org.spendLimits.apply(parsed.data, clock.now().getTime());
        send(res, 200, {
          access: org.spendLimits.access,
          limits: org.spendLimits.limitsAt(clock.now().getTime()).length,
        });
      } else if (p === '/_emulator/requests' && req.method === 'GET') {
        send(res, 200, { data: requestLog.slice(-200) });
      } else throw new HttpError(404, `${req.method} ${p}: no such control endpoint`);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      sendError(res, err.status, err.message, 'req_control');
    }
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const handler = url.pathname.startsWith('/_emulator/') ? handleControl : handleApi;
    handler(req, res, url).catch((err: unknown) => {
      log?.error({ err }, 'emulator: request failed');
      if (!res.headersSent) sendError(res, 500, 'Internal server error', 'req_internal');
      else res.destroy();
    });
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    state: org,
    requestLog,
    setFaults: (f) => {
      faults = new FaultPlan(f);
    },
    setAdminKeys: (keys) => {
      adminKeys = new Set(keys);
    },
    usageAt: (keyId, minute) => {
      const k = org.key(keyId);
      if (!k) throw new Error(`usageAt: no key ${keyId} in scenario ${org.scenario.name}`);
      return keyMinuteUsage(org.keys, k.index, Math.floor(minute.getTime() / MINUTE_MS));
    },
    costPicoFor: (workspaceId, day) => {
      const w = workspaceId === null ? null : org.workspace(workspaceId);
      if (workspaceId !== null && !w)
        throw new Error(`costPicoFor: no workspace ${workspaceId} in scenario ${org.scenario.name}`);
      return api.costPico(w, Math.floor(day.getTime() / 86_400_000), clock.now().getTime());
    },
    billedPicoFor: (keyId, from, to) => api.billedPico(keyId, from.getTime(), to.getTime(), clock.now().getTime()),
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 1_000_000) throw new HttpError(413, 'request body larger than 1 MB');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw bad('body: not valid JSON');
  }
}
