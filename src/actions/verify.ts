import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Secret } from '../config/secret.ts';

/**
 * Slack's request signing (v0): `x-slack-signature` is `v0=` + hex HMAC-SHA256, keyed with the signing secret, of
 * `v0:{x-slack-request-timestamp}:{raw body}`. A request older or newer than five minutes is refused whatever its
 * signature, so a captured request cannot be replayed later; within the window, the replay guard (replay.ts) refuses
 * a second delivery of the same signature.
 */

export const MAX_SKEW_SECONDS = 5 * 60;

export type Verification = { ok: true } | { ok: false; reason: 'unsigned' | 'stale' | 'forged' };

export function verifySlackSignature(
  secret: Secret,
  headers: { timestamp: string | undefined; signature: string | undefined },
  rawBody: Buffer,
  now: Date,
): Verification {
  const { timestamp, signature } = headers;
  if (timestamp === undefined || signature === undefined || !/^\d{1,12}$/.test(timestamp)) {
    return { ok: false, reason: 'unsigned' };
  }
  if (Math.abs(now.getTime() / 1000 - Number(timestamp)) > MAX_SKEW_SECONDS) return { ok: false, reason: 'stale' };
  const given = /^v0=([0-9a-f]{64})$/.exec(signature)?.[1];
  if (given === undefined) return { ok: false, reason: 'forged' };
  const expected = createHmac('sha256', secret.reveal()).update(`v0:${timestamp}:`).update(rawBody).digest();
  // both are 32 bytes here, as timingSafeEqual requires: the comparison takes the same time wherever they differ
  return timingSafeEqual(expected, Buffer.from(given, 'hex')) ? { ok: true } : { ok: false, reason: 'forged' };
}

/** The headers a signed request carries: what the Slack stand-in sends and what a test forges. */
export function signSlackRequest(secret: string, timestamp: number, rawBody: string): Record<string, string> {
  const digest = createHmac('sha256', secret).update(`v0:${timestamp}:${rawBody}`).digest('hex');
  return { 'x-slack-request-timestamp': String(timestamp), 'x-slack-signature': `v0=${digest}` };
}
