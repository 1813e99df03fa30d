/**
 * Scale over organizations and replicas: `npm run bench -- scale [--orgs 20] [--keys 1000] [--replicas 1,2,4]
 * [--minutes 4] [--warmup 1]` (DATABASE_URL and REDIS_URL, else a local Postgres and Redis are started).
 *
 * `--orgs` organizations, each served by its own emulator process (`keywarden emulator`, one Admin API and one
 * admin key each: the emulator serves one organization) over a scenario generated here, seeded per organization and
 * shaped like the `large` one: `--keys` keys in `keys / 50` workspaces, a third idle, the rest log-uniform in volume
 * and burstiness. One policy file lists them all (`organizations:`, a schema `kw_<id>` each, migrated here); every
 * job runs on its default schedule, fanned out per organization. Each organization's usage watermarks are preset
 * to the last minute, and every job not run each minute (the inventory first, then the month's billed cost, the
 * projections...) runs once per organization before the first step (their times printed), so the steps measure the
 * steady state, not the first backfill (`npm run bench -- ingest` measures that). The hourly jobs (reconcile-costs at
 * :17, usage-retention at :23) fall in a step only if its minutes cross them.
 *
 * Then, for each replica count of `--replicas`, that many `keywarden worker` processes (as deployed: the
 * Dockerfile's NODE_OPTIONS) on one fresh BullMQ prefix; after `--warmup` minutes, for `--minutes - --warmup`
 * minutes it measures:
 * - per organization, the poll cycle: p50/p95 of poll-usage's BullMQ processing time (processedOn → finishedOn);
 * - the share of ticks that start late: a scheduler's tick (BullMQ's `repeat:<scheduler>:<tick ms>`) whose job
 *   starts more than LATE_MS after the tick, or not at all, over every scheduler and organization (ticks due up to
 *   GRACE_MS before the end); ticks skipped because the job's previous run still ran are counted apart;
 * - jobs finished per replica (BullMQ's `processedBy`, which is each worker's replica name, host:pid);
 * - Redis commands/s (INFO stats total_commands_processed) and Postgres rows written/s (pg_stat_database
 *   tup_inserted + tup_updated + tup_deleted of the run's database), and the most connections it had open;
 * - CPU per replica (utime + stime from /proc/<pid>/stat over the wall time; 100% is one core), RSS at the end and
 *   the peak (VmHWM), the worst event-loop delay p99 of its heartbeats; the emulators' CPU too, and the machine's:
 *   the emulators, Postgres and Redis run on the same cores as the workers.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Job, Queue, QueueEvents } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { createDb, migrateToLatest } from '../src/db/index.ts';
import { freePort } from '../src/dev/services.ts';
import { QUEUE_NAMES } from '../src/queue/queues.ts';
import { MINUTE_MS } from '../src/time.ts';
import { deployedNodeOptions, rssOf, startCli } from './_cli.ts';
import { prng } from './_prng.ts';
import { presetPolled, startBenchServices } from './_services.ts';
import { quantile } from './_stats.ts';

/** A tick whose job starts more than this after the tick starts late. */
const LATE_MS = 10_000;
// a tick due this close to the end may not have started yet without being late
const GRACE_MS = 30_000;
const HEARTBEAT = '10s';

const MODEL_MIXES: Array<Record<string, number>> = [
  { 'claude-sonnet-4-5': 1 },
  { 'claude-haiku-4-5': 1 },
  { 'claude-sonnet-4-5': 0.7, 'claude-haiku-4-5': 0.3 },
  { 'claude-opus-4-5': 0.6, 'claude-sonnet-4-5': 0.4 },
  { 'claude-sonnet-4-6': 1 },
];

interface Org {
  id: string;
  adminKey: string;
  keyEnv: string;
}

