import { type Command, durationArg, parse, UsageError } from './command.ts';

export const demoCommand: Command = {
  summary: 'start everything on this machine (Postgres, Redis, emulator, Slack and mail sinks, worker) and watch',
  usage: `keywarden demo [--out <dir>] [--exit-after <duration>] [--exit-when-shown]

  --out              where emails (.eml, .html), the worker log and the demo's policy file go (default demo-out)
  --exit-after       stop by itself after this long (default: run until Ctrl-C)
  --exit-when-shown  stop as soon as every kind of finding has been shown (exit 1 if --exit-after comes first)
  It says "demo: everything shown" when it has; without --exit-when-shown it keeps running for you to explore.
  Uses DATABASE_URL / REDIS_URL when set; else a container runtime; else local postgres and redis-server binaries.`,
  async run(args) {
    const { values } = parse(args, {
      out: { type: 'string' },
      'exit-after': { type: 'string' },
      'exit-when-shown': { type: 'boolean' },
    });
    const { runDemo } = await import('../demo/run.ts').catch((err: NodeJS.ErrnoException) => {
      // its SMTP sink (smtp-server, mailparser) is a development dependency: a production install has none
      if (err.code !== 'ERR_MODULE_NOT_FOUND') throw err;
      throw new UsageError(
        `the demo needs the development dependencies (${err.message.split('\n')[0]}): run \`npm ci\` without --omit=dev`,
      );
    });
    return runDemo({
      outDir: values.out ?? 'demo-out',
      exitAfterMs: values['exit-after'] === undefined ? null : durationArg('exit-after', values['exit-after'], 0),
      exitWhenShown: values['exit-when-shown'] === true,
      say: (line) => console.log(line),
    });
  },
};
