/**
 * The soak: `npm run bench -- soak [--minutes 30] [--warmup 5]` (DATABASE_URL and REDIS_URL, else a local Postgres
 * and Redis are started). One real worker (`keywarden worker`, as deployed: the Dockerfile's NODE_OPTIONS) on the
 * default schedules watches the `large` scenario (5,000 keys, 100 workspaces, three runaways, a key migration, keys
 * past their rotation age) served by the emulator in another process, with `rotation.enforce: true` and
 * enforce-rotation every 5 minutes, so that keys get retired while it runs. It prints, after the warm-up:
 * - RSS growth: the worker's resident memory at the end against the end of the warm-up (target < 10%);
 * - event-loop delay p99: from the worker's own heartbeat (perf_hooks monitorEventLoopDelay, p99 of each
 *   10-second interval; target < 100 ms);
 * - missed ticks: every tick of every job scheduler due after the warm-up (up to a minute before the end)
 *   against the jobs BullMQ reports completed or failed (QueueEvents); a tick skipped because the job's previous
 *   run still ran is counted apart (target: none missed).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';
import { migrateToLatest } from '../src/db/index.ts';
import { freePort } from '../src/dev/services.ts';
import { QUEUE_NAMES } from '../src/queue/queues.ts';
import { MINUTE_MS } from '../src/time.ts';
import { deployedNodeOptions, startCli } from './_cli.ts';
import { presetPolled, startBenchServices } from './_services.ts';
import { quantile } from './_stats.ts';

const ADMIN_KEY = 'sk-ant-admin01-keywarden-bench-not-a-secret-0001';
const HEARTBEAT = '10s';
// a tick due this close to the end may still be running: not counted
const GRACE_MS = MINUTE_MS;

const POLICY = `organization: { name: "Large Org", timezone: UTC }
rotation: { enforce: true }
schedules:
  enforce-rotation: "*/5 * * * *"
`;

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name}: "${args[i + 1]}" is not a positive number of minutes`);
  return v;
}

interface Beat {
  at: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  eventLoopDelayP99Ms: number;
}

function heartbeats(output: string): Beat[] {
  const beats: Beat[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes('"msg":"heartbeat"')) continue;
    const { time, ...e } = JSON.parse(line) as Omit<Beat, 'at'> & { time: number };
    beats.push({ ...e, at: time });
  }
  return beats;
}

/** Each scheduler's ticks in [from, to), as BullMQ ids them (`repeat:<scheduler>:<ms>`), and how many schedulers. */
async function dueTicks(queues: Queue[], from: number, to: number): Promise<{ ids: string[]; schedulers: number }> {
  const ids: string[] = [];
  let schedulers = 0;
  for (const q of queues) {
    for (const s of await q.getJobSchedulers(0, -1)) {
      schedulers++;
      if (!s.pattern) continue;
      const ticks = CronExpressionParser.parse(s.pattern, { currentDate: new Date(from - 1), tz: s.tz ?? 'UTC' });
      for (let t = ticks.next().getTime(); t < to; t = ticks.next().getTime()) ids.push(`repeat:${s.key}:${t}`);
    }
  }
  return { ids, schedulers };
}

