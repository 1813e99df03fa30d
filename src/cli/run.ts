import { jobs } from '../../jobs/index.ts';
import { schemaProblem } from '../db/index.ts';
import { terminalJson } from '../notify/escape.ts';
import { exitOnCrash } from '../queue/crash.ts';
import { DEFAULT_PREFIX } from '../queue/queues.ts';
import { enqueueJob, runHandler, withRunLock } from '../queue/runner.ts';
import {
  type Command,
  loadCliConfig,
  ORG_USAGE,
  openApp,
  parse,
  pickOrganization,
  takeOrg,
  UsageError,
} from './command.ts';

export const runCommand: Command = {
  summary: 'run one job now',
  usage: `keywarden run <job> [--once] [--prefix <name>] [--org <id>]

  --once    run the job in this process and wait for it (no worker needed); without it, the job is enqueued for
            the worker
${ORG_USAGE}
  jobs: ${jobs.map((j) => j.name).join(', ') || '(none)'}`,
  async run(args) {
    const { org: orgId, rest } = takeOrg(args);
    const { values, positionals } = parse(rest, { once: { type: 'boolean' }, prefix: { type: 'string' } }, 1);
    const name = positionals[0];
    if (!name) throw new UsageError(`which job? (jobs: ${jobs.map((j) => j.name).join(', ')})`);
    if (!jobs.some((j) => j.name === name)) {
      throw new UsageError(`<job>: no job named "${name}" (jobs: ${jobs.map((j) => j.name).join(', ')})`);
    }
    const config = loadCliConfig();
    const org = pickOrganization(config, orgId);
    const app = await openApp(config, `run ${name}`, values.prefix ?? DEFAULT_PREFIX, org);
    const { ctx, registry, queues } = app;
    try {
      if (values.once) {
        // the job's handler runs in this process, as it would in the worker: on the schema the worker would accept
        const schema = await schemaProblem(app.db);
        if (schema !== null) throw new Error(schema);
        exitOnCrash(ctx.log);
        const controller = new AbortController();
        process.once('SIGINT', () => controller.abort(new Error('interrupted')));
        // progress on stderr: stdout keeps the result, for scripts
        const progress = (line: string) => process.stderr.write(`${line}\n`);
        // one run of a job at a time, the worker's included: a second poll or enforcement beside it is refused
        const ran = await withRunLock(
          app.db,
          registry,
          name,
          () =>
            runHandler({ ...ctx, progress }, registry, name, {}, { id: 'cli', attempt: 1, signal: controller.signal }),
          org.id,
        );
        if (ran === null) {
          throw new Error(
            `another run of ${name} is in progress (a worker's, or another run --once): run it when that one ends`,
          );
        }
        if (ran.value !== undefined) console.log(terminalJson(ran.value));
        return 0;
      }
      const job = await enqueueJob(registry, queues, name, {}, undefined, org.id);
      console.log(`enqueued ${name} as job ${job.id}; a running worker will pick it up`);
      return 0;
    } finally {
      await app.close();
    }
  },
};
