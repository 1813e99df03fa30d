import type { AlertListing } from '../../alerts/list.ts';
import { OVERDUE_ROTATION_STAGES } from '../../kinds.ts';
import { formatUsd, type Pico, picoToNumberUsd, usdToPico } from '../../money.ts';
import { escapeHtml, terminalText } from '../../notify/escape.ts';
import type { KeyRow } from '../../rotation/key-rows.ts';
import type { SpendRow } from '../../spend/report.ts';
import { RECENT_DAYS, type StatusData } from './load.ts';

/**
 * The status page as HTML: pure, from what `loadStatus` read. Every table works without JavaScript (sorting and the
 * workspace filter are links and a GET form); the charts are drawn by the served script from the JSON block.
 * Every text from the organization (key, workspace, user names, alert titles, delivery errors) goes through `text`.
 */

/** Escaped for HTML, and control, bidi and zero-width characters shown as escapes, as the CLI shows them. */
function text(value: string): string {
  return escapeHtml(terminalText(value));
}

/** JSON inside `<script type="application/json">`: `<`, `>` and `&` as escapes, so no name can close the element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The rotation groups the keys table sorts into, most urgent first. */
export const ROTATION_GROUPS = ['overdue', 'due soon', 'fine', 'exempt', 'not active'] as const;
type RotationGroup = (typeof ROTATION_GROUPS)[number];

/** A key's group from its stage word (src/rotation/describe.ts). */
export function rotationGroup(stage: string): RotationGroup {
  if (stage === 'ok') return 'fine';
  if (stage === 'exempt') return 'exempt';
  if (stage.startsWith('due_in_')) return 'due soon';
  if ((OVERDUE_ROTATION_STAGES as readonly string[]).includes(stage)) return 'overdue';
  return 'not active';
}

const KEY_SORTS = ['group', 'name', 'workspace', 'deadline', 'owner', 'last_use'] as const;
export type KeySort = (typeof KEY_SORTS)[number];

export interface PageQuery {
  /** `?org=`: which organization's page, where the deployment watches several (none: the first). */
  org: string | null;
  workspace: string | null;
  sort: KeySort;
  descending: boolean;
}

/** Reads the page's query string; anything unknown falls back to the default view. */
export function parsePageQuery(search: URLSearchParams): PageQuery {
  const sort = search.get('sort');
  return {
    org: search.get('org') || null,
    workspace: search.get('workspace') || null,
    sort: (KEY_SORTS as readonly string[]).includes(sort ?? '') ? (sort as KeySort) : 'group',
    descending: search.get('dir') === 'desc',
  };
}

/** The keys the table shows, filtered by workspace and sorted (ties: group, then deadline, then name). */
export function selectKeys(keys: readonly KeyRow[], q: PageQuery): KeyRow[] {
  const groupIndex = (k: KeyRow) => ROTATION_GROUPS.indexOf(rotationGroup(k.stage));
  const sign = q.descending ? -1 : 1;
  // a missing value sorts last whichever way: an unknown deadline is not the most urgent row
  const cmpNullable = (a: string | null, b: string | null, dir = 1) =>
    a === b ? 0 : a === null ? 1 : b === null ? -1 : dir * a.localeCompare(b);
  const by: Record<KeySort, (a: KeyRow, b: KeyRow) => number> = {
    group: (a, b) => sign * (groupIndex(a) - groupIndex(b)),
    name: (a, b) => sign * a.name.localeCompare(b.name),
    workspace: (a, b) => sign * a.workspace.localeCompare(b.workspace),
    deadline: (a, b) => cmpNullable(a.deadline, b.deadline, sign),
    owner: (a, b) => sign * a.owner.localeCompare(b.owner),
    last_use: (a, b) => cmpNullable(a.lastUsage, b.lastUsage, sign),
  };
  const tie = (a: KeyRow, b: KeyRow) =>
    groupIndex(a) - groupIndex(b) || cmpNullable(a.deadline, b.deadline) || a.name.localeCompare(b.name);
  return keys
    .filter((k) => q.workspace === null || k.workspace === q.workspace)
    .sort((a, b) => by[q.sort](a, b) || tie(a, b));
}

const usd = (v: string | null) => (v === null ? '—' : formatUsd(usdToPico(v)));
const time = (d: Date | string | null) =>
  d === null ? '—' : (typeof d === 'string' ? d : d.toISOString()).slice(0, 16).replace('T', ' ');

