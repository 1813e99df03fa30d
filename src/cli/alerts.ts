import { sql } from 'kysely';
import { requireEnv } from '../app.ts';
import { createDb, type Db } from '../db/index.ts';
import { terminalJson, terminalText } from '../notify/escape.ts';
import { type Command, loadCliConfig, parse } from './command.ts';

/**
 * `keywarden alerts [--all] [--json]`: the alerts (firing ones, or every one with --all) and, under each, the
 * deliveries that speak for it with their state, as text to print.
 */
export async function alertsCommand(db: Db, args: readonly string[]): Promise<string> {
  const json = args.includes('--json');
  let query = db.selectFrom('alerts').selectAll().orderBy('started_at', 'desc').orderBy('id');
  if (!args.includes('--all')) query = query.where('state', '=', 'firing');
  const alerts = await query.execute();
  const deliveries =
    alerts.length === 0
      ? []
      : await db
          .selectFrom('notifications')
          .select([
            'id',
            'event',
            'channel',
            'target',
            'status',
            'attempts',
            'possibly_duplicate',
            'last_error',
            'sent_at',
            'next_attempt_at',
            sql<string[]>`ARRAY(SELECT jsonb_array_elements_text(payload->'fingerprints'))`.as('fingerprints'),
          ])
          .where(sql<boolean>`payload->'fingerprints' ?| ${sql.val(alerts.map((a) => a.fingerprint))}::text[]`)
          .orderBy('id')
          .execute();
  const result: AlertListing[] = alerts.map((a) => ({
    fingerprint: a.fingerprint,
    kind: a.kind,
    severity: a.severity,
    state: a.state,
    title: a.title,
    startedAt: new Date(a.started_at).toISOString(),
    lastSeenAt: new Date(a.last_seen_at).toISOString(),
    resolvedAt: a.resolved_at === null ? null : new Date(a.resolved_at).toISOString(),
    inhibitedBy: a.inhibited_by,
    deliveries: deliveries
      .filter((d) => d.fingerprints.includes(a.fingerprint))
      .map((d) => ({
        id: d.id,
        event: d.event,
        channel: d.channel,
        target: d.target,
        status: d.status,
        attempts: d.attempts,
        possiblyDuplicate: d.possibly_duplicate,
        lastError: d.last_error,
        sentAt: d.sent_at === null ? null : new Date(d.sent_at).toISOString(),
        nextAttemptAt: d.status === 'pending' ? new Date(d.next_attempt_at).toISOString() : null,
      })),
  }));
  if (json) return terminalJson(result);
  return formatAlertList(result, args.includes('--all'));
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
    lines.push(`${a.state.padEnd(8)} ${a.severity.padEnd(8)} ${a.kind}  "${terminalText(a.title)}"${inhibited}`);
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
      console.log(await alertsCommand(db, args));
      return 0;
    } finally {
      await db.destroy();
    }
  },
};