/** One organization's emulator scenario: `keys` keys in `keys / 50` workspaces, from the organization's seed. */
function scenarioOf(org: Org, index: number, keys: number): Record<string, unknown> {
  const seed = 18_000 + index;
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const logUniform = (low: number, high: number) => low * (high / low) ** random();
  const round = (x: number, places: number) => Math.round(x * 10 ** places) / 10 ** places;
  const workspaces = Array.from({ length: Math.max(1, Math.round(keys / 50)) }, (_, i) => ({
    name: `team-${String(i + 1).padStart(3, '0')}`,
    age_days: Math.floor(30 + random() * 700),
  }));
  const users = Array.from({ length: Math.max(4, Math.round(keys / 12)) }, (_, i) => ({
    name: `User ${i + 1}`,
    email: `user${String(i + 1).padStart(4, '0')}@${org.id}.example`,
    role: i < 4 ? 'admin' : pick(['developer', 'developer', 'user', 'billing']),
    age_days: Math.floor(random() * 900),
    workspaces: { [pick(workspaces).name]: 'workspace_developer' },
  }));
  return {
    name: `scale-${org.id}`,
    description: `${keys} keys in ${workspaces.length} workspaces, for the scale benchmark`,
    seed,
    organization: { name: `Scale ${org.id}` },
    admin_keys: [org.adminKey],
    freshness_delay_minutes: 5,
    workspaces,
    users,
    keys: Array.from({ length: keys }, (_, i) => {
      const workspace = workspaces[i % workspaces.length]!.name;
      const roll = random();
      const idle = random() < 0.35;
      return {
        name: `${workspace}-svc-${String(Math.floor(i / workspaces.length) + 1).padStart(3, '0')}`,
        workspace,
        created_by: pick(users).email,
        age_days: round(random() * 400, 2),
        status: roll < 0.03 ? 'inactive' : roll < 0.04 ? 'archived' : 'active',
        traffic: idle
          ? { tokens_per_minute: 0 }
          : {
              tokens_per_minute: Math.round(logUniform(200, 100_000)),
              models: pick(MODEL_MIXES),
              active_share: round(logUniform(0.02, 1), 3),
              peak_hour_utc: Math.floor(12 + random() * 9),
            },
      };
    }),
  };
}

