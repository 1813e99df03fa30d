import { isIP } from 'node:net';
import { Cluster, Redis } from 'ioredis';
import type { Secret } from '../config/secret.ts';
import type { Logger } from '../log.ts';

/**
 * What keywarden talks to Redis through: one node's connection, or ioredis's cluster client when REDIS_URL names a
 * node of a Redis Cluster. BullMQ, the replay guard, the schedule reconciler and /readyz take either.
 */
export type RedisConnection = Redis | Cluster;

/** Reconnect with a capped backoff forever: the worker must resume by itself when Redis returns. */
const retryStrategy = (times: number) => Math.min(200 * 2 ** Math.min(times, 5), 5_000);

/**
 * One ioredis connection. `maxRetriesPerRequest: null` is what BullMQ workers need: a command waits for Redis to
 * come back instead of failing the job, so a Redis restart is a pause, not a crash.
 */
function createRedis(url: Secret | string, name = 'keywarden'): Redis {
  const redis = new Redis(typeof url === 'string' ? url : url.reveal(), {
    maxRetriesPerRequest: null,
    connectionName: name,
    retryStrategy,
  });
  // Without a listener, ioredis prints connection errors to stderr and may crash the process on some paths;
  // reconnection is automatic and /readyz reports the outage.
  redis.on('error', () => {});
  return redis;
}

/**
 * The hash tag Redis Cluster hashes a key beginning with `prefix` by: what lies between the prefix's first `{` and
 * the first `}` after it, when that is not empty (Redis's own rule); null when the prefix has none, and each key
 * is then hashed whole.
 */
export function hashTagOf(prefix: string): string | null {
  const open = prefix.indexOf('{');
  if (open === -1) return null;
  const close = prefix.indexOf('}', open + 1);
  return close > open + 1 ? prefix.slice(open + 1, close) : null;
}

/**
 * Whether `err` is Redis refusing the connection's login rather than a command: a wrong password or user, a user
 * switched off (WRONGPASS), a server that wants a password it was not given (NOAUTH), or the login command itself
 * refused by an ACL (NOPERM on HELLO or AUTH). A NOPERM on any other command (an ACL without INFO or CONFIG) is that command's refusal alone.
 */
function isLoginRefused(err: unknown): boolean {
  const { message, command } = err as { message?: unknown; command?: { name?: unknown } };
  if (typeof message !== 'string') return false;
  const login = command?.name === 'hello' || command?.name === 'auth';
  return /^(WRONGPASS|NOAUTH)\b/.test(message) || (login && /^NOPERM\b/.test(message));
}

/** An error's message alone: ioredis's errors carry the failed command's arguments, a login's password among them. */
function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The connection for REDIS_URL, chosen by asking the node it names (`INFO cluster`): a node with cluster mode on
 * gets ioredis's cluster client, seeded with it (the URL's user, password and TLS carried to every node), which
 * follows MOVED redirects and slot changes; any other gets the single-node connection it already is. The URL stays
 * the one setting, and a managed Redis whose proxy routes for the client (cluster mode off on the wire) keeps the
 * plain connection it needs. The worker waits for the answer as for every command (started before Redis, it waits);
 * a CLI command that may not need Redis at all (`keys reactivate`) gives up after `answerWithinMs` and keeps the
 * single-node connection, as it always had (said in the log: on a cluster, its commands then meet MOVED). Throws,
 * before any key is written, when Redis refuses the login (a worker that cannot log in would wait forever), and on a
 * cluster when `prefix` has no hash tag: BullMQ's scripts would fail there with CROSSSLOT on every call.
 */
export async function openRedis(
  url: Secret | string,
  opts: { prefix: string; log: Logger; name?: string; answerWithinMs?: number },
): Promise<RedisConnection> {
  const { prefix, log, name = 'keywarden' } = opts;
  const node = createRedis(url, name);
  let cluster: boolean;
  try {
    const info = node.info('cluster');
    const answer =
      opts.answerWithinMs === undefined
        ? await info
        : await Promise.race([info, new Promise<null>((r) => setTimeout(r, opts.answerWithinMs, null).unref())]);
    if (answer === null) {
      log.warn(
        { redis: `${node.options.host}:${node.options.port}`, waitedMs: opts.answerWithinMs },
        'Redis did not answer INFO in time, so cluster mode could not be checked: using a single-node connection ' +
          '(on a Redis Cluster, its commands will fail with MOVED or CROSSSLOT)',
      );
      return node;
    }
    cluster = /^cluster_enabled:1\s*$/m.test(answer);
  } catch (err) {
    if (isLoginRefused(err)) {
      node.disconnect();
      const { host, port, username } = node.options;
      throw new Error(
        `Redis at ${host}:${port} refused the login of user "${username || 'default'}": authentication failed ` +
          `(${reasonOf(err)}). Check REDIS_URL's user and password, and that this ACL user is on`,
      );
    }
    // a server (or an ACL) that refuses INFO: a cluster would answer MOVED to the first command, and say so
    log.warn(
      { reason: reasonOf(err) },
      'could not ask Redis whether it is a cluster (INFO refused): using a single-node connection',
    );
    return node;
  }
  if (!cluster) return node;
  node.disconnect();
  const { host, port, family, username, password, tls, db } = node.options;
  if (hashTagOf(prefix) === null) {
    throw new Error(
      `--prefix "${prefix}": REDIS_URL names a Redis Cluster node (${host}:${port}), and on a cluster every key of ` +
        'a queue must hash to one slot: put a {hash tag} in the prefix (the default is {keywarden})',
    );
  }
  if (db) {
    throw new Error(`REDIS_URL selects database ${db}, and a Redis Cluster has only database 0: drop the /${db}`);
  }
  // Over TLS the certificate names the URL's host, while the cluster client would connect by IP (it resolves the
  // seed, and nodes announce IPs): keep the name as given, and check every node's certificate against the URL's host.
  const client = new Cluster([{ host, port }], {
    redisOptions: {
      maxRetriesPerRequest: null,
      connectionName: name,
      family,
      username,
      password,
      tls: tls && host && isIP(host) === 0 ? { ...tls, servername: host } : tls,
    },
    dnsLookup: (address, callback) => callback(null, address),
    clusterRetryStrategy: retryStrategy,
  });
  client.on('error', () => {});
  return client;
}

/**
 * BullMQ keeps its jobs and schedules in Redis keys; an eviction policy other than noeviction lets Redis drop them
 * under memory pressure, and jobs and schedules then vanish silently. Managed Redis may forbid CONFIG: say so. On a
 * cluster each master has its own setting: each is read.
 */
export async function checkRedisSettings(redis: RedisConnection, log: Logger): Promise<void> {
  // on a cluster the masters are known once the slots are, which the first command waits for
  await redis.ping().catch(() => {});
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    const at = `${node.options.host}:${node.options.port}`;
    try {
      const reply = (await node.config('GET', 'maxmemory-policy')) as string[];
      const policy = reply[1];
      if (policy && policy !== 'noeviction') {
        log.warn(
          { maxmemoryPolicy: policy, ...(nodes.length > 1 ? { node: at } : {}) },
          `Redis maxmemory-policy is "${policy}": Redis may evict queued jobs and schedules under memory pressure. Set maxmemory-policy noeviction.`,
        );
      }
    } catch (err) {
      log.warn(
        { reason: reasonOf(err) },
        'could not read Redis maxmemory-policy (CONFIG GET refused); make sure it is noeviction',
      );
    }
  }
}
