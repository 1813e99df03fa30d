import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

/**
 * Real Postgres and Redis servers for the tests and the demo, found in this order: URLs given by the caller,
 * a container runtime (testcontainers), local binaries started in a temp dir. Never an in-memory stand-in.
 */

export interface LocalServer {
  url: string;
  /** How it was provided, for messages: "env", "container", "local binary". */
  via: string;
  /** Stops the server and removes what it created. */
  stop(): Promise<void>;
  /** Kills the process hard (SIGKILL) without cleaning up: for fault drills. Local binaries only. */
  kill?(): Promise<void>;
  /** Starts it again on the same port and data after `kill`. Local binaries only. */
  restart?(): Promise<void>;
}

export class MissingServiceError extends Error {}

const execFileAsync = promisify(execFile);

const isRoot = process.getuid?.() === 0;

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function findBinary(name: string, extraDirs: string[] = []): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...extraDirs]) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

function postgresBinDirs(): string[] {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(root, v, 'bin'));
}

async function waitForPort(port: number, proc: ChildProcess, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null)
      throw new Error(`${what} exited with code ${proc.exitCode} before accepting connections`);
    const open = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1');
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not accept connections on port ${port} within ${timeoutMs / 1000}s`);
}

/**
 * The port opens before recovery ends: until then a connection gets 57P03 "the database system is starting up".
 * A server handed out is one that answers queries.
 */
async function waitForQueries(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`postgres did not answer queries within ${timeoutMs / 1000}s: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await client.end().catch(() => {});
    }
  }
}

/**
 * Postgres refuses to run as root: as root, its processes run as the postgres user. Spawned with uid/gid rather
 * than through runuser, so our signals reach the postmaster itself and a stop really stops it.
 */
function postgresUser(): { uid?: number; gid?: number } {
  return isRoot ? { uid: uidOf('postgres'), gid: gidOf('postgres') } : {};
}

function stopProcess(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill(signal);
  });
}

/**
 * `durableCommits`: a commit is acknowledged only once its WAL is written, as in production. Off by default (faster),
 * which is fine until the server is SIGKILLed: then commits already acknowledged can be lost, which a drill that
 * kills Postgres must not mistake for a bug of keywarden's.
 */
export async function startLocalPostgres(opts: { durableCommits?: boolean } = {}): Promise<LocalServer> {
  const dirs = postgresBinDirs();
  const initdb = findBinary('initdb', dirs);
  const postgres = findBinary('postgres', dirs);
  if (!initdb || !postgres) {
    throw new MissingServiceError(
      'no Postgres found: set TEST_DATABASE_URL (tests) or DATABASE_URL (demo), run a container runtime, or install the server binaries (Debian: apt-get install postgresql)',
    );
  }
  const base = mkdtempSync(join(tmpdir(), 'keywarden-pg-'));
  const data = join(base, 'data');
  if (isRoot) chownSync(base, postgresUser().uid!, postgresUser().gid!);
  execFileSync(initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], {
    stdio: 'pipe',
    ...postgresUser(),
  });
  const port = await freePort();
  let proc: ChildProcess;
  const start = async () => {
    const args = [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      base,
      '-c',
      'listen_addresses=127.0.0.1',
      // a throwaway server: durability settings off for speed, never for data anyone keeps
      '-c',
      'fsync=off',
      '-c',
      `synchronous_commit=${opts.durableCommits ? 'on' : 'off'}`,
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=200',
    ];
    proc = spawn(postgres, args, { stdio: 'ignore', ...postgresUser() });
    await waitForPort(port, proc, 'postgres');
    await waitForQueries(`postgres://postgres@127.0.0.1:${port}/postgres`);
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    via: `local binary (${postgres})`,
    stop: async () => {
      await stopProcess(proc, 'SIGINT'); // fast shutdown
      rmSync(base, { recursive: true, force: true });
    },
    kill: async () => stopProcess(proc, 'SIGKILL'),
    restart: async () => {
      await stopProcess(proc, 'SIGKILL');
      // a SIGKILLed postmaster leaves its children to notice and exit; wait for the lock file to free
      for (let i = 0; i < 100 && existsSync(join(data, 'postmaster.pid')); i++) {
        try {
          execFileSync('pgrep', ['-f', `-D ${data}`], { stdio: 'pipe' });
          await new Promise((r) => setTimeout(r, 100));
        } catch {
          rmSync(join(data, 'postmaster.pid'), { force: true });
        }
      }
      await start();
    },
  };
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user]).toString().trim());
}

