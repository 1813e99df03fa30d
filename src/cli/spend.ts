import { requireEnv } from '../app.ts';
import { connectionSchema } from '../config/index.ts';
import { createDb } from '../db/index.ts';
import type { Repos } from '../db/repos/index.ts';
import { createRepos } from '../db/repos/index.ts';
import { formatUsd, type Pico, picoToUsd, usdToPico } from '../money.ts';
import { terminalJson } from '../notify/escape.ts';
import { type SpendReport, type SpendRow, spendReport } from '../spend/report.ts';
import { actorName, actorTypeText, billedShare, rankActors } from '../usage/core/actors.ts';
import { type Command, loadCliConfig, ORG_USAGE, parse, pickOrganization, takeOrg, UsageError } from './command.ts';
import { formatTable } from './keys.ts';

export function formatSpendReport(report: SpendReport): string {
  const usd = (v: string | null) => (v === null ? '—' : formatUsd(usdToPico(v)));
  // the billed column only where the analytics cost API gave a bill: without it every figure is priced, as before
  const billed = report.rows.some((r) => r.billedMonthToDateUsd != null);
  const table = formatTable(
    [
      'SCOPE',
      'NAME',
      'LIMIT',
      billed ? 'MONTH TO DATE (PRICED)' : 'MONTH TO DATE',
      ...(billed ? ['BILLED (UTC)'] : []),
      'P50',
      'P90',
      'P90 % OF LIMIT',
      'LIMIT REACHED (P50 / P90)',
    ],
    report.rows.map((r) => [
      r.scopeType,
      r.name,
      usd(r.limitUsd),
      usd(r.monthToDateUsd),
      ...(billed ? [usd(r.billedMonthToDateUsd ?? null)] : []),
      usd(r.p50Usd),
      usd(r.p90Usd),
      r.p90ShareOfLimit === null ? '—' : `${(r.p90ShareOfLimit * 100).toFixed(1)}%`,
      crossingText(r),
    ]),
  );
  const heading = `Spend for ${report.month}, projected at ${report.madeAt.slice(0, 16).replace('T', ' ')} UTC (month-end p50: likely, p90: 90th percentile)`;
  if (!billed) return `${heading}\n\n${table}`;
  const legend =
    "Priced: usage × keywarden's price table (projections and limits use it). Billed: what Anthropic bills this UTC " +
    'month per the analytics cost API (post-discount).';
  return `${heading}\n${legend}\n\n${table}`;
}

/** `keywarden spend --by actor`: who is behind this UTC month's billed spend. */
export interface ActorReport {
  /** UTC month, YYYY-MM: the bill's days are UTC days. */
  month: string;
  until: string;
  /** Exact USD as decimal strings. */
  billedUsd: string;
  actors: {
    type: string | null;
    id: string;
    /** A user's email, else the type and id ("service account sa_…"): organization-controlled text. */
    name: string;
    billedUsd: string;
    listUsd: string;
    /** Of the month's billed total (0–1). */
    share: number;
    requests: number;
    keys: number;
  }[];
}

/** Billed spend per actor this UTC month up to `now`; null where nothing billed is stored (no analytics access). */
export async function actorReport(repos: Pick<Repos, 'billing'>, now: Date): Promise<ActorReport | null> {
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const actors = rankActors(await repos.billing.actorSpend(from, now));
  if (actors.length === 0) return null;
  const total: Pico = actors.reduce((sum, a) => sum + a.billed, 0n);
  return {
    month: from.toISOString().slice(0, 7),
    until: now.toISOString(),
    billedUsd: picoToUsd(total),
    actors: actors.map((a) => ({
      type: a.type,
      id: a.id,
      name: actorName(a),
      billedUsd: picoToUsd(a.billed),
      listUsd: picoToUsd(a.list),
      share: billedShare(a.billed, total),
      requests: a.requests,
      keys: a.keys,
    })),
  };
}

export function formatActorReport(report: ActorReport): string {
  const table = formatTable(
    ['ACTOR', 'TYPE', 'BILLED (UTC)', 'LIST PRICE', 'SHARE', 'REQUESTS', 'KEYS'],
    report.actors.map((a) => [
      a.name,
      actorTypeText(a.type),
      formatUsd(usdToPico(a.billedUsd)),
      formatUsd(usdToPico(a.listUsd)),
      `${(a.share * 100).toFixed(1)}%`,
      String(a.requests),
      String(a.keys),
    ]),
  );
  return (
    `Billed spend by actor for ${report.month} (UTC), up to ${report.until.slice(0, 16).replace('T', ' ')} UTC: ` +
    `${formatUsd(usdToPico(report.billedUsd))} in all, per the analytics cost API (post-discount).\n\n${table}`
  );
}

function crossingText(r: SpendRow): string {
  if (r.limitUsd === null) return '—';
  if (usdToPico(r.monthToDateUsd) >= usdToPico(r.limitUsd)) return 'already reached';
  return `${r.crossingP50 ?? 'not this month'} / ${r.crossingP90 ?? 'not this month'}`;
}

export const spendCommand: Command = {
  summary: 'month to date, month-end projection (p50, p90) and limit of the organization, each workspace and key',
  usage: `keywarden spend [--by actor] [--json] [--org <id>]

  Reads the newest projections project-spend stored (run \`keywarden run project-spend --once\` first); changes
  nothing. Columns: limit, month to date (priced by keywarden), billed this UTC month (the analytics cost API; — where
  the organization has no access), p50 and p90 month total, p90 as a share of the limit, and the dates the
  limit is expected to be reached on the p50 and p90 paths.
  --by actor  instead: this UTC month's billed spend per actor (user email, service account, federated identity,
              or a key with no principal), from the analytics cost API; needs its access
  --json  machine-readable (exact USD amounts as decimal strings; monthToDateUsd is priced, billedMonthToDateUsd
          billed or null)
${ORG_USAGE}`,
  async run(argv) {
    const { org: orgId, rest: args } = takeOrg(argv);
    const { values } = parse(args, { json: { type: 'boolean' }, by: { type: 'string' } });
    if (values.by !== undefined && values.by !== 'actor')
      throw new UsageError(`--by: "${values.by}" is not a grouping keywarden knows (only "actor")`);
    const config = loadCliConfig();
    requireEnv(config, ['database'], 'spend');
    const org = pickOrganization(config, orgId);
    const db = createDb(config.env.databaseUrl!, { max: 2, schema: connectionSchema(org) });
    try {
      if (values.by === 'actor') {
        const report = await actorReport(createRepos(db), new Date());
        if (values.json) console.log(terminalJson(report));
        else
          console.log(
            report
              ? formatActorReport(report)
              : 'no billed cost stored: the analytics cost API is refused for this organization, or ' +
                  '`keywarden run reconcile-costs --once` has not read it yet',
          );
        return 0;
      }
      const report = await spendReport(createRepos(db));
      if (values.json) console.log(terminalJson(report));
      else
        console.log(
          report ? formatSpendReport(report) : 'no projections stored yet: run `keywarden run project-spend --once`',
        );
      return 0;
    } finally {
      await db.destroy();
    }
  },
};
