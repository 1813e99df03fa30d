/**
 * Errors of the Admin API client. Every one is an AdminApiError, so a caller that only needs "the Admin API could
 * not be read" (the `keywarden.blind` alert) catches one class. None carries the admin key: messages name the
 * key's hint at most, and the server's own message is scrubbed of the key before it is quoted.
 */

/** The statuses worth another attempt: timeouts, rate limits, server errors and overload (529). */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

export interface AdminApiErrorFields {
  /** HTTP status; 0 when no response arrived (timeout, connection failure). */
  status: number;
  /** The API's `error.type` (`rate_limit_error`, `not_found_error`, …), or `timeout`, `connection_error`, `invalid_response`. */
  errorType: string;
  /** `request-id` of the response, for Anthropic support; null when there was no response. */
  requestId: string | null;
  /** "GET /v1/organizations/api_keys" */
  endpoint: string;
  /** What `retry-after` asked for, in ms; null when the response had none. */
  retryAfterMs?: number | null;
  /** How many requests were sent before giving up. */
  attempts?: number;
}

export class AdminApiError extends Error {
  readonly status: number;
  readonly errorType: string;
  readonly requestId: string | null;
  readonly endpoint: string;
  readonly retryAfterMs: number | null;
  attempts: number;

  constructor(message: string, fields: AdminApiErrorFields, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AdminApiError';
    this.status = fields.status;
    this.errorType = fields.errorType;
    this.requestId = fields.requestId;
    this.endpoint = fields.endpoint;
    this.retryAfterMs = fields.retryAfterMs ?? null;
    this.attempts = fields.attempts ?? 1;
  }

  /** Whether sending the same request again may succeed. */
  get retryable(): boolean {
    return retryableStatus(this.status);
  }
}

/**
 * 401 or 403: the admin key is invalid, revoked, or lacks the admin role. Never retried: the same key will be
 * refused again, and keywarden is blind until someone fixes ANTHROPIC_ADMIN_KEY.
 */
export class AdminKeyRejectedError extends AdminApiError {
  readonly keyHint: string;

  constructor(fields: AdminApiErrorFields & { keyHint: string; serverMessage: string }) {
    const request = fields.requestId ? `, request ${fields.requestId}` : '';
    super(
      `the Admin API rejected the admin key ${fields.keyHint} on ${fields.endpoint} (${fields.status} ${fields.errorType}: ` +
        `${fields.serverMessage}${request}): the key is invalid, revoked, or not an admin key; ` +
        'create a new one in the Console (Settings → Admin keys) and set ANTHROPIC_ADMIN_KEY',
      fields,
    );
    this.name = 'AdminKeyRejectedError';
    this.keyHint = fields.keyHint;
  }

  override get retryable(): boolean {
    return false;
  }
}

/**
 * A response keywarden cannot use: not JSON (an HTML error page from a proxy), truncated JSON, or JSON of the
 * wrong shape. Names the endpoint and the field. Not retried: the same request most likely gets the same answer.
 */
export class AdminApiResponseError extends AdminApiError {
  /** The field path that is wrong (`data[3].created_at`), or null when the body as a whole is unusable. */
  readonly field: string | null;

  constructor(fields: AdminApiErrorFields & { field: string | null; problem: string }) {
    const request = fields.requestId ? ` (request ${fields.requestId})` : '';
    const where = fields.field ? `${fields.field}: ` : '';
    super(`unusable response from the Admin API ${fields.endpoint}: ${where}${fields.problem}${request}`, fields);
    this.name = 'AdminApiResponseError';
    this.field = fields.field;
  }

  override get retryable(): boolean {
    return false;
  }
}

/** No complete response within the request timeout (a hanging connection, a stalled body). Retried. */
export class AdminApiTimeoutError extends AdminApiError {
  readonly timeoutMs: number;

  constructor(fields: Omit<AdminApiErrorFields, 'status' | 'errorType' | 'requestId'> & { timeoutMs: number }) {
    super(`the Admin API did not answer ${fields.endpoint} within ${fields.timeoutMs} ms`, {
      ...fields,
      status: 0,
      errorType: 'timeout',
      requestId: null,
    });
    this.name = 'AdminApiTimeoutError';
    this.timeoutMs = fields.timeoutMs;
  }

  override get retryable(): boolean {
    return true;
  }
}

/** The connection failed (refused, reset, DNS). Retried. */
export class AdminApiConnectionError extends AdminApiError {
  constructor(fields: Omit<AdminApiErrorFields, 'status' | 'errorType' | 'requestId'>, cause: unknown) {
    const reason = describeCause(cause);
    super(
      `cannot reach the Admin API for ${fields.endpoint}: ${reason}`,
      { ...fields, status: 0, errorType: 'connection_error', requestId: null },
      { cause },
    );
    this.name = 'AdminApiConnectionError';
  }

  override get retryable(): boolean {
    return true;
  }
}

/** undici hides the useful part ("ECONNREFUSED 127.0.0.1:1") in `cause`. */
function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const inner = cause.cause;
  if (inner instanceof Error) {
    const code = (inner as NodeJS.ErrnoException).code;
    return code ? `${code} (${inner.message})` : inner.message;
  }
  return cause.message;
}
