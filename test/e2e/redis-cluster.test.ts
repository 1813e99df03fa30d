import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type LocalRedisCluster, startLocalRedisCluster } from '../../src/dev/services.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { QUEUE_NAMES } from '../../src/queue/queues.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { type Spawned, spawnNode } from '../support/processes.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { expectUsageEqualsTruth } from '../support/usage-truth.ts';
import { waitUntil } from '../support/wait.ts';
import { type WorkerProcess, workerProcess } from '../support/worker-process.ts';

/**
 * Redis with cluster mode on (one node holding every slot): Redis refuses there, with CROSSSLOT, any command or
 * script whose keys fall in different slots, as BullMQ's scripts do unless every key of a queue shares a hash tag.
 * The worker on the `{…}` prefix runs its ticks; a prefix without braces is refused.
 */

let t: TestDatabase;
let dir: string;
let redisProc: ChildProcess;
let redisUrl: string;
const running: Spawned[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  await sql`CREATE TABLE test_ticks (job_id text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`.execute(
    t.db,
  );
  dir = mkdtempSync(join(tmpdir(), 'kw-redis-cluster-'));
  const port = await freePort();
  redisProc = spawn(
    'redis-server',
    [
      ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--cluster-enabled', 'yes'],
      // a node that never met another does not know its own address (CLUSTER SLOTS answers an empty one), and
      // ioredis's cluster client, which the worker opens on a cluster, skips a node without one
      ...['--cluster-announce-ip', '127.0.0.1'],
    ],
    { stdio: 'ignore' },
  );
  redisUrl = `redis://127.0.0.1:${port}`;
  // reconnects every 100 ms until the server listens; a command waits for the connection meanwhile
  const admin = new Redis(redisUrl, { retryStrategy: () => 100 });
  admin.on('error', () => {});
  await waitUntil('redis-server in cluster mode', async () => (await admin.ping()) === 'PONG', 10_000);
  await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
  await waitUntil('cluster_state:ok', async () =>
    String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok'),
  );
  admin.disconnect();
});
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  redisProc?.kill('SIGKILL');
  await t?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Redis Cluster', () => {
  it('the worker on a {hash-tagged} prefix runs its scheduled ticks', async () => {
    const w = spawnNode('test/support/test-worker.ts', [], {
      DATABASE_URL: t.runtimeUrl,
      REDIS_URL: redisUrl,
      ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-test-runtime-0000',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      KW_PREFIX: '{kwtest-cluster}',
      KW_TICK_CRON: '* * * * * *',
    });
    running.push(w);
    await w.waitForOutput(/worker started/);
    await waitUntil('three ticks run', async () => {
      const r = await sql<{ n: string }>`SELECT count(*) AS n FROM test_ticks`.execute(t.db);
      return Number(r.rows[0]!.n) >= 3;
    });
    w.proc.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    expect(w.output()).not.toMatch(/CROSSSLOT/);
  }, 60_000);

  it('a prefix without braces is refused there (what the hash tag prevents)', async () => {
    const q = new Queue('maintenance', { connection: { url: redisUrl }, prefix: 'kwtest-plain' });
    await expect(q.add('tick', {})).rejects.toThrow(/CROSSSLOT/);
    await q.close();
  });
});

/**
 * `rediss://` on a cluster: the certificate names a host (here `localhost`, no IP), while the cluster client learns
 * its nodes as IPs (the seed resolved, the nodes' own announcements). The worker checks every node's certificate
 * against REDIS_URL's host, so it connects; checked against the IPs, every TLS handshake failed and it never started.
 */
