import { Webhook } from 'standardwebhooks';
import type { Receivers } from '../config/receivers.ts';
import { type DeliveryResult, postJson } from './http-delivery.ts';

/**
 * Signed webhooks per Standard Webhooks v1: `webhook-id` (the outbox row, so stable across retries),
 * `webhook-timestamp`, and `webhook-signature` with one `v1,…` HMAC-SHA256 per secret the receiver has (two
 * while a secret is being rotated, so the receiver can switch whenever it likes). The body is the payload exactly
 * as signed: nothing re-serialises it between the signature and the wire.
 */

export interface WebhookSender {
  /** `receiver`: the policy's name for it; `id`: the webhook-id; `body`: the JSON text to sign and send. */
  send(receiver: string, id: string, body: string): Promise<DeliveryResult>;
}

interface WebhookOptions {
  receivers: Receivers['webhook'];
  /** Per-request limit; a receiver that hangs must not hold the delivery run. Default 10 s. */
  timeoutMs?: number;
  /** The signing time. The receiver compares it with its own clock (5 minutes' tolerance), so it is the wall clock. */
  now?: () => Date;
}

export function createWebhookSender(opts: WebhookOptions): WebhookSender {
  const now = opts.now ?? (() => new Date());
  return {
    async send(receiver, id, body) {
      const r = opts.receivers[receiver];
      const what = `webhook "${receiver}"`;
      if (r === undefined) {
        return {
          ok: false,
          failure: { kind: 'retryable', reason: `${what}: not in the policy's receivers.webhook (was it renamed?)` },
        };
      }
      const at = now();
      const signature = r.secrets.map((s) => new Webhook(s.reveal()).sign(id, at, body)).join(' ');
      const res = await postJson({
        what,
        url: r.url,
        body,
        headers: {
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': signature,
        },
        timeoutMs: opts.timeoutMs ?? 10_000,
        permanentHint: (status) =>
          status === 401 || status === 403
            ? ` (the receiver refused the signature: does it hold the secret that secret_env names?)`
            : status === 404 || status === 410
              ? ' (no endpoint at that URL: update receivers.webhook)'
              : '',
      });
      return 'status' in res ? { ok: true, providerId: `${receiver}:${id}` } : res;
    },
  };
}