/** Key rows a person can chart at a glance; the table below lists every scope. */
const CHARTED_KEYS = 12;

interface ChartData {
  organization: {
    labels: string[];
    spent: (number | null)[];
    p10: (number | null)[];
    p50: (number | null)[];
    p90: (number | null)[];
    limit: number | null;
  } | null;
  /** `max`: the scale's end, shared by every scope of one type, so the bars compare across rows. */
  scopes: { id: string; monthToDate: number; p10: number; p90: number; limit: number | null; max: number }[];
}

/** The series the charts draw, in USD (floats are fine for drawing; every figure printed is exact). */
function chartData(data: StatusData): ChartData {
  const spend = data.spend;
  const org = spend?.rows.find((r) => r.scopeType === 'organization');
  let organization: ChartData['organization'] = null;
  if (spend && org) {
    const [year, month] = spend.month.split('-').map(Number) as [number, number];
    const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
    const labels = Array.from({ length: days }, (_, i) => `${spend.month}-${String(i + 1).padStart(2, '0')}`);
    const daily = new Map(data.dailySpendUsd.map((d) => [d.date, usdToPico(d.usd)]));
    const today = data.today;
    let running: Pico = 0n;
    const spent = labels.map((day) => {
      if (day > today) return null;
      running += daily.get(day) ?? 0n;
      return picoToNumberUsd(running);
    });
    const mtd = picoToNumberUsd(usdToPico(org.monthToDateUsd));
    // the projection runs from today's total to the month-end percentile: two points, the lines joined over the gap
    const path = (end: string) =>
      labels.map((day, i) => (day === today ? mtd : i === days - 1 ? picoToNumberUsd(usdToPico(end)) : null));
    organization = {
      labels,
      spent,
      p10: path(org.p10Usd),
      p50: path(org.p50Usd),
      p90: path(org.p90Usd),
      limit: org.limitUsd === null ? null : picoToNumberUsd(usdToPico(org.limitUsd)),
    };
  }
  const n = (v: string) => picoToNumberUsd(usdToPico(v));
  const charted = chartedScopes(spend?.rows ?? []);
  const maxOf = new Map<string, number>();
  for (const r of charted) {
    const top = Math.max(n(r.p90Usd), n(r.monthToDateUsd), r.limitUsd === null ? 0 : n(r.limitUsd));
    maxOf.set(r.scopeType, Math.max(maxOf.get(r.scopeType) ?? 0, top));
  }
  const scopes = charted.map((r) => ({
    id: scopeDomId(r),
    monthToDate: n(r.monthToDateUsd),
    p10: n(r.p10Usd),
    p90: n(r.p90Usd),
    limit: r.limitUsd === null ? null : n(r.limitUsd),
    max: maxOf.get(r.scopeType) ?? 0,
  }));
  return { organization, scopes };
}

function chartedScopes(rows: readonly SpendRow[]): SpendRow[] {
  const keys = rows.filter((r) => r.scopeType === 'key').slice(0, CHARTED_KEYS);
  return [...rows.filter((r) => r.scopeType !== 'key'), ...keys];
}