describe('a Redis Cluster over TLS', () => {
  let tlsDir: string;
  let tlsProc: ChildProcess;
  let port: number;

  beforeAll(async () => {
    tlsDir = mkdtempSync(join(tmpdir(), 'kw-redis-tls-'));
    const openssl = (...args: string[]) => promisify(execFile)('openssl', args, { cwd: tlsDir });
    // a CA of the test's own, and a certificate from it that names localhost alone
    await openssl(
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt'],
      ...['-days', '1', '-subj', '/CN=kwtest-ca'],
    );
    writeFileSync(join(tlsDir, 'ext'), 'subjectAltName=DNS:localhost\n');
    await openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'node.key',
      '-out',
      'node.csr',
      '-subj',
      '/CN=localhost',
    );
    await openssl(
      ...['x509', '-req', '-in', 'node.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial'],
      ...['-out', 'node.crt', '-days', '1', '-extfile', 'ext'],
    );
    port = await freePort();
    tlsProc = spawn(
      'redis-server',
      [
        ...['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--dir', tlsDir, '--save', ''],
        ...['--tls-cert-file', 'node.crt', '--tls-key-file', 'node.key', '--tls-ca-cert-file', 'ca.crt'],
        ...['--tls-auth-clients', 'no', '--tls-cluster', 'yes'],
        ...['--cluster-enabled', 'yes', '--cluster-announce-ip', '127.0.0.1'],
      ],
      { stdio: 'ignore', cwd: tlsDir },
    );
    const admin = new Redis({
      port,
      host: '127.0.0.1',
      tls: { ca: readFileSync(join(tlsDir, 'ca.crt')), servername: 'localhost' },
      retryStrategy: () => 100,
    });
    admin.on('error', () => {});
    await waitUntil('redis-server over TLS', async () => (await admin.ping()) === 'PONG', 10_000);
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    await waitUntil('cluster_state:ok', async () =>
      String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok'),
    );
    admin.disconnect();
  });
  afterAll(() => {
    tlsProc?.kill('SIGKILL');
    if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
  });

  it('the worker on rediss:// checks each node against the URL host, and runs its ticks', async () => {
    const w = spawnNode('test/support/test-worker.ts', [], {
      DATABASE_URL: t.runtimeUrl,
      REDIS_URL: `rediss://localhost:${port}`,
      NODE_EXTRA_CA_CERTS: join(tlsDir, 'ca.crt'),
      ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-test-runtime-0000',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      KW_PREFIX: '{kwtest-tls}',
      KW_TICK_CRON: '* * * * * *',
    });
    running.push(w);
    await w.waitForOutput(/worker started/);
    await waitUntil('three ticks run over TLS', async () => {
      const r = await sql<{ n: string }>`SELECT count(*) AS n FROM test_ticks WHERE pid = ${w.proc.pid!}`.execute(t.db);
      return Number(r.rows[0]!.n) >= 3;
    });
    w.proc.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 60_000);
});

/**
 * A Redis Cluster of three masters, each holding a third of the slots, behind a password: REDIS_URL names one node,
 * and the worker opens ioredis's cluster client with it. The real worker polls usage into Postgres (equal to the
 * emulator's truth), keeps one scheduler per job across a restart, answers /readyz and guards Slack presses against
 * replay; every key it writes carries the prefix's hash tag, so all of them sit in one slot on one master.
 */