function numberFlag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name}: "${args[i + 1]}" is not a positive number`);
  return v;
}

function replicaCounts(args: string[]): number[] {
  const i = args.indexOf('--replicas');
  if (i === -1) return [1, 2, 4];
  const text = args[i + 1] ?? '';
  const counts = text.split(',').map(Number);
  if (counts.length === 0 || counts.some((n) => !Number.isInteger(n) || n < 1 || n > 16)) {
    throw new Error(`--replicas: "${text}" is not a list of replica counts (1 to 16), like 1,2,4`);
  }
  return counts;
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** A process's CPU time so far (user + system), in seconds; null once it is gone. */
function cpuSeconds(pid: number): number | null {
  const fields = statFields(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS : null;
}

/** The fields of /proc/<pid>/stat from the third (state) on: the command name before them may hold spaces. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * A local Postgres server's CPU time so far, in seconds: the postmaster's (with its children that exited: cutime,
 * cstime) and its live children's; null where it is not on this machine. A backend alive at the first reading that
 * exits before the second counts its early part twice: connections live for minutes here, so little.
 */
function postgresCpu(postmaster: number | null): number | null {
  if (postmaster === null) return null;
  const own = statFields(postmaster);
  if (!own) return null;
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (f && Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / CLOCK_TICKS;
}

/** The machine's busy and total CPU time so far (every core), from /proc/stat, in clock ticks. */
function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.split(/\s+/).slice(1).map(Number);
  const idle = v[3]! + v[4]!;
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

interface Finished {
  id: string;
  name: string;
  organization: string;
  processedOn: number;
  finishedOn: number;
  processedBy: string;
  skipped: boolean;
  /** Why its last attempt failed, when it did. */
  failed: string | null;
}

type Cli = Awaited<ReturnType<typeof startCli>>;

const mb = (bytes: number | null) => (bytes === null ? '?' : `${Math.round(bytes / 1024 / 1024)} MB`);
const sec = (ms: number) => (Number.isNaN(ms) ? '-' : `${(ms / 1000).toFixed(2)} s`);
const pctOf = (n: number, of: number) => (of === 0 ? '-' : `${((n / of) * 100).toFixed(1)}%`);
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

function maxEventLoopP99(output: string, from: number): number | null {
  let max: number | null = null;
  for (const line of output.split('\n')) {
    if (!line.includes('"msg":"heartbeat"')) continue;
    const e = JSON.parse(line) as { time: number; eventLoopDelayP99Ms: number };
    if (e.time >= from) max = Math.max(max ?? 0, e.eventLoopDelayP99Ms);
  }
  return max;
}

export async function run(args: string[]): Promise<void> {
  const orgCount = numberFlag(args, 'orgs', 20);
  const keys = numberFlag(args, 'keys', 1000);
  const minutes = numberFlag(args, 'minutes', 4);
  const warmup = numberFlag(args, 'warmup', 1);
  const replicas = replicaCounts(args);
  if (warmup >= minutes) throw new Error(`--warmup ${warmup} must be shorter than --minutes ${minutes}`);
  if (!Number.isInteger(orgCount) || orgCount > 99) throw new Error(`--orgs: ${orgCount} is not 1 to 99`);

  const services = await startBenchServices('kw_scale', 2);
  const dir = mkdtempSync(join(tmpdir(), 'kw-scale-'));
  const orgs: Org[] = Array.from({ length: orgCount }, (_, i) => {
    const n = String(i + 1).padStart(2, '0');
    return {
      id: `org${n}`,
      adminKey: `sk-ant-admin01-keywarden-scale-org${n}-not-a-secret`,
      keyEnv: `KW_SCALE_ADMIN_KEY_ORG${n}`,
    };
  });
  const emulators: Cli[] = [];
  const redis = new Redis(services.redisUrl, { maxRetriesPerRequest: null });
  try {
    // a few at a time: twenty emulators building their scenario at once would starve the machine for a while
    for (let i = 0; i < orgs.length; i += 4) {
      const batch = orgs.slice(i, i + 4).map((org, j) => {
        const file = join(dir, `${org.id}.json`);
        writeFileSync(file, JSON.stringify(scenarioOf(org, i + j, keys)));
        return startCli(
          ['emulator', '--scenario', file, '--port', '0', '--admin-key', org.adminKey],
          { LOG_LEVEL: 'warn' },
          /ANTHROPIC_BASE_URL=\S+/,
        );
      });
      emulators.push(...(await Promise.all(batch)));
    }
    const urls = emulators.map((e) => /ANTHROPIC_BASE_URL=(\S+)/.exec(e.output())![1]!);
    const policy = {
      organizations: orgs.map((org, i) => ({
        id: org.id,
        name: `Scale ${org.id}`,
        timezone: 'UTC',
        admin_key_env: org.keyEnv,
        base_url: urls[i],
      })),
    };
    writeFileSync(join(dir, 'keywarden.yaml'), JSON.stringify(policy, null, 2));

    // each organization's schema, and the history already polled
    for (const org of orgs) {
      const db = createDb(services.databaseUrl, { max: 1, schema: `kw_${org.id}` });
      try {
        await migrateToLatest(db, `kw_${org.id}`);
        await presetPolled(db);
      } finally {
        await db.destroy();
      }
    }

    const emulatorRss = emulators.map((e) => rssOf(e.pid, 'VmRSS') ?? 0).reduce((a, b) => a + b, 0);
    const nodeOptions = deployedNodeOptions();
    const cores = cpus().length;
    console.log(
      `scale: ${orgCount} organizations × ${keys} keys (${orgCount} emulator processes), replicas ${replicas.join(', ')}, ` +
        `${minutes} min a step (warm-up ${warmup}); workers as deployed (NODE_OPTIONS=${nodeOptions}); machine: ` +
        `${cores} cores, ${Math.round(totalmem() / 1024 ** 3)} GB, the emulators' RSS ${mb(emulatorRss)} in all, load average now ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    );
    const summary: string[] = [];
    let primed = false;
    for (const count of replicas) {
      const prefix = `{kwscale-${randomBytes(4).toString('hex')}}`;
      const connection = { url: services.redisUrl };
      const queues = new Map(QUEUE_NAMES.map((q) => [q, new Queue(q, { connection, prefix })]));
      const events = QUEUE_NAMES.map((q) => new QueueEvents(q, { connection, prefix }));
      const finished = new Map<string, Finished>();
      const record = async (queue: Queue, jobId: string, failed: boolean) => {
        const job = await Job.fromId(queue, jobId).catch(() => undefined);
        if (!job?.processedOn || !job.finishedOn) return;
        const data = (job.data ?? {}) as { organization?: string };
        const rv = job.returnvalue as unknown;
        finished.set(jobId, {
          id: jobId,
          name: job.name,
          organization: data.organization ?? '?',
          processedOn: job.processedOn,
          finishedOn: job.finishedOn,
          processedBy: job.processedBy ?? '?',
          skipped: typeof rv === 'object' && rv !== null && 'skipped' in rv,
          failed: failed ? (job.failedReason ?? 'failed') : null,
        });
      };
      const pending: Promise<void>[] = [];
      events.forEach((e, i) => {
        const queue = queues.get(QUEUE_NAMES[i]!)!;
        e.on('completed', ({ jobId }) => void pending.push(record(queue, jobId, false)));
        e.on('failed', ({ jobId }) => void pending.push(record(queue, jobId, true)));
      });
      for (const e of events) await e.waitUntilReady();
      const workers: Cli[] = [];
      try {
        const env = {
          DATABASE_URL: services.databaseUrl,
          REDIS_URL: services.redisUrl,
          KEYWARDEN_CONFIG: join(dir, 'keywarden.yaml'),
          LOG_LEVEL: 'info',
          NODE_OPTIONS: nodeOptions,
          ...Object.fromEntries(orgs.map((o) => [o.keyEnv, o.adminKey])),
        };
        for (let i = 0; i < count; i++) {
          workers.push(
            await startCli(
              ['worker', '--prefix', prefix, '--heartbeat-interval', HEARTBEAT],
              { ...env, KEYWARDEN_HTTP_PORT: String(await freePort()) },
              /worker started/,
            ),
          );
        }
        if (!primed) {
          // every job that is not a minute's once per organization, the inventory first: the first runs (the
          // inventory, the month's billed cost) are not the steady state, and would fill the ingest queue of the
          // first step that meets their tick
          const schedulers = (
            await Promise.all(
              [...queues.values()].map(async (q) => (await q.getJobSchedulers(0, -1)).map((s) => ({ q, s }))),
            )
          ).flat();
          const hourly = schedulers.filter(({ s }) => s.pattern && !s.pattern.startsWith('* '));
          for (const stage of [
            hourly.filter(({ s }) => s.name === 'sync-inventory'),
            hourly.filter(({ s }) => s.name !== 'sync-inventory'),
          ]) {
            const t0 = Date.now();
            const ids: string[] = [];
            for (const { q, s } of stage) {
              const id = `prime-${s.key}`;
              ids.push(id);
              await q.add(s.name, { organization: s.key.split('@')[1] }, { jobId: id });
            }
            while (ids.some((id) => !finished.has(id))) {
              if (Date.now() - t0 > 10 * MINUTE_MS) throw new Error(`priming took over 10 minutes: ${ids.join(', ')}`);
              await new Promise((r) => setTimeout(r, 500));
            }
            // a first run that failed is what a deployment would see too: said, and its tick tries again
            for (const id of ids.filter((id) => finished.get(id)!.failed)) {
              console.log(`  ${id} failed: ${finished.get(id)!.failed}`);
            }
            const byJob = new Map<string, number[]>();
            for (const id of ids) {
              const f = finished.get(id)!;
              byJob.set(f.name, [...(byJob.get(f.name) ?? []), f.finishedOn - f.processedOn]);
            }
            console.log(
              `  first runs, once per organization, on ${count} replica${count > 1 ? 's' : ''}: ${((Date.now() - t0) / 1000).toFixed(1)} s for ` +
                [...byJob]
                  .sort(([a], [b]) => a.localeCompare(b))
                  .map(([job, ms]) => {
                    const d = sorted(ms);
                    return `${job} ×${d.length} (p50 ${sec(quantile(d, 0.5))}, max ${sec(d.at(-1)!)})`;
                  })
                  .join(', '),
            );
          }
          primed = true;
        }
        const started = Date.now();
        const warmEnd = started + warmup * MINUTE_MS;
        const end = started + minutes * MINUTE_MS;
        await new Promise((r) => setTimeout(r, warmEnd - Date.now()));

        const cpuAt = async () => ({
          workers: workers.map((w) => cpuSeconds(w.pid)),
          emulators: emulators.map((e) => cpuSeconds(e.pid) ?? 0).reduce((a, b) => a + b, 0),
          machine: machineCpu(),
          redis: Number(/total_commands_processed:(\d+)/.exec(await redis.info('stats'))?.[1]),
          redisCpu: (await redis.info('cpu'))
            .split('\n')
            .filter((l) => /^used_cpu_(sys|user):/.test(l))
            .reduce((sum, l) => sum + Number(l.split(':')[1]), 0),
          postgresCpu: postgresCpu(postmaster),
          pg: await sql<{ rows: string }>`
            SELECT tup_inserted + tup_updated + tup_deleted AS rows FROM pg_stat_database
            WHERE datname = current_database()`
            .execute(services.db)
            .then((r) => Number(r.rows[0]!.rows)),
          at: Date.now(),
        });
        // the server's main process: the parent of this connection's backend, where Postgres runs on this machine
        const backend = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(services.db);
        const parent = statFields(backend.rows[0]!.pid)?.[1];
        const postmaster = parent === undefined ? null : Number(parent);
        const before = await cpuAt();
        let connections = 0;
        while (Date.now() < end) {
          const { rows } = await sql<{ n: string }>`
            SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()`.execute(services.db);
          connections = Math.max(connections, Number(rows[0]!.n));
          await new Promise((r) => setTimeout(r, Math.min(5_000, Math.max(0, end - Date.now()))));
        }
        const after = await cpuAt();
        const wall = (after.at - before.at) / 1000;

        // every tick due in the window: started on time, late, never, or skipped (the previous run still ran)
        const due: Array<{ id: string; tick: number; queue: Queue }> = [];
        for (const queue of queues.values()) {
          for (const s of await queue.getJobSchedulers(0, -1)) {
            if (!s.pattern) continue;
            const ticks = CronExpressionParser.parse(s.pattern, {
              currentDate: new Date(warmEnd - 1),
              tz: s.tz ?? 'UTC',
            });
            for (let t = ticks.next().getTime(); t < end - GRACE_MS; t = ticks.next().getTime()) {
              due.push({ id: `repeat:${s.key}:${t}`, tick: t, queue });
            }
          }
        }
        await Promise.all(pending);
        let late = 0;
        let never = 0;
        let skipped = 0;
        const lateByOrg = new Map<string, { late: number; due: number }>();
        const lateByJob = new Map<string, { late: number; due: number }>();
        const startDelays: number[] = [];
        for (const d of due) {
          const [, job = '?', org = '?'] = /^repeat:([^@]+)@([a-z0-9_]+):\d+$/.exec(d.id) ?? [];
          let startedAt = finished.get(d.id)?.processedOn;
          if (startedAt === undefined) startedAt = (await d.queue.getJob(d.id))?.processedOn;
          const isLate = startedAt === undefined || startedAt - d.tick > LATE_MS;
          if (startedAt === undefined) never++;
          if (isLate) late++;
          if (startedAt !== undefined) startDelays.push(startedAt - d.tick);
          if (finished.get(d.id)?.skipped) skipped++;
          const o = lateByOrg.get(org) ?? { late: 0, due: 0 };
          o.due++;
          if (isLate) o.late++;
          lateByOrg.set(org, o);
          const j = lateByJob.get(job) ?? { late: 0, due: 0 };
          j.due++;
          if (isLate) j.late++;
          lateByJob.set(job, j);
        }

        const inWindow = [...finished.values()].filter((f) => f.finishedOn >= warmEnd && f.finishedOn < end);
        const polls = inWindow.filter((f) => f.name === 'poll-usage' && !f.skipped && !f.failed);
        const cycle = (f: Finished) => f.finishedOn - f.processedOn;
        console.log(
          `\n${count} replica${count > 1 ? 's' : ''}: ${((end - warmEnd) / MINUTE_MS).toFixed(1)} min measured after ${warmup} min of warm-up`,
        );
        console.log('  organization   polls   poll p50   poll p95   ticks late (> 10 s or never)');
        for (const org of orgs) {
          const mine = sorted(polls.filter((p) => p.organization === org.id).map(cycle));
          const l = lateByOrg.get(org.id) ?? { late: 0, due: 0 };
          console.log(
            `  ${org.id.padEnd(12)} ${String(mine.length).padStart(7)} ${sec(quantile(mine, 0.5)).padStart(10)} ` +
              `${sec(quantile(mine, 0.95)).padStart(10)}   ${l.late}/${l.due}`,
          );
        }
        const all = sorted(polls.map(cycle));
        const orgP95s = sorted(
          orgs.map((o) => quantile(sorted(polls.filter((p) => p.organization === o.id).map(cycle)), 0.95)),
        );
        console.log(
          `  all polls: ${all.length}, p50 ${sec(quantile(all, 0.5))}, p95 ${sec(quantile(all, 0.95))}, worst ` +
            `organization's p95 ${sec(orgP95s.at(-1) ?? Number.NaN)}; ticks due ${due.length}, late ${late} ` +
            `(${pctOf(late, due.length)}; never started ${never}), skipped (previous run still running) ${skipped}; ` +
            `failed jobs ${inWindow.filter((f) => f.failed).length}`,
        );
        const delays = sorted(startDelays);
        console.log(
          `  a tick's start after its time: p50 ${sec(quantile(delays, 0.5))}, p95 ${sec(quantile(delays, 0.95))}, ` +
            `max ${sec(delays.at(-1) ?? Number.NaN)}; late by job: ` +
            [...lateByJob]
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([job, l]) => `${job} ${l.late}/${l.due}`)
              .join(', '),
        );
        console.log('  replica   jobs   of which polls   CPU (100% = a core)   RSS end / peak   event-loop p99 max');
        let workerCpu = 0;
        for (const [i, w] of workers.entries()) {
          const mine = inWindow.filter((f) => f.processedBy.endsWith(`:${w.pid}`));
          const used = (after.workers[i] ?? 0) - (before.workers[i] ?? 0);
          workerCpu += used;
          const loop = maxEventLoopP99(w.output(), warmEnd);
          console.log(
            `  #${i + 1} ${String(w.pid).padEnd(7)} ${String(mine.length).padStart(5)} ${String(mine.filter((f) => f.name === 'poll-usage').length).padStart(16)} ` +
              `${`${((used / wall) * 100).toFixed(0)}%`.padStart(21)}   ${`${mb(rssOf(w.pid, 'VmRSS'))} / ${mb(rssOf(w.pid, 'VmHWM'))}`.padStart(14)} ` +
              `${loop === null ? '?' : `${loop} ms`}`.padStart(20),
          );
        }
        const emulatorCpu = (after.emulators - before.emulators) / wall;
        const machine = (after.machine.busy - before.machine.busy) / (after.machine.total - before.machine.total);
        const redisRate = (after.redis - before.redis) / wall;
        const pgRate = (after.pg - before.pg) / wall;
        const share = (a: number | null, b: number | null) =>
          a === null || b === null ? '?' : `${(((b - a) / wall) * 100).toFixed(0)}%`;
        const jobsPerMin = inWindow.length / (wall / 60);
        console.log(
          `  Redis ${redisRate.toFixed(0)} commands/s; Postgres ${pgRate.toFixed(0)} rows written/s, at most ` +
            `${connections} connections; workers' CPU ${((workerCpu / wall) * 100).toFixed(0)}%, the ${orgCount} emulators' ` +
            `${(emulatorCpu * 100).toFixed(0)}%, Postgres ${share(before.postgresCpu, after.postgresCpu)}, Redis ` +
            `${share(before.redisCpu, after.redisCpu)}; the machine ${(machine * 100 * cores).toFixed(0)}% busy of ` +
            `${cores * 100}% (everything on it, other runs too)`,
        );
        summary.push(
          `| ${count} | ${sec(quantile(all, 0.5))} | ${sec(quantile(all, 0.95))} | ${sec(orgP95s.at(-1) ?? Number.NaN)} | ` +
            `${pctOf(late, due.length)} | ${jobsPerMin.toFixed(0)} | ${redisRate.toFixed(0)} | ${pgRate.toFixed(0)} | ` +
            `${((workerCpu / wall) * 100).toFixed(0)}% | ${mb(Math.max(...workers.map((w) => rssOf(w.pid, 'VmHWM') ?? 0)))} | ` +
            `${(emulatorCpu * 100).toFixed(0)}% | ${share(before.postgresCpu, after.postgresCpu)} | ` +
            `${share(before.redisCpu, after.redisCpu)} | ${(machine * 100 * cores).toFixed(0)}% |`,
        );
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
        await Promise.all(pending);
        for (const e of events) await e.close();
        for (const q of queues.values()) await q.obliterate({ force: true }).catch(() => {});
        for (const q of queues.values()) await q.close();
      }
    }
    console.log(
      `\n| replicas | poll p50 | poll p95 | worst org p95 | ticks late | jobs/min | Redis cmd/s | PG rows/s | workers' CPU | peak RSS a replica | emulators' CPU | Postgres CPU | Redis CPU | machine busy (of ${cpus().length * 100}%) |`,
    );
    console.log(`|${'---|'.repeat(14)}`);
    for (const line of summary) console.log(line);
  } finally {
    redis.disconnect();
    await Promise.all(emulators.map((e) => e.stop()));
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