/** Element ids carry the row's position, never its name (a name is hostile input, and not unique). */
function scopeDomId(r: SpendRow): string {
  return `chart-${r.scopeType}-${r.scopeId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

function spendSection(data: StatusData): string {
  const spend = data.spend;
  if (spend === null) {
    return section(
      'spend',
      'Spend',
      '<p>No projection stored yet: the worker makes one every 15 minutes (or run <code>keywarden run project-spend --once</code>).</p>',
    );
  }
  const org = spend.rows.find((r) => r.scopeType === 'organization');
  const headline =
    org === undefined
      ? ''
      : `<p class="headline">${text(org.name)}: ${usd(org.monthToDateUsd)} spent this month${org.limitUsd === null ? '' : ` of a ${usd(org.limitUsd)} limit`}; likely ${usd(org.p50Usd)} by month end (p10–p90: ${usd(org.p10Usd)} – ${usd(org.p90Usd)}). ${crossing(org)}</p>`;
  const charted = new Set(chartedScopes(spend.rows).map(scopeDomId));
  const rows = spend.rows.map((r) => {
    const id = scopeDomId(r);
    const chart =
      r.scopeType !== 'organization' && charted.has(id)
        ? `<div class="bullet"><canvas id="${id}" role="img" aria-label="${text(`${r.name}: month to date, p10–p90 band, limit`)}"></canvas></div>`
        : '';
    // the name first with its scope under it, then the figures: on a phone the month to date is on screen
    return `<tr data-scope="${r.scopeType}"><td>${text(r.name)}<br><span class="muted scope">${r.scopeType}</span></td><td class="num">${usd(r.monthToDateUsd)}</td><td class="num">${usd(r.limitUsd)}</td><td class="num">${usd(r.p50Usd)}</td><td class="num">${usd(r.p10Usd)} – ${usd(r.p90Usd)}</td><td>${crossing(r)}</td><td class="chart">${chart}</td></tr>`;
  });
  const driftNote =
    data.drift.length === 0
      ? 'No day this month drifts more than 2% from the cost report.'
      : `${data.drift.length} day(s) this month drift more than 2% from the cost report, the latest ${text(data.drift[0]!.day)} in ${text(data.drift[0]!.workspaceName)} (billed ${formatUsd(data.drift[0]!.reported)}, priced ${formatUsd(data.drift[0]!.priced)}).`;
  return section(
    'spend',
    `Spend, ${text(spend.month)}`,
    `${headline}
<p class="note">Amounts are <strong>priced</strong> usage (tokens × keywarden's price table), the figures <code>keywarden spend</code> prints; what Anthropic <strong>bills</strong> is reconciled daily from the cost report. ${driftNote} Projected ${text(time(spend.madeAt))} UTC.</p>
<div class="org-chart"><canvas id="chart-organization" role="img" aria-label="Organization spend this month: to date, the p10–p90 band to month end, the limit"></canvas></div>
<p class="note">Each row's chart: the bar is the month to date, the shaded box the month-end p10–p90 band, a red tick the limit; workspaces share one scale, keys another (the ${CHARTED_KEYS} largest keys are charted).</p>
<div class="scroll"><table id="spend-table"><thead><tr><th>Scope</th><th>Month to date</th><th>Limit</th><th>Likely (p50)</th><th>Month end p10 – p90</th><th>Limit reached (p50 / p90)</th><th>Chart</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table></div>`,
  );
}

function crossing(r: SpendRow): string {
  if (r.limitUsd === null) return 'No limit.';
  if (usdToPico(r.monthToDateUsd) >= usdToPico(r.limitUsd)) return 'Limit already reached.';
  if (r.crossingP50 === null && r.crossingP90 === null) return 'Not expected to reach the limit this month.';
  return `Limit expected ${text(r.crossingP50 ?? 'not this month')} (likely) / ${text(r.crossingP90 ?? 'not this month')} (fast).`;
}

function keysSection(data: StatusData, q: PageQuery): string {
  const workspaces = [...new Set(data.keys.map((k) => k.workspace))].sort((a, b) => a.localeCompare(b));
  const shown = selectKeys(data.keys, q);
  const counts = ROTATION_GROUPS.map((g) => `${data.keys.filter((k) => rotationGroup(k.stage) === g).length} ${g}`);
  const link = (sort: KeySort, label: string) => {
    const params = new URLSearchParams();
    if (q.org !== null) params.set('org', q.org);
    if (q.workspace !== null) params.set('workspace', q.workspace);
    params.set('sort', sort);
    const descending = q.sort === sort && !q.descending;
    if (descending) params.set('dir', 'desc');
    const mark = q.sort === sort ? (q.descending ? ' ▼' : ' ▲') : '';
    return `<th><a href="?${escapeHtml(params.toString())}#keys">${label}${mark}</a></th>`;
  };
  const options = workspaces.map(
    (w) => `<option value="${text(w)}"${w === q.workspace ? ' selected' : ''}>${text(w)}</option>`,
  );
  const identity = data.alerts.filter(
    (a) => a.state === 'firing' && (a.kind === 'key.identity' || a.kind === 'key.orphaned'),
  );
  const rows = shown.map(
    (k) =>
      `<tr data-group="${rotationGroup(k.stage)}"><td><span class="stage ${rotationGroup(k.stage).replace(' ', '-')}">${rotationGroup(k.stage)}</span></td><td>${text(k.name)}<br><span class="hint">${text(k.hint ?? '')}</span></td><td>${text(k.workspace)}</td><td>${text(k.stage)}</td><td>${text(k.deadline ?? '—')}</td><td>${text(k.owner)}</td><td>${text(k.lastUsage ?? '—')}</td><td>${text(k.successor ?? '')}</td></tr>`,
  );
  return section(
    'keys',
    'Keys by rotation stage',
    `<p class="headline">${counts.join(', ')}.</p>
<form method="get" action="#keys" class="filter"><label>Workspace <select name="workspace"><option value="">every workspace</option>${options.join('')}</select></label>
${q.org === null ? '' : `<input type="hidden" name="org" value="${text(q.org)}">`}<input type="hidden" name="sort" value="${q.sort}">${q.descending ? '<input type="hidden" name="dir" value="desc">' : ''}<button type="submit">Filter</button></form>
<div class="scroll"><table id="keys-table"><thead><tr>${link('group', 'Stage')}${link('name', 'Key')}${link('workspace', 'Workspace')}<th>Stage detail</th>${link('deadline', 'Deadline')}${link('owner', 'Owner')}${link('last_use', 'Last use')}<th>Successor (share of traffic)</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table></div>
<p class="note">${shown.length} of ${data.keys.length} keys shown. The same rows as <code>keywarden keys</code>.</p>
${identity.length === 0 ? '<p>No identity findings.</p>' : `<h3>Identity findings</h3><ul>${identity.map((a) => `<li>${text(a.title)} <span class="muted">(${a.kind}, since ${time(a.startedAt)})</span></li>`).join('')}</ul>`}`,
  );
}

function alertsSection(data: StatusData): string {
  const firing = data.alerts.filter((a) => a.state === 'firing').length;
  const rows = data.alerts.map(
    (a) =>
      `<tr class="${a.state}"><td><span class="state ${a.state}">${a.state}</span></td><td class="title">${text(a.title)}${a.inhibitedBy === null ? '' : `<br><span class="muted">inhibited by ${text(a.inhibitedBy)}</span>`}${a.acknowledgedBy == null ? '' : `<br><span class="muted">acknowledged by ${text(a.acknowledgedBy)}</span>`}</td><td class="nowrap">${text(a.kind)}</td><td>${a.severity}</td><td>${time(a.startedAt)}</td><td>${time(a.resolvedAt)}</td><td>${deliveries(a)}</td></tr>`,
  );
  return section(
    'alerts',
    'Alerts',
    `<p class="headline">${firing} firing; ${data.alerts.length - firing} resolved in the last ${RECENT_DAYS} days.</p>
${rows.length === 0 ? '<p>Nothing firing, nothing resolved lately.</p>' : `<div class="scroll"><table id="alerts-table"><thead><tr><th>State</th><th>Alert</th><th>Kind</th><th>Severity</th><th>Since</th><th>Resolved</th><th>Deliveries</th></tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`}
${silencesTable(data)}`,
  );
}

function silencesTable(data: StatusData): string {
  if (data.silences.length === 0) return '<p>No silences in force.</p>';
  const rows = data.silences.map((s) => {
    const state = s.startsAt > data.asOf ? 'pending' : 'active';
    const matchers = Object.entries(s.matchers)
      .map(([k, v]) => `${text(k)}=${text(String(v))}`)
      .join(' ');
    return `<tr><td>${state}</td><td>${matchers}</td><td>${time(s.startsAt)}</td><td>${time(s.endsAt)}</td><td>${text(s.createdBy)}</td><td>${text(s.comment)}</td></tr>`;
  });
  return `<h3>Silences</h3><div class="scroll"><table id="silences-table"><thead><tr><th>State</th><th>Matches</th><th>From</th><th>Until</th><th>By</th><th>Why</th></tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`;
}

function deliveries(a: AlertListing): string {
  if (a.deliveries.length === 0) return '<span class="muted">none</span>';
  return `<ul class="deliveries">${a.deliveries
    .map((d) => {
      const err = d.lastError === null || d.status === 'sent' ? '' : ` — ${text(d.lastError)}`;
      return `<li>${text(d.event)} ${text(d.channel)} ${text(d.target)}: <span class="delivery ${text(d.status)}">${text(d.status)}</span> (${d.attempts === 1 ? '1 attempt' : `${d.attempts} attempts`})${d.possiblyDuplicate ? ' possibly duplicated' : ''}${err}</li>`;
    })
    .join('')}</ul>`;
}

function healthSection(data: StatusData): string {
  const h = data.health;
  const lagMinutes =
    h.settledUntil === null ? null : Math.round((data.asOf.getTime() - h.settledUntil.getTime()) / 60_000);
  const failing = new Set(h.failing.map((f) => f.job));
  const rows = h.jobs.map(
    (j) =>
      `<tr class="${failing.has(j.job) ? 'failing' : ''}"><td class="nowrap">${text(j.job)}</td><td>${time(j.lastSucceededAt)}</td><td class="num">${j.consecutiveFailures}</td><td>${time(j.firstFailedAt)}</td><td>${text(j.lastError ?? '')}</td></tr>`,
  );
  const notRecorded = h.failing.filter((f) => !h.jobs.some((j) => j.job === f.job));
  return section(
    'health',
    'Health',
    `<ul class="facts">
<li>Admin API: ${h.blind ? '<span class="state firing">blind</span>: it refuses the admin key; nothing is polled until a valid key is set' : '<span class="state resolved">answering</span>'}</li>
<li>Usage complete up to ${time(h.settledUntil)} UTC${lagMinutes === null ? ' (no poll yet)' : `, ${lagMinutes} min ago`}</li>
<li>${h.failing.length === 0 ? 'Every job completes.' : `Failing or not completing: ${h.failing.map((f) => text(f.job)).join(', ')}.`}</li>
</ul>
${notRecorded.length === 0 ? '' : `<p>${notRecorded.map((f) => `${text(f.job)}: completed no run in its last scheduled intervals`).join('; ')}</p>`}
<div class="scroll"><table id="jobs-table"><thead><tr><th>Job</th><th>Last success</th><th>Failed runs in a row</th><th>Failing since</th><th>Last error</th></tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`,
  );
}

/** Where the deployment watches several organizations: a link to each one's page, this one marked; else nothing. */
function organizationsNav(data: StatusData): string {
  if (data.organizations.length < 2) return '';
  const links = data.organizations.map((o) =>
    o.id === data.organizationId
      ? `<strong aria-current="page">${text(o.name)}</strong>`
      : `<a href="?${escapeHtml(new URLSearchParams({ org: o.id }).toString())}">${text(o.name)}</a>`,
  );
  return `<nav class="organizations">Organization: ${links.join(' · ')}</nav>
`;
}

function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${title}</h2>\n${body}\n</section>`;
}

/**
 * The whole page. Its links are relative (`status/…`, `./`), so it works unchanged behind a reverse proxy that serves
 * it under a path prefix.
 */
export function renderStatusPage(data: StatusData, q: PageQuery): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>keywarden: ${text(data.organizationName)}</title>
<link rel="stylesheet" href="status/status.css">
</head><body>
<header><h1>keywarden <span class="muted">· ${text(data.organizationName)}</span></h1>
<nav><a href="#spend">Spend</a> <a href="#keys">Keys</a> <a href="#alerts">Alerts</a> <a href="#health">Health</a></nav>
${organizationsNav(data)}<div class="meta muted">As of ${time(data.asOf)} UTC · read-only · <form method="post" action="./" class="inline"><input type="hidden" name="signout" value="1"><button type="submit" class="link">sign out</button></form></div></header>
<main>
${spendSection(data)}
${keysSection(data, q)}
${alertsSection(data)}
${healthSection(data)}
</main>
<script type="application/json" id="chart-data">${scriptJson(chartData(data))}</script>
<script src="status/chart.umd.min.js"></script>
<script src="status/status.js"></script>
</body></html>
`;
}

/** The login form: the only other page, shown without the token. */
export function renderLoginPage(failed: boolean): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>keywarden: sign in</title><link rel="stylesheet" href="status/status.css"></head>
<body><main class="login"><h1>keywarden</h1>
<form method="post" action="./"><label>Token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button></form>
${failed ? '<p class="error">That token is not the one this worker was given (KEYWARDEN_UI_TOKEN).</p>' : '<p class="muted">The token is the worker\'s KEYWARDEN_UI_TOKEN.</p>'}
</main></body></html>
`;
}
