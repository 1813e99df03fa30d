import { createServer, type Server } from 'node:http';
import type { Redis } from 'ioredis';
import { type Db, pingDb } from '../db/index.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from './metrics.ts';

export interface HealthServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * /healthz: the process is alive (for a liveness probe: never depends on Postgres or Redis, or an outage would
 * restart every replica for nothing). /readyz: Postgres and Redis answer and no job keeps failing (a worker whose
 * jobs all fail is up but not doing its work). /metrics: Prometheus text.
 */
export async function startHealthServer(opts: {
  port: number;
  host?: string;
  db: Db;
  redis: Redis;
  metrics: Metrics;
  log: Logger;
  /** One line per job that keeps failing or stopped completing (src/health/jobs.ts): /readyz names them. */
  failingJobs?: () => readonly string[];
}): Promise<HealthServer> {
  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
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
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz, /metrics\n');
      }
    } catch (err) {
      opts.log.warn({ err, path }, 'health endpoint failed');
      res.writeHead(500, { 'content-type': 'text/plain' }).end('error\n');
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