function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user]).toString().trim());
}

export async function startLocalRedis(): Promise<LocalServer> {
  const redis = findBinary('redis-server', ['/usr/bin', '/usr/local/bin']);
  if (!redis) {
    throw new MissingServiceError(
      'no Redis found: set TEST_REDIS_URL (tests) or REDIS_URL (demo), run a container runtime, or install the server (Debian: apt-get install redis-server)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'keywarden-redis-'));
  const port = await freePort();
  let proc: ChildProcess;
  const start = async () => {
    proc = spawn(
      redis,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        // AOF on, as in production: the fault drills kill and restart Redis and expect schedules to survive
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    );
    await waitForPort(port, proc, 'redis-server');
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    via: `local binary (${redis})`,
    stop: async () => {
      await stopProcess(proc, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    kill: async () => stopProcess(proc, 'SIGKILL'),
    restart: async () => {
      await stopProcess(proc, 'SIGKILL');
      await start();
    },
  };
}

/** A local Redis Cluster: `url` names its first node (what REDIS_URL would), `nodes` every master's URL. */
export interface LocalRedisCluster extends LocalServer {
  nodes: string[];
}

/**
 * A Redis Cluster of `masters` local redis-server processes (no replicas), its slots spread over them by
 * `redis-cli --cluster create`, handed out once every node reports cluster_state:ok. With `password`, every node
 * requires it (as a managed cluster's AUTH does) and the URLs carry it. Throwaway: no persistence.
 */
export async function startLocalRedisCluster(
  opts: { masters?: number; password?: string } = {},
): Promise<LocalRedisCluster> {
  const server = findBinary('redis-server', ['/usr/bin', '/usr/local/bin']);
  const cli = findBinary('redis-cli', ['/usr/bin', '/usr/local/bin']);
  if (!server || !cli) {
    throw new MissingServiceError(
      'no redis-server and redis-cli found for a local Redis Cluster: install them (Debian: apt-get install redis-server)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'keywarden-redis-cluster-'));
  const ports: number[] = [];
  for (let i = 0; i < (opts.masters ?? 3); i++) ports.push(await freePort());
  const auth = opts.password ? ['--requirepass', opts.password, '--masterauth', opts.password] : [];
  const procs = ports.map((port) =>
    spawn(
      server,
      [
        ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
        ...['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`],
        ...['--appendonly', 'no', '--save', '', '--maxmemory-policy', 'noeviction', ...auth],
      ],
      { stdio: 'ignore' },
    ),
  );
  const stop = async () => {
    await Promise.all(procs.map((p) => stopProcess(p, 'SIGTERM')));
    rmSync(dir, { recursive: true, force: true });
  };
  // the password reaches redis-cli by its environment, never on a command line
  const env = { ...process.env, ...(opts.password ? { REDISCLI_AUTH: opts.password } : {}) };
  try {
    await Promise.all(ports.map((port, i) => waitForPort(port, procs[i]!, 'redis-server (cluster node)')));
    const addresses = ports.map((port) => `127.0.0.1:${port}`);
    await execFileAsync(cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], {
      env,
    });
    const deadline = Date.now() + 30_000;
    for (const port of ports) {
      for (;;) {
        const { stdout } = await execFileAsync(cli, ['-p', String(port), 'cluster', 'info'], { env });
        if (stdout.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`Redis Cluster node ${port} not cluster_state:ok within 30s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const userinfo = opts.password ? `:${encodeURIComponent(opts.password)}@` : '';
  const nodes = ports.map((port) => `redis://${userinfo}127.0.0.1:${port}`);
  return { url: nodes[0]!, nodes, via: `local binaries (${server}, ${ports.length} masters)`, stop };
}

/** Postgres and Redis through testcontainers, when a container runtime answers; null when there is none. */
export async function startContainers(): Promise<{ postgres: LocalServer; redis: LocalServer } | null> {
  let tc: typeof import('testcontainers');
  try {
    tc = await import('testcontainers');
  } catch {
    return null; // testcontainers is a dev dependency; a production install has no container path
  }
  try {
    await Promise.race([
      tc.getContainerRuntimeClient(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 5_000)),
    ]);
  } catch {
    return null;
  }
  const pg = await new tc.GenericContainer('postgres:16-alpine')
    .withEnvironment({ POSTGRES_PASSWORD: 'keywarden', POSTGRES_HOST_AUTH_METHOD: 'trust' })
    .withExposedPorts(5432)
    .withWaitStrategy(tc.Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  const redis = await new tc.GenericContainer('redis:7-alpine')
    .withCommand(['redis-server', '--appendonly', 'yes', '--maxmemory-policy', 'noeviction'])
    .withExposedPorts(6379)
    .start();
  return {
    postgres: {
      url: `postgres://postgres:keywarden@${pg.getHost()}:${pg.getMappedPort(5432)}/postgres`,
      via: 'container',
      stop: async () => {
        await pg.stop();
      },
    },
    redis: {
      url: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
      via: 'container',
      stop: async () => {
        await redis.stop();
      },
    },
  };
}

export interface Services {
  postgres: LocalServer;
  redis: LocalServer;
}

/**
 * Provides both servers: given URLs first, then containers, then local binaries. Each missing piece is named
 * in one error, with what to install.
 */
export async function provideServices(given: { databaseUrl?: string; redisUrl?: string }): Promise<Services> {
  const external = (url: string): LocalServer => ({ url, via: 'env', stop: async () => {} });
  if (given.databaseUrl && given.redisUrl) {
    return { postgres: external(given.databaseUrl), redis: external(given.redisUrl) };
  }
  if (!process.env.KEYWARDEN_NO_CONTAINERS) {
    const containers = await startContainers();
    if (containers) {
      if (given.databaseUrl) await containers.postgres.stop();
      if (given.redisUrl) await containers.redis.stop();
      return {
        postgres: given.databaseUrl ? external(given.databaseUrl) : containers.postgres,
        redis: given.redisUrl ? external(given.redisUrl) : containers.redis,
      };
    }
  }
  const problems: string[] = [];
  let postgres: LocalServer | null = null;
  let redis: LocalServer | null = null;
  try {
    postgres = given.databaseUrl ? external(given.databaseUrl) : await startLocalPostgres();
  } catch (err) {
    problems.push((err as Error).message);
  }
  try {
    redis = given.redisUrl ? external(given.redisUrl) : await startLocalRedis();
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (!postgres || !redis) {
    await postgres?.stop();
    await redis?.stop();
    throw new MissingServiceError(problems.join('\n'));
  }
  return { postgres, redis };
}

/**
 * A login role in `keywarden_runtime` (migrations/007_runtime_role.ts) on the server of `ownerUrl`, and the URL to
 * connect as it: the worker's role in the tests and the demo, so they run with the grants a deployment has. Run
 * after the migrations (they create the group role). Needs CREATEROLE on `ownerUrl`'s role; the password is only a
 * local test and demo role's.
 */
export async function ensureRuntimeLogin(ownerUrl: string, user = 'keywarden_worker'): Promise<string> {
  const password = 'keywarden-local-runtime';
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    await client.query(`
      DO $$
      BEGIN
        CREATE ROLE ${user} LOGIN PASSWORD '${password}' IN ROLE keywarden_runtime;
      EXCEPTION WHEN duplicate_object THEN NULL;
      END
      $$`);
  } finally {
    await client.end();
  }
  const url = new URL(ownerUrl);
  url.username = user;
  url.password = password;
  return url.toString();
}
