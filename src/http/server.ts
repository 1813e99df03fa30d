import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type Db, pingDb } from '../db/index.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from './metrics.ts';
import { type StatusPage, serveStatus } from './status/serve.ts';

export interface HealthServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * What one port facing the network must bound. Health probes, metric scrapes and button presses are a handful of
 * short requests; anything beyond that is a client that hangs or a flood, and must not use up the process's file
 * descriptors (which the Admin API, Postgres and Redis connections need too).
 */
export interface HttpLimits {
  /** Open connections at once; past it new ones are refused and idle ones closed so the next probe gets in. */
  maxConnections: number;
  /** A connection with no traffic for this long is closed (a keep-alive one, or one that never sends a request). */
  idleTimeoutMs: number;
  /** The request's headers must have arrived within this long of the connection's request starting. */
  headersTimeoutMs: number;
  /** The whole request must have arrived within this long. */
  requestTimeoutMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxConnections: 256,
  idleTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
};

/**
 * /healthz: the process is alive (for a liveness probe: never depends on Postgres or Redis, or an outage would
 * restart every replica for nothing). /readyz: Postgres and Redis answer and no job keeps failing (a worker whose
 * jobs all fail is up but not doing its work). /metrics: Prometheus text.
 */
export async function startHealthServer(opts: {
  port: number;
  host?: string;
  db: Db;
  /** The worker's Redis (one node's connection or a cluster's client): readiness asks it for PING. */
  redis: { ping(): Promise<string> };
  metrics: Metrics;
  log: Logger;
  limits?: Partial<HttpLimits>;
  /** One line per job that keeps failing or stopped completing (src/health/jobs.ts): /readyz names them. */
  failingJobs?: () => readonly string[];
  /** The status page at `/` (src/http/status/), when KEYWARDEN_UI_TOKEN is set. */
  status?: StatusPage;
  /** `POST /slack/actions` (src/actions/http.ts), when SLACK_SIGNING_SECRET is set. */
  slackActions?: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}): Promise<HealthServer> {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...opts.limits };
  const serverOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // keep-alive is for a scraper's next request, seconds away; Node's default (5 s) already is that, bounded here
    keepAliveTimeout: Math.min(5_000, limits.idleTimeoutMs),
    // how often Node checks the header and request timeouts (30 s by default: too coarse for short timeouts)
    connectionsCheckingInterval: Math.max(100, Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 2),
  };
  const server = createServer(serverOptions, async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    try {
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const checks = await Promise.all([
          withTimeout(pingDb(opts.db), 2_000).then(
            () => null,
            (e: Error) => `postgres: ${e.message}`,
          ),
          withTimeout(opts.redis.ping(), 2_000).then(
            () => null,
            (e: Error) => `redis: ${e.message}`,
          ),
        ]);
        const failures = [...checks.filter((c): c is string => c !== null), ...(opts.failingJobs?.() ?? [])];
        res
          .writeHead(failures.length ? 503 : 200, { 'content-type': 'text/plain' })
          .end(failures.length ? `not ready\n${failures.join('\n')}\n` : 'ready\n');
      } else if (path === '/metrics') {
        const body = await opts.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(body);
      } else if (path === '/slack/actions' && opts.slackActions) {
        await opts.slackActions(req, res);
      } else if (opts.status && (await serveStatus(req, res, path, opts.status))) {
        // answered by the status page
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz, /metrics\n');
      }
    } catch (err) {
      opts.log.warn({ err, path }, 'health endpoint failed');
      res.writeHead(500, { 'content-type': 'text/plain' }).end('error\n');
    }
  });
  server.maxConnections = limits.maxConnections;
  // idle sockets (no bytes either way for this long) are destroyed: Node has no such timeout by default
  server.timeout = limits.idleTimeoutMs;
  // Connections not inside a request: silent ones that never sent one (a flood, a slow client) and keep-alive ones
  // between requests. Node's closeIdleConnections() spares the first kind, which is the kind a flood is made of.
  const idle = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    idle.add(socket);
    socket.once('close', () => idle.delete(socket));
  });
  server.on('request', (req, res) => {
    // the socket as the request arrived: once answered, a request whose body was not read may be detached from it
    const socket = req.socket;
    idle.delete(socket);
    res.once('finish', () => {
      if (!socket.destroyed) idle.add(socket);
    });
  });
  let lastDropWarning = 0;
  server.on('drop', () => {
    // The cap is reached and this connection was refused. Closing the connections that are not inside a request
    // makes room, so a liveness probe's next try is answered instead of the process being restarted for a flood.
    for (const socket of idle) socket.destroy();
    const now = Date.now();
    if (now - lastDropWarning > 60_000) {
      lastDropWarning = now;
      opts.log.warn(
        { maxConnections: limits.maxConnections },
        'HTTP connection cap reached: refused a connection and closed the idle ones',
      );
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', resolve);
  });
  const address = server.address();
  return {
    server,
    port: typeof address === 'object' && address ? address.port : opts.port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
