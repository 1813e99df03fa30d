import { CONSOLE_COST_URL } from '../console.ts';
import type { StoredProjection } from '../db/repos/spend.ts';
import { formatUsd, type Pico, picoToNumberUsd } from '../money.ts';
import type { SpendChart } from '../notify/chart.ts';
import type { DigestMessage, DigestSection, NotificationField } from '../notify/message.ts';
import { dayNumber, daysInMonth, formatDay } from '../spend/core/calendar.ts';
import { actorName, actorTypeText } from '../usage/core/actors.ts';
import type { FinanceData, ScopeSpend } from './finance-data.ts';
import { formatLongDate, formatMonth, formatShortDate } from './period.ts';

/**
 * The daily finance digest, composed from loaded data: the month so far, where it is projected to end, the limit,
 * the keys and workspaces that spend the most, and the days where priced usage drifts from the cost report.
 * Pure: data in, message and chart numbers out.
 */

interface FinanceDigest {
  message: DigestMessage;
  chart: SpendChart;
  /** The chart in words: the image's alt text, for screen readers and mail clients that block images. */
  chartAlt: string;
}

/** Enough rows to see who spends; the rest are counted. */
const TOP_ROWS = 10;

function percent(part: Pico, whole: Pico): string {
  if (whole === 0n) return '–';
  // basis points in bigint, then one decimal for people
  const bp = (part * 10_000n) / whole;
  return `${(Number(bp) / 100).toFixed(bp < 1000n ? 1 : 0)}%`;
}

/** Projections and limits in whole dollars: cents on an estimate are precision it does not have. */
function dollars(v: Pico): string {
  return formatUsd(v, 0);
}

/** `$3,200 ($2,900–$3,700)`: the median month end and the 80% interval around it. */
function projectionText(p: StoredProjection): string {
  return `${dollars(p.p50)} (${dollars(p.p10)}–${dollars(p.p90)})`;
}

function limitOf(scope: ScopeSpend): Pico | null {
  return scope.projection?.limit ?? null;
}

/** `$1,000 · 64% used`. */
function limitText(limit: Pico | null, spent: Pico): string {
  return limit === null ? '' : `${dollars(limit)} · ${percent(spent, limit)} used`;
}

function topSection(
  title: string,
  scopes: ScopeSpend[],
  total: Pico,
  kind: 'key' | 'workspace',
  empty: string,
): DigestSection {
  const shown = scopes.slice(0, TOP_ROWS);
  const withLimits = shown.some((s) => limitOf(s) !== null);
  const columns: DigestSection['columns'] = [{ label: kind === 'key' ? 'Key' : 'Workspace' }];
  if (kind === 'key') columns.push({ label: 'Workspace' });
  // where the analytics cost API answers, the bill stands beside keywarden's own pricing, each named
  const withBilled = shown.some((s) => s.billed != null);
  if (withBilled) columns.push({ label: 'Priced', align: 'right' }, { label: 'Billed', align: 'right' });
  else columns.push({ label: 'Spent', align: 'right' });
  columns.push({ label: 'Share', align: 'right' }, { label: 'Projected month end', align: 'right' });
  if (withLimits) columns.push({ label: 'Limit', align: 'right' });
  const rows = shown.map((s) => {
    const row = [s.name];
    if (kind === 'key') row.push(s.workspaceName ?? '');
    row.push(formatUsd(s.mtd));
    if (withBilled) row.push(s.billed == null ? '–' : formatUsd(s.billed));
    row.push(percent(s.mtd, total), s.projection ? projectionText(s.projection) : '–');
    if (withLimits) row.push(limitText(limitOf(s), s.mtd));
    return row;
  });
  return { title, columns, rows, empty, more: scopes.length - shown.length };
}

/** Who is behind the bill: the analytics cost API's actors this UTC month, by billed spend. */
function actorSection(data: FinanceData): DigestSection | null {
  const actors = data.actors ?? [];
  if (actors.length === 0) return null;
  const total = actors.reduce((sum, a) => sum + a.billed, 0n);
  const shown = actors.slice(0, TOP_ROWS);
  return {
    title: 'Top actors this month (billed, UTC month)',
    columns: [
      { label: 'Actor' },
      { label: 'Type' },
      { label: 'Billed', align: 'right' },
      { label: 'Share', align: 'right' },
      { label: 'Keys', align: 'right' },
    ],
    rows: shown.map((a) => [
      actorName(a),
      actorTypeText(a.type),
      formatUsd(a.billed),
      percent(a.billed, total),
      String(a.keys),
    ]),
    empty: 'No actor has billed spend this month.',
    more: actors.length - shown.length,
  };
}

