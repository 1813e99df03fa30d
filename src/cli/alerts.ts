import { type AlertListing, listAlerts } from '../alerts/list.ts';
import { requireEnv } from '../app.ts';
import { connectionSchema } from '../config/index.ts';
import type { Context } from '../context.ts';
import { createDb } from '../db/index.ts';
import { createRepos } from '../db/repos/index.ts';
import { terminalJson, terminalText } from '../notify/escape.ts';
import { type Command, loadCliConfig, ORG_USAGE, parse, pickOrganization, takeOrg } from './command.ts';

/**
 * `keywarden alerts [--all] [--json]`: the alerts (firing ones, or every one with --all) and, under each, the
 * deliveries that speak for it with their state, as text to print.
 */
export async function alertsCommand(ctx: Pick<Context, 'repos'>, args: readonly string[]): Promise<string> {
  const result = await listAlerts(ctx, { all: args.includes('--all') });
  if (args.includes('--json')) return terminalJson(result);
  return formatAlertList(result, args.includes('--all'));
}

/**
 * The alerts as lines for the terminal. Titles quote key and workspace names, targets can be an owner's address from
 * the API, and delivery errors quote the receiver: all go through `terminalText`.
 */
export function formatAlertList(result: AlertListing[], all: boolean): string {
  if (result.length === 0) return all ? 'No alerts.' : 'No firing alerts.';
  const lines: string[] = [];
  for (const a of result) {
    const inhibited = a.inhibitedBy === null ? '' : ` (inhibited by ${terminalText(a.inhibitedBy)})`;
    const acked = a.acknowledgedBy == null ? '' : ` (acknowledged by ${terminalText(a.acknowledgedBy)})`;
    lines.push(
      `${a.state.padEnd(8)} ${a.severity.padEnd(8)} ${a.kind}  "${terminalText(a.title)}"${inhibited}${acked}`,
    );
    lines.push(
      `         since ${a.startedAt}${a.resolvedAt === null ? '' : `, resolved ${a.resolvedAt}`}  [${a.fingerprint}]`,
    );
    for (const d of a.deliveries) {
      const when = d.sentAt ?? (d.nextAttemptAt === null ? '' : `next try ${d.nextAttemptAt}`);
      const dup = d.possiblyDuplicate ? ' possibly duplicated' : '';
      const err = d.lastError === null || d.status === 'sent' ? '' : ` — ${terminalText(d.lastError)}`;
      lines.push(
        `         ${d.event.padEnd(8)} ${d.channel} ${terminalText(d.target)}: ${d.status} (${d.attempts} attempts) ${when}${dup}${err}`,
      );
    }
  }
  return lines.join('\n');
}

export const alertsListCommand: Command = {
  summary: 'list alerts (firing by default) and their deliveries with state',
  usage: `keywarden alerts [--all] [--json] [--org <id>]\n\n  --all   resolved alerts too\n  --json  machine-readable\n${ORG_USAGE}`,
  async run(argv) {
    const { org: orgId, rest: args } = takeOrg(argv);
    parse(args, { all: { type: 'boolean' }, json: { type: 'boolean' } });
    const config = loadCliConfig();
    requireEnv(config, ['database'], 'alerts');
    const org = pickOrganization(config, orgId);
    const db = createDb(config.env.databaseUrl!, { max: 2, schema: connectionSchema(org) });
    try {
      console.log(await alertsCommand({ repos: createRepos(db) }, args));
      return 0;
    } finally {
      await db.destroy();
    }
  },
};