describe('a three-shard Redis Cluster', () => {
  const PREFIX = '{kwtest-shards}';
  const PASSWORD = 'cluster-pass#not-a-secret-4711';
  const SIGNING_SECRET = 'e2e-cluster-signing-secret-0123456789';
  /** A log line may print the password raw, or inside a URL, where `#` reads `%23`: neither may appear. */
  const expectNoPassword = (output: string, password = PASSWORD) => {
    expect(output).not.toContain(password);
    expect(output).not.toContain(encodeURIComponent(password));
  };
  const DAY = 86_400_000;
  let cluster: LocalRedisCluster;
  let db: TestDatabase;
  let emulator: Emulator;
  let slack: SlackServer;
  let workerDir: string;
  let worker: WorkerProcess;
  let httpPort: number;
  let env: Record<string, string>;

  beforeAll(async () => {
    [cluster, db, emulator, slack] = await Promise.all([
      startLocalRedisCluster({ masters: 3, password: PASSWORD }),
      createTestDatabase(),
      startEmulator({ scenario: loadScenario('quiet'), freshnessDelayMinutes: 0 }),
      startSlackServer(),
    ]);
    workerDir = mkdtempSync(join(tmpdir(), 'kw-redis-shards-'));
    httpPort = await freePort();
    env = {
      DATABASE_URL: db.runtimeUrl,
      REDIS_URL: cluster.url,
      ANTHROPIC_ADMIN_KEY: emulator.state.scenario.admin_keys[0]!,
      ANTHROPIC_BASE_URL: emulator.url,
      SLACK_BOT_TOKEN: slack.token,
      SLACK_API_URL: slack.url,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      KEYWARDEN_HTTP_PORT: String(httpPort),
      KEYWARDEN_HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    };
    worker = workerProcess({
      dir: workerDir,
      prefix: PREFIX,
      policy: JSON.stringify({
        slack_actions: { enabled: true },
        routes: [{ match: { kind: 'usage.*' }, slack: ['#ai-alerts'] }],
        schedules: { 'poll-usage': '*/5 * * * * *' },
      }),
      env,
    });
  }, 60_000);
  afterAll(async () => {
    await worker?.kill9();
    await Promise.all([cluster?.stop(), db?.drop(), emulator?.close(), slack?.close()]);
    if (workerDir) rmSync(workerDir, { recursive: true, force: true });
  });

  /** Each master's keys (SCAN on each: a node lists only the keys of its own slots), by the master's URL. */
  async function keysByMaster(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const url of cluster.nodes) {
      const node = new Redis(url);
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'COUNT', 1000);
        keys.push(...batch);
        cursor = next;
      } while (cursor !== '0');
      out.set(url, keys);
      node.disconnect();
    }
    return out;
  }

  /** The scheduler ids in Redis, each as often as BullMQ lists it, over every queue. */
  async function schedulerIds(): Promise<string[]> {
    const client = new Cluster([cluster.url], { redisOptions: { password: PASSWORD } });
    const ids: string[] = [];
    for (const name of QUEUE_NAMES) {
      const queue = new Queue(name, { connection: client, prefix: PREFIX });
      ids.push(...(await queue.getJobSchedulers(0, -1)).map((s) => s.key));
      await queue.close();
    }
    client.disconnect();
    return ids.sort();
  }

  it('the worker polls usage equal to the truth, schedules each job once, is ready, and guards presses in the prefix', async () => {
    const now = new Date();
    const backfillStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1) - 35 * DAY);
    // one master of three evicts: the start-up check reads each master's own setting, and names that one
    const lru = new Redis(cluster.nodes[2]!);
    await lru.config('SET', 'maxmemory-policy', 'allkeys-lru');
    lru.disconnect();
    await worker.start();
    const lruPort = cluster.nodes[2]!.split(':').pop();
    expect(worker.output()).toMatch(
      new RegExp(
        `"maxmemoryPolicy":"allkeys-lru","node":"127\\.0\\.0\\.1:${lruPort}".*Set maxmemory-policy noeviction`,
      ),
    );
    expect(worker.output().match(/Redis maxmemory-policy is/g)).toHaveLength(1);
    const started = JSON.parse(
      worker
        .output()
        .split('\n')
        .find((l) => l.includes('"worker started"'))!,
    );
    const wanted = (started.schedules as string[]).map((s) => s.split(' ')[0]!).sort();
    expect(wanted).toContain('poll-usage');

    await worker.current.waitForOutput(/"msg":"usage polled"/, 60_000);
    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    expect(ready.status).toBe(200);

    // a signed request handled once; the same request again (same body, same timestamp: the same signature) is a
    // replay
    const body = new URLSearchParams({
      payload: JSON.stringify(slack.blockActions({ actionId: 'ack', value: 'no-such-button', userId: 'U0ANA' })),
    }).toString();
    const signed = { timestamp: Math.floor(Date.now() / 1000), body };
    const endpoint = `http://127.0.0.1:${httpPort}/slack/actions`;
    const press = { actionId: 'ack', value: 'no-such-button', userId: 'U0ANA' };
    const first = await slack.pressOverHttp(endpoint, SIGNING_SECRET, press, signed);
    // no button has this value, which is found out only after the signature was checked and recorded
    expect(first.text).not.toMatch(/replayed/);
    expect(first.status).not.toBe(401);
    const replay = await slack.pressOverHttp(endpoint, SIGNING_SECRET, press, signed);
    expect(replay.status).toBe(401);
    expect(replay.text).toMatch(/replayed request/);

    // a restart reconciles onto the schedulers it finds: still one per job
    await worker.stop();
    expect(worker.current.proc.exitCode).toBe(0);
    expect(await schedulerIds()).toEqual(wanted);
    await worker.start();
    await worker.current.waitForOutput(/"msg":"usage polled"/, 60_000);
    await worker.stop();
    expect(worker.current.proc.exitCode).toBe(0);
    expect(await schedulerIds()).toEqual(wanted);

    await expectUsageEqualsTruth(db.db, emulator, backfillStart);

    // every key on one master, in the hash tag's one slot; the replay guard's beside BullMQ's
    const byMaster = await keysByMaster();
    const holding = [...byMaster].filter(([, keys]) => keys.length > 0);
    expect(holding).toHaveLength(1);
    const keys = holding[0]![1];
    expect(keys.every((k) => k.startsWith(`${PREFIX}:`))).toBe(true);
    expect(keys.filter((k) => k.startsWith(`${PREFIX}:keywarden:slack-press:signature:`))).toHaveLength(1);
    expect(keys.some((k) => k.startsWith(`${PREFIX}:ingest:`))).toBe(true);
    const probe = new Redis(holding[0]![0]);
    const slots = new Set(await Promise.all(keys.map((k) => probe.call('CLUSTER', 'KEYSLOT', k))));
    expect([...slots]).toEqual([await probe.call('CLUSTER', 'KEYSLOT', 'kwtest-shards')]);
    probe.disconnect();

    expectNoPassword(worker.output());
    expect(worker.output()).not.toMatch(/CROSSSLOT|MOVED/);
  }, 180_000);

  it('a prefix without a hash tag is refused at start, with the reason, before any key is written', async () => {
    const before = [...(await keysByMaster()).values()].flat().length;
    const w = spawnNode('src/cli/index.ts', ['worker', '--prefix', 'kwtest-plain'], {
      ...env,
      KEYWARDEN_CONFIG: join(workerDir, 'keywarden.yaml'),
      KEYWARDEN_HTTP_PORT: String(await freePort()),
    });
    const { code } = await w.exited;
    expect(code).not.toBe(0);
    expect(w.output()).toMatch(
      /--prefix "kwtest-plain": REDIS_URL names a Redis Cluster node \(127\.0\.0\.1:\d+\), and on a cluster every key of a queue must hash to one slot: put a \{hash tag\} in the prefix/,
    );
    expectNoPassword(w.output());
    const after = [...(await keysByMaster()).values()].flat();
    expect(after).toHaveLength(before);
    expect(after.some((k) => k.includes('kwtest-plain'))).toBe(false);
  }, 30_000);

  it('a database other than 0 in REDIS_URL is refused at start on a cluster (it has only 0)', async () => {
    const w = spawnNode('src/cli/index.ts', ['worker', '--prefix', PREFIX], {
      ...env,
      REDIS_URL: `${cluster.url}/2`,
      KEYWARDEN_CONFIG: join(workerDir, 'keywarden.yaml'),
      KEYWARDEN_HTTP_PORT: String(await freePort()),
    });
    expect((await w.exited).code).not.toBe(0);
    expect(w.output()).toMatch(/REDIS_URL selects database 2, and a Redis Cluster has only database 0: drop the \/2/);
    expectNoPassword(w.output());
  }, 30_000);

  it('a wrong password in REDIS_URL stops the start, saying the login failed, and the password reaches no log', async () => {
    // URL-safe, so a URL printed whole would show it as it is
    const wrong = 'wrong-pass-0123456789';
    const url = new URL(cluster.url);
    url.password = wrong;
    const w = spawnNode('src/cli/index.ts', ['worker', '--prefix', PREFIX], {
      ...env,
      REDIS_URL: url.toString(),
      KEYWARDEN_CONFIG: join(workerDir, 'keywarden.yaml'),
      KEYWARDEN_HTTP_PORT: String(await freePort()),
    });
    expect((await w.exited).code).not.toBe(0);
    expect(w.output()).toMatch(/Redis at 127\.0\.0\.1:\d+ refused the login of user "default": authentication failed/);
    expectNoPassword(w.output(), wrong);
    expectNoPassword(w.output());
  }, 30_000);
});
