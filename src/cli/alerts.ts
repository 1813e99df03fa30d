import { requireEnv } from '../app.ts';
import type { Context } from '../context.ts';
import { createDb } from '../db/index.ts';
import { createRepos } from '../db/repos/index.ts';
import { terminalJson, terminalText } from '../notify/escape.ts';
import { type Command, loadCliConfig, parse } from './command.ts';

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
 * The alerts, newest first, each with its deliveries: the firing ones, those resolved since `resolvedSince` too,
 * or every one with `all`. For the CLI and the status page.
 */
export async function listAlerts(
  ctx: Pick<Context, 'repos'>,
  opts: { all: boolean; resolvedSince?: Date },
): Promise<AlertListing[]> {
  const alerts = await ctx.repos.alerts.list(opts);
  const deliveries = await ctx.repos.outbox.deliveriesFor(alerts.map((a) => a.fingerprint));
  const result: AlertListing[] = alerts.map((a) => ({
    fingerprint: a.fingerprint,
    kind: a.kind,
    severity: a.severity,
    state: a.state,
    title: a.title,
    startedAt: a.startedAt.toISOString(),
    lastSeenAt: a.lastSeenAt.toISOString(),
    resolvedAt: a.resolvedAt === null ? null : a.resolvedAt.toISOString(),
    inhibitedBy: a.inhibitedBy,
    acknowledgedBy: a.acknowledgedBy,
    deliveries: deliveries
      .filter((d) => d.fingerprints.includes(a.fingerprint))
      .map((d) => ({
        id: d.id,
        event: d.event,
        channel: d.channel,
        target: d.target,
        status: d.status,
        attempts: d.attempts,
        possiblyDuplicate: d.possiblyDuplicate,
        lastError: d.lastError,
        sentAt: d.sentAt === null ? null : d.sentAt.toISOString(),
        nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt.toISOString() : null,
      })),
  }));
  return result;
}

export interface AlertListing {
  fingerprint: string;
  kind: string;
  severity: string;
  state: string;
  title: string;
  startedAt: string;
  lastSeenAt: string;
  resolvedAt: string | null;
  inhibitedBy: string | null;
  /** The Slack user id of who acknowledged this episode (its repeats stop). */
  acknowledgedBy?: string | null;
  deliveries: Array<{
    id: string;
    event: string;
    channel: string;
    target: string;
    status: string;
    attempts: number;
    possiblyDuplicate: boolean;
    lastError: string | null;
    sentAt: string | null;
    nextAttemptAt: string | null;
  }>;
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
  usage: 'keywarden alerts [--all] [--json]\n\n  --all   resolved alerts too\n  --json  machine-readable',
  async run(args) {
    parse(args, { all: { type: 'boolean' }, json: { type: 'boolean' } });
    const config = loadCliConfig();
    requireEnv(config, ['database'], 'alerts');
    const db = createDb(config.env.databaseUrl!, { max: 2 });
    try {
      console.log(await alertsCommand({ repos: createRepos(db) }, args));
      return 0;
    } finally {
      await db.destroy();
    }
  },
};
