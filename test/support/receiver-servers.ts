import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';

/**
 * Local stand-ins for the three receivers, on 127.0.0.1 and an ephemeral port: a PagerDuty Events API v2 that
 * keeps each incident's dedup lifecycle, a webhook endpoint that verifies Standard Webhooks signatures with the
 * `standardwebhooks` library (as a receiver would), and a Teams Workflows trigger. Each can be taken down (every
 * connection reset, as a dead host behind a load balancer) or told to refuse the next calls with a status.
 */

export interface Call {
  at: number;
  /** Whether the call reached the stand-in's logic (false: refused by an outage or a queued fault). */
  accepted: boolean;
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

interface Fault {
  status: number;
  retryAfter?: number;
}

export interface StandIn {
  readonly url: string;
  /** Every call, refused ones included, in arrival order. */
  readonly calls: Call[];
  /** Reset every connection while down. */
  setDown(down: boolean): void;
  /** Answer the next `n` calls with this status (and Retry-After), untouched by the stand-in's logic. */
  failNext(n: number, fault: Fault): void;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, body: string) => { status: number; json?: unknown; text?: string };

async function startStandIn(handler: Handler): Promise<StandIn> {
  const calls: Call[] = [];
  const sockets = new Set<Socket>();
  let down = false;
  let faults: { n: number; fault: Fault } | null = null;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (down) {
      calls.push({ at: Date.now(), accepted: false, status: 0, headers: req.headers, body: '' });
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (faults !== null && faults.n > 0) {
        faults.n--;
        const { status, retryAfter } = faults.fault;
        calls.push({ at: Date.now(), accepted: false, status, headers: req.headers, body });
        res.writeHead(status, retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) });
        res.end('refused by the stand-in');
        return;
      }
      const out = handler(req, body);
      calls.push({ at: Date.now(), accepted: out.status < 300, status: out.status, headers: req.headers, body });
      if (out.json !== undefined) {
        res.writeHead(out.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(out.json));
      } else {
        res.writeHead(out.status, { 'content-type': 'text/plain' });
        res.end(out.text ?? '');
      }
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    setDown(d) {
      down = d;
      if (d) for (const s of sockets) s.destroy();
    },
    failNext(n, fault) {
      faults = { n, fault };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------------

export interface PagerDutyIncident {
  status: 'triggered' | 'acknowledged' | 'resolved';
  /** Every event_action received for this dedup_key, in order. */
  actions: string[];
  summary: string;
  severity: string;
  customDetails: Record<string, unknown>;
}

export interface PagerDutyStandIn extends StandIn {
  /** The base URL, as PAGERDUTY_EVENTS_URL names it. */
  readonly routingKey: string;
  /** By dedup_key. */
  readonly incidents: Map<string, PagerDutyIncident>;
  /** Every accepted event as sent (routing_key included, as PagerDuty would see it). */
  readonly events: Record<string, unknown>[];
}

/** An integration key of the right shape (32 characters); the stand-in accepts this one only. */
export const PAGERDUTY_TEST_KEY = 'R0UTINGKEY0123456789abcdefABCDEF';

/**
 * A PagerDuty Events API v2 at `${url}/v2/enqueue`: validates each event the way PagerDuty documents (400 with
 * `errors` naming the field), answers 202 with the dedup_key, and keeps the incident each dedup_key opened: an
 * acknowledge or resolve for a key that never triggered changes nothing, as at PagerDuty.
 */
export async function startPagerDutyStandIn(): Promise<PagerDutyStandIn> {
  const incidents = new Map<string, PagerDutyIncident>();
  const events: Record<string, unknown>[] = [];
  const invalid = (errors: string[]) => ({
    status: 400,
    json: { status: 'invalid event', message: 'Event object is invalid', errors },
  });
  const base = await startStandIn((req, body) => {
    if (req.method !== 'POST' || req.url !== '/v2/enqueue') return { status: 404, text: 'not found' };
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return invalid(['Request body is not valid JSON']);
    }
    if (e.routing_key !== PAGERDUTY_TEST_KEY) return invalid(["'routing_key' is invalid"]);
    const action = e.event_action;
    if (action !== 'trigger' && action !== 'acknowledge' && action !== 'resolve') {
      return invalid(["'event_action' is invalid"]);
    }
    const key = typeof e.dedup_key === 'string' ? e.dedup_key : '';
    if (key.length === 0 || key.length > 255) return invalid(["'dedup_key' is invalid"]);
    const payload = e.payload as Record<string, unknown> | undefined;
    if (action === 'trigger') {
      const errors: string[] = [];
      const summary = payload?.summary;
      if (typeof summary !== 'string' || summary.length === 0 || summary.length > 1024)
        errors.push("'payload.summary' is missing or blank");
      if (typeof payload?.source !== 'string' || payload.source.length === 0)
        errors.push("'payload.source' is missing or blank");
      if (!['critical', 'error', 'warning', 'info'].includes(String(payload?.severity)))
        errors.push("'payload.severity' is invalid (expected one of critical, error, warning, info)");
      if (errors.length > 0) return invalid(errors);
    }
    events.push(e);
    const incident = incidents.get(key);
    if (action === 'trigger') {
      const fields = {
        summary: String(payload!.summary),
        severity: String(payload!.severity),
        customDetails: (payload!.custom_details ?? {}) as Record<string, unknown>,
      };
      if (incident === undefined || incident.status === 'resolved') {
        incidents.set(key, { status: 'triggered', actions: [...(incident?.actions ?? []), action], ...fields });
      } else {
        incident.actions.push(action);
      }
    } else if (incident !== undefined && incident.status !== 'resolved') {
      incident.actions.push(action);
      incident.status = action === 'acknowledge' ? 'acknowledged' : 'resolved';
    }
    return { status: 202, json: { status: 'success', message: 'Event processed', dedup_key: key } };
  });
  return Object.assign(base, { routingKey: PAGERDUTY_TEST_KEY, incidents, events });
}

// ---------------------------------------------------------------------------------------------------------------

export interface WebhookDelivery {
  id: string;
  timestamp: string;
  signature: string;
  /** The body exactly as received. */
  body: string;
  /** The body as `standardwebhooks` returned it after verifying. */
  payload: Record<string, unknown>;
}

export interface WebhookReceiver extends StandIn {
  /** Verified deliveries, in arrival order (a refused one is in `calls` only). */
  readonly deliveries: WebhookDelivery[];
  /** Why each refused delivery was refused. */
  readonly refusals: string[];
}

/**
 * A webhook endpoint that does what a careful receiver does: verifies every delivery with `standardwebhooks`
 * against `secret` (signature and timestamp) and answers 401 to anything that does not verify.
 */
export async function startWebhookReceiver(secret: string): Promise<WebhookReceiver> {
  const wh = new Webhook(secret);
  const deliveries: WebhookDelivery[] = [];
  const refusals: string[] = [];
  const base = await startStandIn((req, body) => {
    const headers = {
      'webhook-id': String(req.headers['webhook-id'] ?? ''),
      'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
      'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
    };
    try {
      const payload = wh.verify(body, headers) as Record<string, unknown>;
      deliveries.push({
        id: headers['webhook-id'],
        timestamp: headers['webhook-timestamp'],
        signature: headers['webhook-signature'],
        body,
        payload,
      });
      return { status: 204 };
    } catch (err) {
      refusals.push((err as Error).message);
      return { status: 401, text: 'signature does not verify' };
    }
  });
  return Object.assign(base, { deliveries, refusals });
}

// ---------------------------------------------------------------------------------------------------------------

export interface TeamsStandIn extends StandIn {
  /** The workflow URL, signature included: the secret a receiver's url_env holds. */
  readonly workflowUrl: string;
  /** Each accepted message's Adaptive Card. */
  readonly cards: Record<string, unknown>[];
}

/**
 * A Teams Workflows trigger ("When a Teams webhook request is received"): accepts a POST to its URL with the right
 * `sig` and a message whose attachment is an Adaptive Card, answers 202 with no body as Workflows does, and 401 to a
 * wrong signature.
 */
export async function startTeamsStandIn(): Promise<TeamsStandIn> {
  const sig = 'c2lnbmF0dXJlLW9mLXRoZS13b3JrZmxvdw';
  const path = '/workflows/0123abcd/triggers/manual/paths/invoke';
  const cards: Record<string, unknown>[] = [];
  const base = await startStandIn((req, body) => {
    const url = new URL(req.url ?? '/', 'http://standin');
    if (url.pathname !== path) return { status: 404, text: 'no such workflow' };
    if (url.searchParams.get('sig') !== sig)
      return { status: 401, json: { error: { code: 'DirectApiAuthorizationRequired' } } };
    let m: { type?: unknown; attachments?: { contentType?: unknown; content?: Record<string, unknown> }[] };
    try {
      m = JSON.parse(body) as typeof m;
    } catch {
      return { status: 400, json: { error: { code: 'InvalidRequestContent', message: 'not JSON' } } };
    }
    const card = m.attachments?.[0];
    if (
      m.type !== 'message' ||
      card?.contentType !== 'application/vnd.microsoft.card.adaptive' ||
      card.content?.type !== 'AdaptiveCard'
    ) {
      return {
        status: 400,
        json: { error: { code: 'InvalidRequestContent', message: 'not an Adaptive Card message' } },
      };
    }
    cards.push(card.content);
    return { status: 202 };
  });
  return Object.assign(base, {
    workflowUrl: `${base.url}${path}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=${sig}`,
    cards,
  });
}
