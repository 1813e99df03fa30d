import { createHash, randomUUID } from 'node:crypto';
import { DEFAULT_ORGANIZATION_ID } from '../config/organizations.ts';
import type { Policy } from '../config/policy.ts';
import type { Logger } from '../log.ts';
import type { RedisConnection } from './connection.ts';
import type { QueueName, Queues } from './queues.ts';
import type { Registry } from './registry.ts';

interface ScheduleSpec {
  /**
   * The job scheduler id in BullMQ: one scheduler per job and organization, `<job>@<organization>`; the job name
   * alone for the one organization of a file with `organization:` (the ids it always had).
   */
  id: string;
  job: string;
  /** The organization's id, which each job the scheduler makes carries in its data. */
  organization: string;
  queue: QueueName;
  pattern: string;
  tz: string;
  attempts: number;
}

/**
 * What should be scheduled for one organization (its policy): each job's default (or its policy section's cron),
 * overridden by `schedules`, in the organization's timezone.
 */
export function desiredSchedules(
  registry: Registry,
  policy: Policy,
  organization: string = DEFAULT_ORGANIZATION_ID,
): ScheduleSpec[] {
  const specs: ScheduleSpec[] = [];
  for (const def of registry.values()) {
    const pattern =
      policy.schedules[def.name] ?? (typeof def.schedule === 'function' ? def.schedule(policy) : def.schedule);
    if (pattern) {
      specs.push({
        id: organization === DEFAULT_ORGANIZATION_ID ? def.name : `${def.name}@${organization}`,
        job: def.name,
        organization,
        queue: def.queue,
        pattern,
        tz: policy.organization.timezone,
        attempts: def.attempts ?? 5,
      });
    }
  }
  return specs.sort((a, b) => a.id.localeCompare(b.id));
}

/** The field of a job's data that names its organization (its id). */
export const ORGANIZATION_FIELD = 'organization';

/** Retries with exponential backoff (2 s, 4 s, 8 s, …); a run that exhausts them waits for the next tick. */
export function retryOptions(attempts: number) {
  return { attempts, backoff: { type: 'exponential', delay: 2_000 } };
}

function fingerprint(specs: ScheduleSpec[]): string {
  return createHash('sha256').update(JSON.stringify(specs)).digest('hex');
}

const RELEASE_LOCK = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/**
 * Runs `fn` while holding a Redis lock (SET NX PX with a token, released only by its holder), waiting for it up
 * to `waitMs`. Many replicas booting at once serialize here instead of racing on the schedulers.
 */
async function withLock<T>(
  redis: RedisConnection,
  key: string,
  waitMs: number,
  fn: () => Promise<T>,
): Promise<T | null> {
  const token = randomUUID();
  const deadline = Date.now() + waitMs;
  while ((await redis.set(key, token, 'PX', 30_000, 'NX')) !== 'OK') {
    if (Date.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 100));
  }
  try {
    return await fn();
  } finally {
    await redis.eval(RELEASE_LOCK, 1, key, token);
  }
}

export interface ReconcileResult {
  changed: boolean;
  upserted: string[];
  removed: string[];
}

/**
 * Makes BullMQ's job schedulers match `specs`, under a lock and only when something differs: the stored
 * fingerprint of the last applied set, or a scheduler that is missing or different in Redis (after a flush).
 * Upserting a scheduler is idempotent in BullMQ, so a replica that crashes midway leaves nothing duplicated; the
 * fingerprint is written last, so the next replica finishes the job.
 */
export async function reconcileSchedules(
  queues: Queues,
  redis: RedisConnection,
  prefix: string,
  specs: ScheduleSpec[],
  log: Logger,
): Promise<ReconcileResult> {
  const hashKey = `${prefix}:keywarden:schedules`;
  const result = await withLock(redis, `${hashKey}:lock`, 30_000, async () => {
    const wanted = fingerprint(specs);
    const upserted: string[] = [];
    const removed: string[] = [];
    const stored = await redis.get(hashKey);
    for (const spec of specs) {
      const existing = await queues[spec.queue].getJobScheduler(spec.id);
      if (stored === wanted && existing && existing.pattern === spec.pattern && existing.tz === spec.tz) continue;
      await queues[spec.queue].upsertJobScheduler(
        spec.id,
        { pattern: spec.pattern, tz: spec.tz },
        // the job's name is the job's, whichever organization: the handler is found by it
        { name: spec.job, data: { [ORGANIZATION_FIELD]: spec.organization }, opts: retryOptions(spec.attempts) },
      );
      upserted.push(spec.id);
    }
    // Schedulers of jobs that were removed or moved to another queue.
    for (const [queueName, queue] of Object.entries(queues)) {
      for (const existing of await queue.getJobSchedulers(0, -1)) {
        const id = existing.key;
        if (!specs.some((s) => s.id === id && s.queue === queueName)) {
          await queue.removeJobScheduler(id);
          removed.push(`${queueName}/${id}`);
        }
      }
    }
    await redis.set(hashKey, wanted);
    return { changed: upserted.length + removed.length > 0, upserted, removed };
  });
  if (!result) throw new Error('could not take the schedule lock within 30s (another replica holds it)');
  if (result.changed) log.info(result, 'job schedules reconciled');
  return result;
}

/**
 * The watchdog: a scheduler that vanished (Redis flushed or restored from an old snapshot) or whose next job was
 * lost is repaired by reconciling again. Returns the ids it found broken.
 */
export async function checkSchedules(
  queues: Queues,
  redis: RedisConnection,
  prefix: string,
  specs: ScheduleSpec[],
  log: Logger,
): Promise<string[]> {
  const broken: string[] = [];
  for (const spec of specs) {
    const existing = await queues[spec.queue].getJobScheduler(spec.id);
    if (!existing) {
      broken.push(spec.id);
      continue;
    }
    // A scheduler fires by way of its next job (BullMQ names it repeat:<id>:<next>), created when the previous
    // one starts. If that job is gone (evicted, flushed, deleted by hand) the scheduler never fires again.
    // A next job that merely waits behind a backlog is fine: it still exists.
    const job =
      existing.next === undefined ? null : await queues[spec.queue].getJob(`repeat:${spec.id}:${existing.next}`);
    if (!job) broken.push(spec.id);
  }
  if (broken.length > 0) {
    log.warn({ schedulers: broken }, 'job schedulers missing or stalled: repairing');
    // Forget the fingerprint so the reconcile re-creates instead of trusting it.
    await redis.del(`${prefix}:keywarden:schedules`);
    await reconcileSchedules(queues, redis, prefix, specs, log);
  }
  return broken;
}
