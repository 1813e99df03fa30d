/**
 * Errors of the Admin API client. Every one is an AdminApiError, so a caller that only needs "the Admin API could
 * not be read" (the `keywarden.blind` alert) catches one class. None carries the admin key: messages name the
 * key's hint at most, and the server's own message is scrubbed of the key before it is quoted.
 */

/**
 * The statuses worth another attempt: timeouts, conflicts (a concurrent change or a lock; every keywarden request
 * sets values, so sending it again is safe), rate limits, server errors and overload (529).
 */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * `error.details.error_code`s that the API documents as "nothing changed, safe to send again", whatever their
 * status: a 403 `api_key_requester_unconfirmed` on a key update is not a refusal of the admin key.
 */
const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'api_key_requester_unconfirmed',
  'change_outcome_unknown',
  'concurrent_membership_change',
]);

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
  /** The API's `error.details.error_code` (`api_key_requester_unconfirmed`, …); null when it sent none. */
  errorCode?: string | null;
  /** `anthropic-workspace-id` of the response: the workspace the request was judged in; null when absent. */
  workspaceId?: string | null;
  /** `x-should-retry` of the response: the API's own verdict, over the status; null when absent. */
  shouldRetry?: boolean | null;
}

export class AdminApiError extends Error {
  readonly status: number;
  readonly errorType: string;
  readonly requestId: string | null;
  readonly endpoint: string;
  readonly retryAfterMs: number | null;
  readonly errorCode: string | null;
  readonly workspaceId: string | null;
  readonly shouldRetry: boolean | null;
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
    this.errorCode = fields.errorCode ?? null;
    this.workspaceId = fields.workspaceId ?? null;
    this.shouldRetry = fields.shouldRetry ?? null;
  }

  /** Whether sending the same request again may succeed: the API's `x-should-retry` first, then code and status. */
  get retryable(): boolean {
    if (this.shouldRetry !== null) return this.shouldRetry;
    if (this.errorCode !== null && RETRYABLE_CODES.has(this.errorCode)) return true;
    return retryableStatus(this.status);
  }
}

/**
 * A credential failure: 401, or a 403 without an error code (the classic "not an admin key"). A 403 with an
 * `error_code` names one refusal of one request (`sandbox_egress_restricted`, `api_key_scope_missing`, …) and is a
 * plain AdminApiError. Never retried: the same key will be refused again, and keywarden is blind until someone
 * fixes ANTHROPIC_ADMIN_KEY.
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

/** Whether a failed answer means the admin key itself is refused (see AdminKeyRejectedError). */
export function isCredentialFailure(status: number, errorCode: string | null): boolean {
  return status === 401 || (status === 403 && errorCode === null);
}

/**
 * A 3xx: keywarden never follows a redirect, since the admin key would go with it to wherever it points. Names
 * the host of `location`, which is a configuration problem (ANTHROPIC_BASE_URL, a proxy), so it is not retried.
 */
export class AdminApiRedirectError extends AdminApiError {
  /** The host (and port) the redirect pointed to; null when `location` was missing or unreadable. */
  readonly locationHost: string | null;

  constructor(fields: AdminApiErrorFields & { locationHost: string | null }) {
    const where = fields.locationHost ? `a redirect to ${fields.locationHost}` : 'a redirect without a usable location';
    super(
      `the Admin API ${fields.endpoint} answered ${fields.status} with ${where}, which keywarden does not follow ` +
        'with the admin key: check ANTHROPIC_BASE_URL (the API itself never redirects)',
      fields,
    );
    this.name = 'AdminApiRedirectError';
    this.locationHost = fields.locationHost;
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