const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`;
const memory = (b: Beat) =>
  `heap ${mb(b.heapUsedBytes)} used of ${mb(b.heapTotalBytes)}, external ${mb(b.externalBytes)}, ` +
  `array buffers ${mb(b.arrayBuffersBytes)}`;

/**
 * The schedulers none of whose ticks finished during the warm-up: their first run falls after it, and the step it
 * makes in RSS is counted as growth (an hourly job in a warm-up shorter than an hour).
 */
async function firstRunAfterWarmup(queues: Queue[], finishedAt: Map<string, number>, warmEnd: number) {
  const warmed = new Set<string>();
  for (const [id, at] of finishedAt) {
    if (at < warmEnd) warmed.add(id.replace(/^repeat:(.*):\d+$/, '$1'));
  }
  const late: string[] = [];
  for (const q of queues) {
    for (const s of await q.getJobSchedulers(0, -1)) if (!warmed.has(s.key)) late.push(s.key);
  }
  return late.sort();
}

export async function run(args: string[]): Promise<void> {
  const minutes = flag(args, 'minutes', 30);
  const warmup = flag(args, 'warmup', Math.min(5, Math.round((minutes / 3) * 10) / 10));
  if (warmup >= minutes) throw new Error(`--warmup ${warmup} must be shorter than --minutes ${minutes}`);
  const services = await startBenchServices('kw_soak', 2);
  const { db } = services;
  const dir = mkdtempSync(join(tmpdir(), 'kw-soak-'));
  const prefix = `{kwsoak-${randomBytes(4).toString('hex')}}`;
  const connection = { url: services.redisUrl };
  const queues = QUEUE_NAMES.map((q) => new Queue(q, { connection, prefix }));
  const events = QUEUE_NAMES.map((q) => new QueueEvents(q, { connection, prefix }));
  const emulator = await startCli(
    ['emulator', '--scenario', 'large', '--port', '0', '--delay', '1', '--admin-key', ADMIN_KEY],
    { LOG_LEVEL: 'warn' },
    /ANTHROPIC_BASE_URL=\S+/,
  );
  let worker: Awaited<ReturnType<typeof startCli>> | null = null;
  try {
    await migrateToLatest(db);
    // the history already polled (as a worker that has run for a while has it): the soak is the steady state, not
    // the first backfill (`npm run bench -- ingest` measures polls)
    await presetPolled(db);
    writeFileSync(join(dir, 'keywarden.yaml'), POLICY);

    const seen = new Map<string, 'completed' | 'skipped' | 'failed'>();
    // when each job (by id) finished: which schedulers ran during the warm-up
    const finishedAt = new Map<string, number>();
    for (const e of events) {
      e.on('completed', ({ jobId, returnvalue }) => {
        const skipped = typeof returnvalue === 'object' && returnvalue !== null && 'skipped' in returnvalue;
        seen.set(jobId, skipped ? 'skipped' : 'completed');
        finishedAt.set(jobId, Date.now());
      });
      e.on('failed', ({ jobId }) => {
        seen.set(jobId, 'failed');
        finishedAt.set(jobId, Date.now());
      });
      await e.waitUntilReady();
    }
    const nodeOptions = deployedNodeOptions();
    worker = await startCli(
      ['worker', '--prefix', prefix, '--heartbeat-interval', HEARTBEAT],
      {
        DATABASE_URL: services.databaseUrl,
        REDIS_URL: services.redisUrl,
        ANTHROPIC_ADMIN_KEY: ADMIN_KEY,
        ANTHROPIC_BASE_URL: /ANTHROPIC_BASE_URL=(\S+)/.exec(emulator.output())![1]!,
        KEYWARDEN_CONFIG: join(dir, 'keywarden.yaml'),
        KEYWARDEN_HTTP_PORT: String(await freePort()),
        LOG_LEVEL: 'info',
        NODE_OPTIONS: nodeOptions,
      },
      /worker started/,
    );
    const started = Date.now();
    const warmEnd = started + warmup * MINUTE_MS;
    const end = started + minutes * MINUTE_MS;
    console.log(
      `soak: the large scenario (5,000 keys), one worker as deployed (NODE_OPTIONS=${nodeOptions}), ${minutes} min ` +
        `(warm-up ${warmup} min), heartbeat every ${HEARTBEAT}`,
    );
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, Math.min(60_000, end - Date.now())));
      const last = heartbeats(worker.output()).at(-1);
      if (last) {
        console.log(
          `  ${Math.round((Date.now() - started) / MINUTE_MS)} min: RSS ${mb(last.rssBytes)} (${memory(last)}), ` +
            `event-loop p99 ${last.eventLoopDelayP99Ms} ms, ${seen.size} jobs finished`,
        );
      }
    }

    const beats = heartbeats(worker.output()).filter((b) => b.at >= warmEnd);
    if (beats.length < 2) throw new Error('fewer than two heartbeats after the warm-up: run longer');
    const first = beats[0]!.rssBytes;
    const last = beats.at(-1)!.rssBytes;
    const peak = Math.max(...beats.map((b) => b.rssBytes));
    const p99s = beats.map((b) => b.eventLoopDelayP99Ms).sort((a, b) => a - b);
    const { ids: due, schedulers } = await dueTicks(queues, warmEnd, end - GRACE_MS);
    const outcome = (id: string) => seen.get(id) ?? 'missed';
    const count = (o: string) => due.filter((id) => outcome(id) === o).length;
    const missed = due.filter((id) => outcome(id) === 'missed');
    const growth = ((last - first) / first) * 100;
    console.log(
      `RSS after warm-up: ${mb(first)} → ${mb(last)} at the end (${growth >= 0 ? '+' : ''}${growth.toFixed(1)}%), ` +
        `peak ${mb(peak)}   [target: growth < 10%]`,
    );
    console.log(`  after warm-up: ${memory(beats[0]!)}\n  at the end:    ${memory(beats.at(-1)!)}`);
    const late = await firstRunAfterWarmup(queues, finishedAt, warmEnd);
    if (late.length > 0) {
      console.log(`  first run after the warm-up (a step there counts as growth): ${late.join(', ')}`);
    }
    console.log(
      `event-loop delay p99 per ${HEARTBEAT}: max ${p99s.at(-1)} ms, median ${quantile(p99s, 0.5).toFixed(1)} ms ` +
        `over ${beats.length} heartbeats   [target: < 100 ms]`,
    );
    // where the worst stalls were: the jobs that finished within a minute of each (a long job finishes after it)
    for (const b of [...beats].sort((x, y) => y.eventLoopDelayP99Ms - x.eventLoopDelayP99Ms).slice(0, 3)) {
      const near = [...finishedAt]
        .filter(([, at]) => at >= b.at - 10_000 && at < b.at + MINUTE_MS)
        // a scheduled tick is `repeat:<job>:<ms>`, a follow-up `<job>-after-<the job it follows>`
        .map(([id]) => id.replace(/^repeat:(.*):\d+$/, '$1').replace(/-after-.*$/, ''));
      console.log(
        `  p99 ${b.eventLoopDelayP99Ms} ms in the 10 s to ${new Date(b.at).toISOString().slice(11, 19)}; ` +
          `finished within a minute: ${[...new Set(near)].sort().join(', ') || 'none'}`,
      );
    }
    console.log(
      `scheduled ticks due after warm-up (${schedulers} schedulers): ${due.length}; completed ${count('completed')}, failed ${count('failed')}, ` +
        `skipped (the previous run still running) ${count('skipped')}, missed ${missed.length}   [target: none missed]`,
    );
    if (missed.length > 0) console.log(`  missed: ${missed.slice(0, 20).join(', ')}`);
    const kinds = await db
      .selectFrom('alerts')
      .select(['kind', db.fn.countAll<string>().as('n')])
      .groupBy('kind')
      .orderBy('kind')
      .execute();
    console.log(`alerts raised: ${kinds.map((k) => `${k.kind} ${k.n}`).join(', ') || 'none'}`);
  } finally {
    await worker?.stop();
    await emulator.stop();
    for (const e of events) await e.close();
    for (const q of queues) await q.obliterate({ force: true }).catch(() => {});
    for (const q of queues) await q.close();
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
