/**
 * Reading worker replicas' logs (JSON lines) for the scheduled ticks they ran: a scheduled job's id is
 * `repeat:<job>:<tick in ms>`, and the job-scoped logger puts it on every line of the run.
 */

/** The line each job ends a run with, for the jobs the replica tests and drills count. */
const RUN_DONE: Record<string, string> = {
  'poll-usage': 'usage polled',
  'sync-inventory': 'inventory synced',
};

const SKIPPED = 'previous run still in progress: tick skipped';

/**
 * The ticks of `job` this log shows as run (its run's last line) or skipped (a run of it was in progress), in ms;
 * `only` narrows to one of those messages; `organization`, to that organization's ticks (an organizations: list
 * schedules `<job>@<id>`, and its log lines carry `org`).
 */
export function ticksOf(output: string, job: string, only?: string, organization?: string): number[] {
  const messages = only ? [only] : [RUN_DONE[job] ?? `(no done line for ${job})`, SKIPPED];
  const ticks: number[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: { job?: string; jobId?: string; msg?: string; org?: string };
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (entry.job !== job || !messages.includes(entry.msg ?? '') || entry.org !== organization) continue;
    const scheduler = organization === undefined ? job : `${job}@${organization}`;
    const m = new RegExp(`^repeat:${scheduler}:(\\d+)$`).exec(entry.jobId ?? '');
    if (m) ticks.push(Number(m[1]));
  }
  return ticks;
}
