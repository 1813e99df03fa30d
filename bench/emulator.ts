/**
 * How long the emulator's `large` scenario (5,000 keys, 100 workspaces) takes to answer what the worker asks every
 * minute: a 15-minute 1m usage report grouped by api_key_id and model, all pages, through the real client over
 * HTTP on loopback. It should stay well under a second, so it never dominates a benchmark of the worker.
 *
 *   npm run bench -- emulator [--runs 5]
 *
 * Prints the median of the runs after one cold run (JIT warm-up), for one page (the client's default: the maximum
 * buckets per page) and for 3-bucket pages (5 pages), with the emulator's own share (computing and serialising,
 * from its request log) separated from the total (which adds the transfer, JSON parsing and validation).
 */

import { parseArgs } from 'node:util';
import { AdminClient } from '../src/anthropic/client.ts';
import { fixedClock } from '../src/clock.ts';
import { Secret } from '../src/config/secret.ts';
import { loadScenario } from '../src/emulator/scenario.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { MINUTE_MS } from '../src/time.ts';
import { POLL_OVERLAP_MINUTES } from '../src/usage/ingest.ts';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { runs: { type: 'string', default: '5' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: "${values.runs}" is not a positive integer`);

  const loadStarted = performance.now();
  const scenario = loadScenario('large');
  const start = new Date('2026-03-02T14:00:00Z'); // a Monday afternoon: near the daily peak
  const clock = fixedClock(new Date(start.getTime() + 2 * 60 * MINUTE_MS));
  const emulator = await startEmulator({ scenario, clock, startAt: start });
  const loadMs = performance.now() - loadStarted;
  const client = new AdminClient({ baseUrl: emulator.url, adminKey: new Secret(scenario.admin_keys[0]!) });
  const to = new Date(clock.now().getTime() - 10 * MINUTE_MS); // past the 5-minute freshness delay
  const from = new Date(to.getTime() - POLL_OVERLAP_MINUTES * MINUTE_MS);

  console.log(
    `emulator: scenario large (${emulator.state.keys.length} keys, ${emulator.state.workspaces.length} workspaces), ` +
      `built in ${loadMs.toFixed(0)} ms`,
  );
  console.log('15-minute 1m usage report grouped by api_key_id and model, all pages, through the client:');
  try {
    for (const limit of [undefined, 3]) {
      const totals: number[] = [];
      const servers: number[] = [];
      let pages = 0;
      let rows = 0;
      for (let i = 0; i <= runs; i++) {
        const logged = emulator.requestLog.length;
        const started = performance.now();
        pages = 0;
        rows = 0;
        const report = client.usageReport({
          startingAt: from,
          endingAt: to,
          bucketWidth: '1m',
          groupBy: ['api_key_id', 'model'],
          ...(limit ? { limit } : {}),
        });
        for await (const page of report.pages()) {
          pages++;
          for (const bucket of page.data) rows += bucket.results.length;
        }
        const total = performance.now() - started;
        const server = emulator.requestLog.slice(logged).reduce((s, r) => s + (r.durationMs ?? 0), 0);
        if (i === 0) {
          console.log(`  ${limit ? `${limit} buckets a page` : 'default page size'}: cold run ${total.toFixed(0)} ms`);
          continue;
        }
        totals.push(total);
        servers.push(server);
      }
      console.log(
        `    pages ${pages}, rows ${rows}: total ${median(totals).toFixed(0)} ms median of ${runs} ` +
          `(min ${Math.min(...totals).toFixed(0)}, max ${Math.max(...totals).toFixed(0)}), ` +
          `emulator ${median(servers).toFixed(0)} ms of it`,
      );
    }
  } finally {
    await emulator.close();
  }
}
