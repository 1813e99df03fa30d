import { setTimeout as delay } from 'node:timers/promises';
import type { z } from 'zod';
import type { Secret } from '../config/secret.ts';
import { formatPath } from '../issue-path.ts';
import type { Logger } from '../log.ts';
import {
  AdminApiConnectionError,
  AdminApiError,
  AdminApiRedirectError,
  AdminApiResponseError,
  AdminApiTimeoutError,
  AdminKeyRejectedError,
  isCredentialFailure,
} from './errors.ts';

/**
 * HTTP to the Admin API: headers, one timeout per attempt, retries with backoff, and turning responses into
 * validated values or AdminApiErrors. Knows nothing about which endpoint means what.
 */

/**
 * The `anthropic-version` keywarden sends by default. `2023-06-01`, not the SDK's `2026-10-21`: the usage and cost
 * reports keywarden polls every minute are not in the 2026-10-21 spec at all, so only the version they were built
 * under is known to serve them. The API-key reads are the exception (KEY_READS_VERSION); the other entity
 * endpoints answer either version, and both versions' shapes are read (types.ts).
 */
export const ANTHROPIC_VERSION = '2023-06-01';

/**
 * The `anthropic-version` the API-key reads (list and retrieve) send. A key's identity (`principal`: a user, a
 * service account, or nobody for a legacy workspace key) exists only in the 2026-10-21 shapes; under 2023-06-01
 * the classic shapes leave every key's identity unknown. The key endpoints are in the 2026-10-21 spec, and a
 * classic answer still parses (identity then stays unknown).
 */
export const KEY_READS_VERSION = '2026-10-21';

/** The versions whose response shapes the client reads; the contract tests run both against the emulator. */
const SUPPORTED_ANTHROPIC_VERSIONS = ['2023-06-01', '2026-10-21'] as const;
export type AnthropicVersion = (typeof SUPPORTED_ANTHROPIC_VERSIONS)[number];

export interface TransportOptions {
  baseUrl: string;
  adminKey: Secret;
  anthropicVersion: AnthropicVersion;
  timeoutMs: number;
  maxAttempts: number;
  maxElapsedMs: number;
  log: Logger | null;
  fetch: typeof fetch;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** For the jitter; injectable so a test can pin it. */
  random: () => number;
  /** This process's clock, against which the API's `Date` header is compared. */
  now: () => number;
}

/** Query values; arrays are sent as repeated `name[]=v`, as the API documents. */
export type Query = Record<string, string | number | boolean | readonly string[] | undefined>;

export interface ApiRequest<S extends z.ZodType> {
  method: 'GET' | 'POST';
  path: string;
  query?: Query;
  body?: unknown;
  schema: S;
  signal?: AbortSignal | undefined;
  /** `anthropic-beta`: the betas a request's parameters need. */
  beta?: string | undefined;
  /**
   * An endpoint some organizations do not have (early access, a beta, another organization type): a 403 there
   * refuses the feature, not the admin key, even without an error code, so it does not make keywarden blind.
   */
  featureGated?: boolean;
  /** Attempts for this request, when fewer than the client's suit it (a read with a fallback, a probe). */
  maxAttempts?: number;
  /**
   * This request's `anthropic-version`, where it must differ from the client's: one endpoint's shapes may need a
   * newer version (KEY_READS_VERSION) while others are known only under the older one (ANTHROPIC_VERSION).
   */
  version?: AnthropicVersion | undefined;
}

/** Backoff: the first retry waits up to BASE, doubling up to CAP, with full jitter (uniform in [0, cap]). */
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
/** Clock skew worth a log line. */
const CLOCK_SKEW_NOTICE_MS = 10_000;

/** A sleep that ends early, with the caller's own abort reason, when the signal fires. */
export async function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, signal ? { signal } : undefined);
  } catch (err) {
    throw signal?.aborted ? signal.reason : err;
  }
}

/**
 * What the Admin API last said about the admin key: `accepted` after any 2xx answer, `rejected` after a 401/403
 * (with that error), `unknown` before either. Other failures (429, 5xx, timeouts) say nothing about the key.
 */
