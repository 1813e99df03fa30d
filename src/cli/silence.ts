import { userInfo } from 'node:os';
import { MATCHER_FIELDS, type SilenceMatchers } from '../alerts/core/silences.ts';
import { requireEnv } from '../app.ts';
import { systemClock } from '../clock.ts';
import { parseDuration } from '../config/duration.ts';
import { connectionSchema } from '../config/index.ts';
import type { Context } from '../context.ts';
import { createDb } from '../db/index.ts';
import { createRepos } from '../db/repos/index.ts';
import { terminalJson, terminalText } from '../notify/escape.ts';
import { type Command, loadCliConfig, ORG_USAGE, parse, pickOrganization, takeOrg, UsageError } from './command.ts';

/**
 * `keywarden silence add|list|expire`: silences by hand, as Alertmanager's amtool makes them. An alert a silence
 * matches still fires and resolves in the record (`keywarden alerts`) but sends nothing until the silence ends.
 */

const USAGE = `keywarden silence add --for <duration> --comment <text> [--by <name>] [--kind <glob>] [--scope <glob>] [--key <glob>] [--workspace <glob>]
keywarden silence list [--all] [--json]
keywarden silence expire <id>

  add     at least one matcher (kind, scope, key, workspace: globs with * and ?); every one given must match
  list    silences in force or to come; --all: expired ones too
  expire  ends a silence now
${ORG_USAGE}`;

const OPTIONS = {
  for: { type: 'string' },
  comment: { type: 'string' },
  by: { type: 'string' },
  kind: { type: 'string' },
  scope: { type: 'string' },
  key: { type: 'string' },
  workspace: { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** Runs one silence subcommand at `now`; returns the text to print. Throws UsageError for a bad command line. */
export async function silenceCommand(
  ctx: Pick<Context, 'repos'>,
  args: string[],
  now: Date,
  user: string,
): Promise<string> {
  const [sub, ...rest] = args;
  if (sub === 'add') {
    const { values } = parse(rest, OPTIONS);
    const ms = values.for === undefined ? null : parseDuration(values.for);
    if (ms === null || ms <= 0) throw new UsageError('--for: how long, as a duration like 30m, 4h, 2d');
    if (!values.comment?.trim()) throw new UsageError('--comment: say why (it is shown with the silence)');
    const matchers: SilenceMatchers = {};
    for (const f of MATCHER_FIELDS) {
      const v = f === 'fingerprint' ? undefined : values[f];
      if (v !== undefined && v !== '') matchers[f] = v;
    }
    if (Object.keys(matchers).length === 0) {
      throw new UsageError(
        'name at least one of --kind, --scope, --key, --workspace (a silence of everything is refused)',
      );
    }
    const { silence } = await ctx.repos.silences.add(
      {
        matchers,
        startsAt: now,
        endsAt: new Date(now.getTime() + ms),
        createdBy: values.by ?? user,
        comment: values.comment,
      },
      now,
    );
    return `silence ${silence.id} until ${silence.endsAt.toISOString()}`;
  }
  if (sub === 'list') {
    const { values } = parse(rest, OPTIONS);
    const silences = await ctx.repos.silences.list({ all: values.all === true, now });
    if (values.json) return terminalJson(silences);
    if (silences.length === 0) return values.all ? 'No silences.' : 'No silences in force.';
    return silences
      .map((s) => {
        const state =
          s.expiredAt !== null ? 'expired' : s.endsAt <= now ? 'ended' : s.startsAt > now ? 'pending' : 'active';
        const matchers = Object.entries(s.matchers)
          .map(([k, v]) => `${k}=${terminalText(String(v))}`)
          .join(' ');
        return `${state.padEnd(8)} ${s.id}  until ${s.endsAt.toISOString()}  ${matchers}\n         by ${terminalText(s.createdBy)}: ${terminalText(s.comment)}`;
      })
      .join('\n');
  }
  if (sub === 'expire') {
    const { positionals } = parse(rest, {}, 1);
    const [id] = positionals;
    if (id === undefined) throw new UsageError('expire: which silence (its id, from keywarden silence list)');
    if (!(await ctx.repos.silences.expire(id, now))) {
      throw new UsageError(`no silence in force has id "${terminalText(id)}" (keywarden silence list shows them)`);
    }
    return `silence ${id} expired`;
  }
  throw new UsageError(`silence: say add, list or expire\n\n${USAGE}`);
}

export const silenceCliCommand: Command = {
  summary: 'add, list and expire silences (matching alerts are recorded but not sent)',
  usage: USAGE,
  async run(argv) {
    const { org: orgId, rest: args } = takeOrg(argv);
    const config = loadCliConfig();
    requireEnv(config, ['database'], 'silence');
    const org = pickOrganization(config, orgId);
    const db = createDb(config.env.databaseUrl!, { max: 2, schema: connectionSchema(org) });
    try {
      // who ran it, as the machine knows them: `--by` says it better where several people share an account
      const user = `cli:${userInfo().username}`;
      console.log(await silenceCommand({ repos: createRepos(db) }, args, systemClock.now(), user));
      return 0;
    } finally {
      await db.destroy();
    }
  },
};
