import { requireEnv } from '../app.ts';
import { createDb } from '../db/index.ts';
import { createRepos } from '../db/repos/index.ts';
import { formatUsd, usdToPico } from '../money.ts';
import { terminalJson } from '../notify/escape.ts';
import { type SpendReport, type SpendRow, spendReport } from '../spend/report.ts';
import { type Command, loadCliConfig, parse } from './command.ts';
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

function crossingText(r: SpendRow): string {
  if (r.limitUsd === null) return '—';
  if (usdToPico(r.monthToDateUsd) >= usdToPico(r.limitUsd)) return 'already reached';
  return `${r.crossingP50 ?? 'not this month'} / ${r.crossingP90 ?? 'not this month'}`;
}

export const spendCommand: Command = {
  summary: 'month to date, month-end projection (p50, p90) and limit of the organization, each workspace and key',
  usage: `keywarden spend [--json]

  Reads the newest projections project-spend stored (run \`keywarden run project-spend --once\` first); changes
  nothing. Columns: limit, month to date (priced by keywarden), billed this UTC month (the analytics cost API; — where
  the organization has no access), p50 and p90 month total, p90 as a share of the limit, and the dates the
  limit is expected to be reached on the p50 and p90 paths.
  --json  machine-readable (exact USD amounts as decimal strings; monthToDateUsd is priced, billedMonthToDateUsd
          billed or null)`,
  async run(args) {
    const { values } = parse(args, { json: { type: 'boolean' } });
    const config = loadCliConfig();
    requireEnv(config, ['database'], 'spend');
    const db = createDb(config.env.databaseUrl!, { max: 2 });
    try {
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
