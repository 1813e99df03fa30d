import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Secret } from '../config/secret.ts';
import { dispatchPress, type PressReceiver } from './handle.ts';
import { parsePress } from './payload.ts';
import { firstDelivery } from './replay.ts';
import { verifySlackSignature } from './verify.ts';

/**
 * `POST /slack/actions`: Slack's Request URL for interactivity. Order matters: the body is read up to a cap, the
 * signature and timestamp checked and the replay guard passed before anything is parsed or read from Postgres.
 * Answers say what class of problem it was and nothing more (no echo of the body, the headers or the secret).
 */

/** A block_actions payload carries the whole message (up to 50 blocks); this is several times the largest of ours. */
export const MAX_BODY_BYTES = 256 * 1024;

export function slackActionsEndpoint(ctx: PressReceiver, signingSecret: Secret) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const reply = (status: number, text: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text ? `${text}\n` : '');
    };
    if (req.method !== 'POST') return reply(405, 'method not allowed: Slack POSTs here');
    const body = await readCapped(req, MAX_BODY_BYTES);
    if (body === null) return reply(413, 'body too large');
    const header = (name: string) => {
      const v = req.headers[name];
      return typeof v === 'string' ? v : undefined;
    };
    const verdict = verifySlackSignature(
      signingSecret,
      { timestamp: header('x-slack-request-timestamp'), signature: header('x-slack-signature') },
      body,
      ctx.clock.now(),
    );
    if (!verdict.ok) {
      ctx.log.warn({ reason: verdict.reason }, 'refused a Slack action request that is not validly signed');
      return reply(401, 'invalid signature');
    }
    if (!(await firstDelivery(ctx, 'signature', header('x-slack-signature') ?? ''))) {
      ctx.log.warn('refused a replayed Slack action request');
      return reply(401, 'replayed request');
    }
    let payload: unknown;
    try {
      const form = new URLSearchParams(body.toString('utf8'));
      payload = JSON.parse(form.get('payload') ?? '');
    } catch {
      return reply(400, 'malformed payload');
    }
    const press = parsePress(payload, 'http');
    if (press === null) return reply(400, 'not a button press');
    const answer = await dispatchPress(ctx.targets, press);
    // Slack shows nothing for an empty 200: the answer went out as chat.update or to the response_url
    return answer.status === 200 ? reply(200, '') : reply(400, 'the button names nothing this keywarden knows');
  };
}

/** The body, or null when it exceeds `max` bytes (declared or actual): the rest is not read. */
async function readCapped(req: IncomingMessage, max: number): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) {
    req.resume();
    return null;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) {
      req.destroy();
      return null;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