function driftSection(data: FinanceData): DigestSection {
  const shown = data.drift.slice(0, TOP_ROWS * 2);
  return {
    title: 'Priced usage against the cost report (drift over 2%)',
    columns: [
      { label: 'Day (UTC)' },
      { label: 'Workspace' },
      { label: 'Cost report', align: 'right' },
      { label: 'Priced usage', align: 'right' },
      { label: 'Drift', align: 'right' },
    ],
    rows: shown.map((d) => [
      formatShortDate(d.day),
      d.workspaceName,
      formatUsd(d.reported),
      formatUsd(d.priced),
      Number.isFinite(d.ratio)
        ? `${d.priced >= d.reported ? '+' : '−'}${(d.ratio * 100).toFixed(1)}%`
        : 'not in report',
    ]),
    empty: 'Priced usage matches the cost report within 2% on every day reconciled this month.',
    more: data.drift.length - shown.length,
  };
}

/** Enterprise: who waits for a higher spend limit, how much they have and spend now, and since when. */
function increaseSection(data: FinanceData): DigestSection | null {
  const pending = data.increaseRequests;
  if (pending == null) return null;
  const title = 'Spend limit increase requests waiting for an answer';
  const columns: DigestSection['columns'] = [
    { label: 'Member' },
    { label: 'Period' },
    { label: 'Limit now', align: 'right' },
    { label: 'Spent this period', align: 'right' },
    { label: 'Asked on' },
  ];
  if (pending === 'unavailable') {
    return { title, columns, rows: [], empty: 'The increase requests could not be read this time.', more: 0 };
  }
  const shown = pending.slice(0, TOP_ROWS);
  const waited = (since: Date) => Math.floor((data.asOf.getTime() - since.getTime()) / 86_400_000);
  return {
    title,
    columns,
    rows: shown.map((r) => [
      r.who,
      r.period,
      r.limit === null ? '–' : formatUsd(r.limit),
      r.spent === null
        ? '–'
        : r.limit === null
          ? formatUsd(r.spent)
          : `${formatUsd(r.spent)} (${percent(r.spent, r.limit)})`,
      `${formatShortDate(r.since.toISOString().slice(0, 10))} (${waited(r.since)} d ago)`,
    ]),
    empty: 'No member is waiting for a higher spend limit.',
    more: pending.length - shown.length,
  };
}

/** Cumulative spend at the end of each day from the 1st to today; a day without usage adds nothing. */
function cumulativeByDay(data: FinanceData): Pico[] {
  const first = dayNumber(`${data.today.slice(0, 8)}01`);
  const spent = new Map(data.dailySpend.map((d) => [d.date, d.usd]));
  const out: Pico[] = [];
  let total = 0n;
  for (let day = first; day <= dayNumber(data.today); day++) {
    total += spent.get(formatDay(day)) ?? 0n;
    out.push(total);
  }
  return out;
}

/** When the limit is expected to be reached, in words; null when no projection says anything about it. */
function crossingText(p: StoredProjection): string | null {
  if (p.crossingP50 !== null) {
    const early =
      p.crossingP90 !== null && p.crossingP90 < p.crossingP50
        ? `, possibly from ${formatShortDate(p.crossingP90)}`
        : '';
    return `expected on ${formatShortDate(p.crossingP50)}${early}`;
  }
  if (p.crossingP90 !== null)
    return `unlikely; possible from ${formatShortDate(p.crossingP90)} at the high end of the range`;
  return 'not expected this month';
}

