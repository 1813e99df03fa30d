// scratch (helper G): allocation profile of poll-usage + detect-anomalies in process
import { Session } from 'node:inspector/promises';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { sql } from 'kysely';
import pg from 'pg';
import { jobs } from '../jobs/index.ts';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config/index.ts';
import { createDb, migrateToLatest } from '../src/db/index.ts';
import { startLocalPostgres, startLocalRedis } from '../src/dev/services.ts';
import { createLogger } from '../src/log.ts';
import { buildRegistry } from '../src/queue/registry.ts';
import { runHandler } from '../src/queue/runner.ts';
import { BACKFILL_WATERMARK, USAGE_WATERMARK } from '../src/usage/ingest.ts';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const MINUTE = 60_000, HOUR = 3_600_000;
const ADMIN_KEY = 'sk-ant-admin01-keywarden-bench-not-a-secret-0001';
const which = (process.argv[2] ?? 'poll,detect').split(',');
const cyclesN = Number(process.argv[3] ?? 5);

const server = await startLocalPostgres();
const redis = await startLocalRedis();
const name = `kw_g_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: server.url });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = new URL(server.url); url.pathname = `/${name}`;
const db = createDb(url.toString(), { max: 4 });
await migrateToLatest(db);
const emu = spawn(process.execPath, [join(import.meta.dirname, '..', 'src', 'cli.ts'), 'emulator', '--scenario', 'large', '--port', '0', '--delay', '0', '--admin-key', ADMIN_KEY], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, LOG_LEVEL: 'warn' } });
let out = '';
emu.stdout.on('data', (d) => { out += d; }); emu.stderr.on('data', (d) => { out += d; });
while (!/ANTHROPIC_BASE_URL=\S+/.test(out)) await new Promise((r) => setTimeout(r, 50));
const emulatorUrl = /ANTHROPIC_BASE_URL=(\S+)/.exec(out)![1]!;
const config = loadConfig({ env: { DATABASE_URL: url.toString(), REDIS_URL: redis.url, ANTHROPIC_ADMIN_KEY: ADMIN_KEY, ANTHROPIC_BASE_URL: emulatorUrl, KEYWARDEN_CONFIG: 'examples/keywarden.yaml' }, knownJobs: jobs.map((j) => j.name) });
const log = createLogger({ level: 'warn' });
const app = await buildApp(config, { log, command: 'g' });
const registry = buildRegistry(jobs, config.policy);
const lastMinute = new Date(Math.floor(Date.now() / MINUTE) * MINUTE - MINUTE);
await db.insertInto('watermarks').values([{ name: BACKFILL_WATERMARK, position: new Date(lastMinute.getTime() - 48 * HOUR) }, { name: USAGE_WATERMARK, position: lastMinute }]).execute();
const meta = { id: 'g', attempt: 1, signal: new AbortController().signal };
const cycle = async () => {
  await db.updateTable('watermarks').set({ position: new Date(Math.floor(Date.now() / MINUTE) * MINUTE - MINUTE) }).where('name', '=', USAGE_WATERMARK).execute();
  if (which.includes('poll')) await runHandler(app.ctx, registry, 'poll-usage', {}, meta);
  if (which.includes('detect')) await runHandler(app.ctx, registry, 'detect-anomalies', {}, meta);
};
// warm-up (first detect computes baselines)
await cycle(); await cycle();
const session = new Session(); session.connect();
await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
const t0 = performance.now();
for (let i = 0; i < cyclesN; i++) await cycle();
const ms = performance.now() - t0;
const { profile } = (await session.post('HeapProfiler.stopSampling')) as any;
writeFileSync('/tmp/g/alloc.heapprofile', JSON.stringify(profile));
// aggregate: self by function, and attribution to first frame under /work/main/src or jobs
const self = new Map<string, number>(); const ours = new Map<string, number>();
let total = 0;
const walk = (n: any, stack: string[]) => {
  const f = n.callFrame; const id = `${f.functionName || '(anon)'} ${f.url.replace('file:///work/main/', '')}:${f.lineNumber + 1}`;
  const st = [...stack, id];
  if (n.selfSize) {
    total += n.selfSize;
    self.set(id, (self.get(id) ?? 0) + n.selfSize);
    const o = [...st].reverse().find((s) => / (src|jobs)\//.test(s) && !s.includes('node_modules')) ?? '(none)';
    ours.set(o, (ours.get(o) ?? 0) + n.selfSize);
  }
  for (const c of n.children) walk(c, st);
};
walk(profile.head, []);
const top = (m: Map<string, number>, n = 25) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${(v / 1048576).toFixed(1).padStart(7)} MB  ${k}`).join('\n');
console.log(`allocated ${(total / 1048576 / cyclesN).toFixed(1)} MB per cycle (${which}), ${(ms / cyclesN).toFixed(0)} ms per cycle`);
console.log('--- by allocating function (self) ---\n' + top(self));
console.log('--- by innermost keywarden frame ---\n' + top(ours));
await app.close(); emu.kill(); await db.destroy();
await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); await admin.end(); await redis.stop(); await server.stop();