export type AdminKeyVerdict =
  | { state: 'unknown' }
  | { state: 'accepted' }
  | { state: 'rejected'; rejection: AdminKeyRejectedError };

interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * The API's clock as its last answer's `Date` header gave it (whole seconds), beside this process's at the moment
 * the answer arrived.
 */
export interface ServerClockReading {
  dateMs: number;
  /** This process's clock (the client's `clock`) when the answer arrived. */
  localMs: number;
}

export class AdminTransport {
  readonly #opts: TransportOptions;
  #keyVerdict: AdminKeyVerdict = { state: 'unknown' };
  #serverClock: ServerClockReading | null = null;
  #skewLogged = false;
  /** Until when (performance.now()) the last `retry-after` holds back every call of this client, not only its own. */
  #pausedUntil = 0;

  constructor(opts: TransportOptions) {
    this.#opts = opts;
  }

  get keyVerdict(): AdminKeyVerdict {
    return this.#keyVerdict;
  }

  get serverClock(): ServerClockReading | null {
    return this.#serverClock;
  }

  #observeServerClock(dateMs: number): void {
    this.#serverClock = { dateMs, localMs: this.#opts.now() };
    const skewMs = dateMs - this.#serverClock.localMs;
    // Said once per process: the skew is a property of this machine's clock, and /metrics carries it from then on.
    // The header has whole seconds and the answer took time to arrive, so a few seconds are no skew.
    if (!this.#skewLogged && Math.abs(skewMs) >= CLOCK_SKEW_NOTICE_MS) {
      this.#skewLogged = true;
      this.#opts.log?.warn(
        { skewSeconds: Math.round(skewMs / 1000), apiDate: new Date(dateMs).toISOString() },
        `this machine's clock is ${Math.round(Math.abs(skewMs) / 1000)} s ${skewMs > 0 ? 'behind' : 'ahead of'} the Admin API's (its Date header); usage is polled to the API's "now", never past it`,
      );
    }
  }

  /** Sends the request, retrying what is worth retrying, and returns the validated body. */
  async request<S extends z.ZodType>(req: ApiRequest<S>): Promise<z.output<S>> {
    const endpoint = `${req.method} ${req.path}`;
    const url = this.#url(req.path, req.query);
    const started = performance.now();
    const { maxElapsedMs } = this.#opts;
    const maxAttempts = Math.max(1, Math.min(req.maxAttempts ?? this.#opts.maxAttempts, this.#opts.maxAttempts));
    let ownPause = -1;
    for (let attempt = 1; ; attempt++) {
      // The rate limit is the organization's: while another call's retry-after runs, sending only earns another
      // 429 (fault drill 4 saw concurrent jobs do that). A pause this call set itself was slept off below. Checked
      // again after each sleep: a call answered meanwhile may have been told to wait longer (bounded by the call's
      // own time limit, so a clock that does not move cannot hold it forever).
      for (
        let pausedMs = this.#pausedUntil - performance.now();
        pausedMs > 0 && this.#pausedUntil !== ownPause && performance.now() - started < maxElapsedMs;
        pausedMs = this.#pausedUntil - performance.now()
      ) {
        await this.#opts.sleep(Math.ceil(pausedMs), req.signal);
      }
      req.signal?.throwIfAborted();
      const elapsed = performance.now() - started;
      // Whole milliseconds: AbortSignal.timeout throws a RangeError on a fraction, and what is left of the total
      // bound is one as soon as performance.now() is involved.
      const timeoutMs = Math.max(1, Math.floor(Math.min(this.#opts.timeoutMs, maxElapsedMs - elapsed)));
      let failure: AdminApiError;
      try {
        const raw = await this.#send(req, url, endpoint, timeoutMs);
        if (raw.status >= 300 && raw.status < 400) throw this.#redirect(raw, url, endpoint);
        if (raw.status < 300) {
          // the key was accepted even when the body then turns out unusable
          this.#keyVerdict = { state: 'accepted' };
          return this.#parse(raw, endpoint, req.schema);
        }
        failure = this.#errorFrom(raw, endpoint, req.featureGated === true);
        if (failure instanceof AdminKeyRejectedError) this.#keyVerdict = { state: 'rejected', rejection: failure };
      } catch (err) {
        if (!(err instanceof AdminApiError)) throw err;
        failure = err;
      }
      failure.attempts = attempt;
      if (failure.status === 429 && failure.retryAfterMs !== null) {
        const until = performance.now() + failure.retryAfterMs;
        if (until > this.#pausedUntil) ownPause = this.#pausedUntil = until;
      }
      if (!failure.retryable || attempt >= maxAttempts) throw failure;
      const exponential = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
      // retry-after is a floor, never shortened by the jitter: sending earlier only earns another 429.
      const waitMs = Math.max(Math.round(this.#opts.random() * exponential), failure.retryAfterMs ?? 0);
      if (performance.now() - started + waitMs > maxElapsedMs) throw failure;
      this.#opts.log?.warn(
        {
          endpoint,
          status: failure.status,
          errorType: failure.errorType,
          errorCode: failure.errorCode,
          requestId: failure.requestId,
          workspaceId: failure.workspaceId,
          attempt,
          waitMs,
        },
        'Admin API request failed; retrying',
      );
      await this.#opts.sleep(waitMs, req.signal);
    }
  }

  #url(path: string, query: Query | undefined): string {
    // Relative to the base, so a base URL with a path (a proxy's /anthropic/) keeps it.
    const base = this.#opts.baseUrl.endsWith('/') ? this.#opts.baseUrl : `${this.#opts.baseUrl}/`;
    const url = new URL(path.replace(/^\//, ''), base);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) url.searchParams.append(`${name}[]`, v);
      else url.searchParams.set(name, String(value));
    }
    return url.toString();
  }

  /** One attempt. The timeout covers the whole exchange, body included: a body can stall as well as headers. */
  async #send(req: ApiRequest<z.ZodType>, url: string, endpoint: string, timeoutMs: number): Promise<RawResponse> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
    const headers: Record<string, string> = {
      'x-api-key': this.#opts.adminKey.reveal(),
      'anthropic-version': req.version ?? this.#opts.anthropicVersion,
      accept: 'application/json',
    };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    if (req.beta !== undefined) headers['anthropic-beta'] = req.beta;
    const started = performance.now();
    try {
      const res = await this.#opts.fetch(url, {
        method: req.method,
        headers,
        body: req.body === undefined ? null : JSON.stringify(req.body),
        signal,
        // Never 'follow': undici drops Authorization across origins but keeps x-api-key, so a redirect would hand
        // the admin key (and a replayed status change) to whichever host the Location names.
        redirect: 'manual',
      });
      const text = await res.text();
      const dateMs = Date.parse(res.headers.get('date') ?? '');
      if (!Number.isNaN(dateMs)) this.#observeServerClock(dateMs);
      this.#opts.log?.debug(
        {
          endpoint,
          status: res.status,
          requestId: res.headers.get('request-id'),
          workspaceId: res.headers.get('anthropic-workspace-id') ?? undefined,
          ms: Math.round(performance.now() - started),
        },
        'Admin API request',
      );
      return { status: res.status, headers: res.headers, text };
    } catch (err) {
      // The caller's abort is not a failure of the API: it propagates as the caller's own reason.
      if (req.signal?.aborted) throw req.signal.reason;
      if (timeout.aborted) throw new AdminApiTimeoutError({ endpoint, timeoutMs });
      throw new AdminApiConnectionError({ endpoint }, err);
    }
  }

  #redirect(raw: RawResponse, url: string, endpoint: string): AdminApiRedirectError {
    let locationHost: string | null = null;
    try {
      const location = raw.headers.get('location');
      // the host only: a Location's path or query may carry anything, the admin key included
      if (location) locationHost = new URL(location, url).host;
    } catch {
      // unreadable: said as such
    }
    return new AdminApiRedirectError({
      status: raw.status,
      errorType: 'redirect',
      requestId: raw.headers.get('request-id'),
      endpoint,
      locationHost,
    });
  }

  #errorFrom(raw: RawResponse, endpoint: string, featureGated: boolean): AdminApiError {
    const requestId = raw.headers.get('request-id');
    const workspaceId = raw.headers.get('anthropic-workspace-id');
    const retryAfterMs = parseRetryAfter(raw.headers);
    const shouldRetryHeader = raw.headers.get('x-should-retry');
    const shouldRetry = shouldRetryHeader === 'true' ? true : shouldRetryHeader === 'false' ? false : null;
    let errorType = `http_${raw.status}`;
    let errorCode: string | null = null;
    let message = `HTTP ${raw.status}`;
    try {
      const body = JSON.parse(raw.text) as {
        error?: { type?: unknown; message?: unknown; details?: { error_code?: unknown } | null };
      };
      if (typeof body.error?.type === 'string') errorType = body.error.type;
      if (typeof body.error?.message === 'string') message = body.error.message;
      const code = body.error?.details?.error_code;
      if (typeof code === 'string' && code !== '') errorCode = code;
    } catch {
      // An error page from a proxy: the status says enough.
    }
    const key = this.#opts.adminKey;
    message = message.replaceAll(key.reveal(), key.hint).slice(0, 500);
    const fields = {
      status: raw.status,
      errorType,
      errorCode,
      requestId,
      workspaceId,
      endpoint,
      retryAfterMs,
      shouldRetry,
    };
    if (isCredentialFailure(raw.status, errorCode) && !(featureGated && raw.status === 403)) {
      return new AdminKeyRejectedError({ ...fields, keyHint: key.hint, serverMessage: message });
    }
    const context = [requestId ? `request ${requestId}` : null, workspaceId ? `workspace ${workspaceId}` : null]
      .filter((part) => part !== null)
      .join(', ');
    const code = errorCode ? ` ${errorCode}` : '';
    return new AdminApiError(
      `Admin API ${endpoint}: ${raw.status} ${errorType}${code}: ${message}${context ? ` (${context})` : ''}`,
      fields,
    );
  }

  #parse<S extends z.ZodType>(raw: RawResponse, endpoint: string, schema: S): z.output<S> {
    const requestId = raw.headers.get('request-id');
    const fail = (field: string | null, problem: string) =>
      new AdminApiResponseError({
        status: raw.status,
        errorType: 'invalid_response',
        requestId,
        endpoint,
        field,
        problem,
      });
    const contentType = raw.headers.get('content-type') ?? '';
    if (raw.text.trim() === '') throw fail(null, 'the body is empty (expected JSON)');
    let body: unknown;
    try {
      body = JSON.parse(raw.text);
    } catch (err) {
      if (/html/i.test(contentType) || /^\s*</.test(raw.text)) {
        throw fail(null, `got HTML instead of JSON (a proxy or an outage page?): ${snippet(raw.text)}`);
      }
      throw fail(null, `the body is not valid JSON (truncated?): ${(err as Error).message}; body ${snippet(raw.text)}`);
    }
    const result = schema.safeParse(body, { reportInput: true });
    if (!result.success) {
      const issue = result.error.issues[0]!;
      throw fail(formatPath(issue.path) || null, describeIssue(issue));
    }
    return result.data;
  }
}

/** `retry-after` in seconds or as an HTTP date, or Anthropic's `retry-after-ms`; null when absent or unreadable. */
export function parseRetryAfter(headers: Headers): number | null {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.ceil(Number(ms));
  const value = headers.get('retry-after');
  if (value === null) return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 80 ? `"${flat.slice(0, 80)}…" (${text.length} bytes)` : `"${flat}"`;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') {
    const input = issue.input;
    const got =
      input === undefined
        ? 'missing'
        : input === null
          ? 'null'
          : Array.isArray(input)
            ? 'a list'
            : typeof input === 'object'
              ? 'object'
              : // the value itself says most about what went wrong (`"12"`, `"yesterday"`), cut short
                `${typeof input} ${JSON.stringify(input).slice(0, 40)}`;
    return `expected ${issue.expected}, got ${got}`;
  }
  return issue.message;
}