export function composeFinanceDigest(data: FinanceData): FinanceDigest {
  const month = formatMonth(data.today);
  const [year, mon] = data.today.split('-').map(Number) as [number, number];
  const cumulative = cumulativeByDay(data);
  const mtd = cumulative.at(-1) ?? 0n;
  const yesterday = data.dailySpend.find((d) => d.date === formatDay(dayNumber(data.today) - 1))?.usd ?? 0n;
  const projection = data.organization;
  const limit = projection?.limit ?? data.organizationLimit;
  const name = data.organizationName;

  const fields: NotificationField[] = [
    { label: `Spent in ${month}`, value: formatUsd(mtd) },
    ...(data.billedMtd == null ? [] : [{ label: 'Billed by Anthropic (UTC month)', value: formatUsd(data.billedMtd) }]),
    { label: 'Yesterday', value: formatUsd(yesterday) },
    {
      label: 'Projected month end',
      value: projection
        ? `${dollars(projection.p50)} (likely ${dollars(projection.p10)}–${dollars(projection.p90)})`
        : 'no projection yet',
    },
    { label: 'Monthly limit', value: limit === null ? 'none set' : limitText(limit, mtd) },
  ];
  if (projection && limit !== null) {
    fields.push({ label: 'Limit reached', value: crossingText(projection) ?? '' });
  }

  const sentences = [`${name} has spent ${formatUsd(mtd)} in ${month} so far.`];
  if (projection) {
    sentences.push(
      `The month is projected to end at ${dollars(projection.p50)}, likely between ${dollars(projection.p10)} and ${dollars(projection.p90)}.`,
    );
  }
  if (limit !== null && projection) {
    if (projection.p50 >= limit) sentences.push(`At this rate it will exceed its ${dollars(limit)} limit.`);
    else if (projection.p90 >= limit) sentences.push(`It may exceed its ${dollars(limit)} limit.`);
  }
  if (data.drift.length > 0) {
    const days = new Set(data.drift.map((d) => d.day)).size;
    sentences.push(
      `On ${days} ${days === 1 ? 'day' : 'days'} priced usage differs from the cost report by more than 2% (listed below).`,
    );
  }

  const billedNote =
    data.billedMtd == null
      ? ''
      : " Priced figures are usage × keywarden's price table; Billed is what the analytics cost API says Anthropic bills (post-discount, UTC days).";
  const footer =
    (projection
      ? `Spend is priced from usage up to ${data.asOf.toISOString().slice(11, 16)} UTC. Projection made ${projection.madeAt.toISOString().slice(0, 16).replace('T', ' ')} UTC; the range is the 10th to 90th percentile.`
      : `Spend is priced from usage up to ${data.asOf.toISOString().slice(11, 16)} UTC.`) + billedNote;

  const actors = actorSection(data);
  const message: DigestMessage = {
    kind: 'digest.finance',
    title: `Finance digest: ${name}, ${formatLongDate(data.today)}`,
    summary: sentences.join(' '),
    fields,
    sections: [
      topSection('Top keys this month', data.keys, mtd, 'key', 'No key has spent anything this month.'),
      topSection(
        'Top workspaces this month',
        data.workspaces,
        mtd,
        'workspace',
        'No workspace has spent anything this month.',
      ),
      ...(actors ? [actors] : []),
      driftSection(data),
      ...[increaseSection(data)].filter((x): x is DigestSection => x !== null),
    ],
    links: [{ label: 'Cost in the Console', url: CONSOLE_COST_URL }],
    footer,
  };

  // Month-end figures never below what is spent already: a projection made hours ago may trail today's spend.
  const atLeastMtd = (v: Pico) => picoToNumberUsd(v > mtd ? v : mtd);
  const chart: SpendChart = {
    title: `${name}: spend in ${month}`,
    monthLabel: month,
    timezone: data.timezone,
    daysInMonth: daysInMonth({ year, month: mon }),
    cumulativeUsd: cumulative.map(picoToNumberUsd),
    projection: projection
      ? { p10: atLeastMtd(projection.p10), p50: atLeastMtd(projection.p50), p90: atLeastMtd(projection.p90) }
      : null,
    limitUsd: limit === null ? null : picoToNumberUsd(limit),
  };
  const chartAlt = [
    `Cumulative spend in ${month}: ${formatUsd(mtd)} by ${formatShortDate(data.today)}`,
    projection
      ? `projected ${dollars(projection.p50)} at month end (likely ${dollars(projection.p10)}–${dollars(projection.p90)})`
      : 'no projection yet',
    limit === null ? 'no limit set' : `limit ${dollars(limit)}`,
  ].join('; ');
  return { message, chart, chartAlt: `${chartAlt}.` };
}
