import { singleLine, truncate } from './escape.ts';
import type { DeliveryFailure } from './message.ts';

/**
 * One JSON POST to a receiver (PagerDuty, a webhook, a Teams workflow) and what its answer means for the outbox.
 * Shared by the three adapters so a 429 or a dead server reads the same whichever of them answered.
 */

export type DeliveryResult = { ok: true; providerId: string } | { ok: false; failure: DeliveryFailure };

interface PostJson {
  /** Who is called, for reasons (`pagerduty "oncall"`); never the URL, which may be the secret itself (Teams). */
  what: string;
  url: string;
  body: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  /** Values that must never reach a reason, even when the other side echoes them (a URL, a routing key). */
  secrets?: readonly string[];
  /** 4xx answers that say "this message will never be accepted", with the hint an operator needs. */
  permanentHint?: (status: number, body: string) => string;
}

/** When a 429 names no usable Retry-After: a minute, as for Slack. */
const DEFAULT_RETRY_AFTER_MS = 60_000;
/** The most of an error body a reason quotes: enough for PagerDuty's `errors`, not a page of HTML. */
const BODY_EXCERPT = 300;

export async function postJson(req: PostJson): Promise<{ status: number; body: string } | DeliveryResult> {
  let res: Response;
  try {
    res = await fetch(req.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'keywarden', ...req.headers },
      body: req.body,
      // A redirect would carry a signed body or a routing key to wherever it points: the receiver's URL is the
      // one the operator configured, or nothing.
      redirect: 'error',
      signal: AbortSignal.timeout(req.timeoutMs),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      return { ok: false, failure: { kind: 'retryable', reason: `${req.what}: timed out`, unreachable: true } };
    }
    if (e.cause?.message?.includes('redirect')) {
      return {
        ok: false,
        failure: { kind: 'permanent', reason: `${req.what}: answered with a redirect: set the URL it points to` },
      };
    }
    const detail = e.cause?.code ?? 'connection failed';
    return {
      ok: false,
      failure: { kind: 'retryable', reason: `${req.what}: unreachable (${detail})`, unreachable: true },
    };
  }
  const body = await res.text().catch(() => '');
  if (res.status >= 200 && res.status < 300) return { status: res.status, body };
  return { ok: false, failure: classifyStatus(req, res.status, res.headers.get('retry-after'), body) };
}

function classifyStatus(req: PostJson, status: number, retryAfter: string | null, body: string): DeliveryFailure {
  let text = body;
  for (const secret of req.secrets ?? []) if (secret) text = text.split(secret).join('****');
  const excerpt = truncate(singleLine(text).trim(), BODY_EXCERPT);
  const reason = `${req.what}: HTTP ${status}${excerpt ? ` ${excerpt}` : ''}`;
  if (status === 429) {
    return { kind: 'rate_limited', retryAfterMs: retryAfterMs(retryAfter) ?? DEFAULT_RETRY_AFTER_MS, reason };
  }
  // 5xx, a timeout at a proxy, or a 3xx that fetch did not follow: the service, not the message
  if (status >= 500 || status === 408 || status < 200 || (status >= 300 && status < 400)) {
    return { kind: 'retryable', reason, unreachable: true };
  }
  return { kind: 'permanent', reason: `${reason}${req.permanentHint?.(status, body) ?? ''}` };
}

/** Retry-After in seconds or as an HTTP date; null when it is neither. */
function retryAfterMs(value: string | null): number | null {
  if (value === null) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}
