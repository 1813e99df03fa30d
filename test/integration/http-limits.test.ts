import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { startHealthServer } from '../../src/http/server.ts';
import { captureLog } from '../support/context.ts';
import { createTestDatabase, redisUrl, type TestDatabase } from '../support/db.ts';
import { waitUntil } from '../support/wait.ts';

/** The health port faces whoever can reach it: idle connections must neither pile up nor shut out the probe. */

let t: TestDatabase;
let redis: Redis;

beforeAll(async () => {
  t = await createTestDatabase();
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  redis.disconnect();
  await t.drop();
});

/** A TCP connection that says nothing, and whether the server has closed it. */
async function idleSocket(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  let closed = false;
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.resume(); // reading, so the server's FIN is seen
  socket.on('close', () => {
    closed = true;
  });
  await new Promise<void>((resolve) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => resolve());
  });
  return { socket, closed: () => closed };
}

async function healthz(port: number): Promise<number | string> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) })).status;
  } catch (err) {
    return String((err as Error).cause ?? err);
  }
}

describe('HTTP port limits', () => {
  const start = (limits: Parameters<typeof startHealthServer>[0]['limits']) =>
    startHealthServer({
      port: 0,
      host: '127.0.0.1',
      db: t.db,
      redis,
      metrics: createMetrics(createRepos(t.db)),
      log: captureLog().log,
      limits,
    });
  const openConnections = (server: Server) =>
    new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  it('more idle connections than the cap: the extra ones are refused, the cap holds, and /healthz still answers', async () => {
    // timeouts far beyond the test: only the cap can make room
    const server = await start({
      maxConnections: 20,
      idleTimeoutMs: 600_000,
      headersTimeoutMs: 600_000,
      requestTimeoutMs: 600_000,
    });
    const sockets: Array<{ socket: Socket; closed: () => boolean }> = [];
    try {
      for (let i = 0; i < 60; i++) sockets.push(await idleSocket(server.port));
      await waitUntil('the extra connections refused', () => sockets.filter((s) => s.closed()).length >= 40, 10_000);
      expect(await openConnections(server.server)).toBeLessThanOrEqual(20);
      // the probe gets in although idle connections filled the cap (its first try may be the one refused)
      await waitUntil('/healthz answering', async () => (await healthz(server.port)) === 200, 10_000);
    } finally {
      for (const s of sockets) s.socket.destroy();
      await server.close();
    }
  });

  it('connections that stay silent, or idle after a request, are closed after the timeout', async () => {
    const server = await start({
      maxConnections: 100,
      idleTimeoutMs: 1_500,
      headersTimeoutMs: 1_000,
      requestTimeoutMs: 1_000,
    });
    const sockets: Array<{ socket: Socket; closed: () => boolean }> = [];
    try {
      for (let i = 0; i < 10; i++) sockets.push(await idleSocket(server.port));
      // one keep-alive connection that made a request and then went quiet
      const keptAlive = await idleSocket(server.port);
      keptAlive.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
      sockets.push(keptAlive);
      await waitUntil('every idle connection closed', () => sockets.every((s) => s.closed()), 10_000);
      expect(await openConnections(server.server)).toBe(0);
      expect(await healthz(server.port)).toBe(200);
    } finally {
      for (const s of sockets) s.socket.destroy();
      await server.close();
    }
  });

  it('KEYWARDEN_HTTP_HOST chooses the bind address; the default stays every interface', () => {
    const base = { KEYWARDEN_CONFIG: 'examples/keywarden.yaml' };
    expect(loadConfig({ env: base }).env.httpHost).toBe('0.0.0.0');
    expect(loadConfig({ env: { ...base, KEYWARDEN_HTTP_HOST: '127.0.0.1' } }).env.httpHost).toBe('127.0.0.1');
    expect(() => loadConfig({ env: { ...base, KEYWARDEN_HTTP_HOST: 'not a host!' } })).toThrow(
      /KEYWARDEN_HTTP_HOST: "not a host!" is not an IP address or host name/,
    );
  });
});
