import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertListing } from '../../src/alerts/list.ts';
import { formatUsd, usdToPico } from '../../src/money.ts';
import type { KeyRow } from '../../src/rotation/key-rows.ts';
import type { SpendReport } from '../../src/spend/report.ts';
import { NODE, ROOT, type Spawned, spawnNode } from '../support/processes.ts';

/**
 * The status page in a real browser (Debian's headless Chromium) against the demo: the worker on the demo scenario,
 * started as a person starts it (`keywarden demo`), which prints the page's URL and token. Screenshots of each
 * section at two widths go to $TMPDIR/keywarden-status-page/ for a person to look at.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(tmpdir(), 'keywarden-status-page');
const WIDTHS = [1280, 390] as const;
const SECTIONS = ['spend', 'keys', 'alerts', 'health'] as const;

let demo: Spawned;
let out: string;
let browser: Browser;
let pageUrl: string;
let token: string;
let spend: SpendReport;

/** The environment the demo wrote for other commands (env.sh: `export NAME='value'` lines). */
function demoEnv(dir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of readFileSync(join(dir, 'env.sh'), 'utf8').matchAll(/^export (\w+)='((?:[^']|'\\'')*)'$/gm)) {
    env[m[1]!] = m[2]!.replace(/'\\''/g, "'");
  }
  return env;
}

/** What the terminal says (`keywarden … --json` against the demo), from stdout alone: stderr may carry warnings. */
function cliJson(args: string[]): unknown {
  const stdout = execFileSync(NODE, [join(ROOT, 'src/cli/index.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...demoEnv(out) },
    encoding: 'utf8',
  });
  return JSON.parse(stdout);
}

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'kw-status-demo-'));
  demo = spawnNode('src/cli/index.ts', ['demo', '--out', out, '--exit-after', '600s'], {});
  // the spend table is printed once a projection made after the first poll's catch-up is stored
  await demo.waitForOutput(/\$ keywarden spend\n/, 150_000);
  const m = /status page: (http:\/\/\S+)\s+token: (\S+)/.exec(demo.output());
  if (!m) throw new Error(`the demo printed no status page URL:\n${demo.output()}`);
  pageUrl = m[1]!;
  token = m[2]!;
  spend = cliJson(['spend', '--json']) as SpendReport;

  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  // launch() gives the browser a fresh, temporary user-data-dir of its own, removed when it closes
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
}, 200_000);

afterAll(async () => {
  await browser?.close();
  if (demo && demo.proc.exitCode === null) {
    demo.proc.kill('SIGINT');
    await demo.exited;
  }
  console.log(`status page screenshots: ${SHOTS}`);
}, 60_000);

/** A fresh page signed in through the login form (a new context: no cookie from another test). */
async function signedIn(width: number): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  await page.goto(pageUrl);
  await page.fill('input[name="token"]', token);
  await page.click('button[type="submit"]');
  await page.waitForSelector('#spend');
  // then the page loaded afresh with the cookie, watched: the login form's own 401 is not the page's error
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(pageUrl, { waitUntil: 'load' });
  return { page, errors };
}

/**
 * What the organization chart holds and whether it painted, read in the page (a string: this file has no DOM types).
 * Chart is chart.js's global there.
 */
const CHART_FACTS = `(() => {
  const canvas = document.getElementById('chart-organization');
  const c = Chart.getChart(canvas);
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  const bullets = [...document.querySelectorAll('div.bullet canvas')];
  return {
    labels: c.data.datasets.map((d) => d.label),
    p50: c.data.datasets[3].data.at(-1),
    p90: c.data.datasets[2].data.at(-1),
    limit: c.data.datasets[4] ? c.data.datasets[4].data[0] : null,
    painted,
    bullets: bullets.length,
    drawnBullets: bullets.filter((b) => Chart.getChart(b) !== undefined).length,
  };
})()`;

const usd = (v: string | null) => (v === null ? '—' : formatUsd(usdToPico(v)));

describe('the status page in Chromium, on the demo', () => {
  it('asks for the token: without it the login form, a wrong one refused, the right one opens the page', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const first = await page.goto(pageUrl);
    expect(first?.status()).toBe(401);
    expect(await page.locator('#spend').count()).toBe(0);
    await page.fill('input[name="token"]', `${token}x`);
    await page.click('button[type="submit"]');
    await expect(page.locator('.error').textContent()).resolves.toMatch(/not the one/);
    await page.fill('input[name="token"]', token);
    await page.click('button[type="submit"]');
    await page.waitForSelector('#spend');
    const cookies = await context.cookies();
    expect(cookies.map((c) => [c.name, c.httpOnly, c.sameSite])).toEqual([['keywarden_status', true, 'Strict']]);
    await context.close();
  });

  it('works without JavaScript: sign in, the tables and the workspace filter', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(pageUrl);
    await page.fill('input[name="token"]', token);
    await page.click('button[type="submit"]');
    await page.waitForSelector('#spend-table');
    expect(await page.locator('#spend-table tbody tr').count()).toBe(spend.rows.length);
    const all = await page.locator('#keys-table tbody tr').count();
    const chosen = await page.$eval(
      'select[name="workspace"] option:nth-child(2)',
      (o) => o.getAttribute('value') ?? '',
    );
    await page.selectOption('select[name="workspace"]', chosen);
    await page.click('form.filter button');
    await page.waitForURL(/workspace=/);
    const shown = await page.$$eval('#keys-table tbody tr td:nth-child(3)', (tds) => tds.map((td) => td.textContent));
    expect(shown.length).toBeLessThan(all);
    expect(new Set(shown)).toEqual(new Set([chosen]));
    await context.close();
  });

  it('shows the figures `keywarden spend --json` prints, row for row', async () => {
    const { page, errors } = await signedIn(1280);
    const rows = await page.$$eval('#spend-table tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
    );
    expect(rows.length).toBe(spend.rows.length);
    spend.rows.forEach((r, i) => {
      const cells = rows[i]!;
      expect(cells.slice(0, 5)).toEqual([
        `${r.name}${r.scopeType}`,
        usd(r.monthToDateUsd),
        usd(r.limitUsd),
        usd(r.p50Usd),
        `${usd(r.p10Usd)} – ${usd(r.p90Usd)}`,
      ]);
    });
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('shows the keys `keywarden keys --json` lists and the alerts `keywarden alerts --json` lists', async () => {
    const { page } = await signedIn(1280);
    // the demo keeps running: read both sides again when a poll or an alert lands between them
    const sides = async () => {
      await page.reload();
      const rows = await page.$$eval('#keys-table tbody tr', (trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
      );
      const keys = cliJson(['keys', '--json']) as KeyRow[];
      // the title alone: the cell's first text; what follows it (inhibited by, acknowledged by) is the alert's state
      const titles = await page.$$eval('#alerts-table tbody tr.firing td.title', (tds) =>
        tds.map((td) => td.firstChild?.textContent ?? ''),
      );
      const firing = (cliJson(['alerts', '--json']) as AlertListing[]).map((a) => a.title);
      return {
        // name and hint, workspace, stage detail, deadline, owner, last use, successor
        page: {
          keys: rows.map((c) => [c[1], c[2], c[3], c[4], c[5], c[6], c[7]].join(' | ')).sort(),
          alerts: titles.sort(),
        },
        cli: {
          keys: keys
            .map((k) =>
              [
                `${k.name}${k.hint ?? ''}`,
                k.workspace,
                k.stage,
                k.deadline ?? '—',
                k.owner,
                k.lastUsage ?? '—',
                k.successor ?? '',
              ].join(' | '),
            )
            .sort(),
          alerts: firing.sort(),
        },
      };
    };
    let seen = await sides();
    for (let i = 0; i < 3 && JSON.stringify(seen.page) !== JSON.stringify(seen.cli); i++) seen = await sides();
    expect(seen.page).toEqual(seen.cli);
    await page.context().close();
  });

  it('draws the organization chart with its series, and a bullet per charted scope', async () => {
    const { page, errors } = await signedIn(1280);
    const chart = (await page.evaluate(CHART_FACTS)) as {
      labels: string[];
      p50: number;
      p90: number;
      limit: number | null;
      painted: number;
      bullets: number;
      drawnBullets: number;
    };
    const org = spend.rows.find((r) => r.scopeType === 'organization')!;
    expect(chart.labels).toEqual(['spent (priced)', 'p10', 'p10–p90 at month end', 'likely (p50)', 'limit']);
    expect(chart.p50).toBeCloseTo(Number(org.p50Usd), 2);
    expect(chart.p90).toBeCloseTo(Number(org.p90Usd), 2);
    expect(chart.limit).toBeCloseTo(Number(org.limitUsd), 2);
    expect(chart.painted).toBeGreaterThan(1000);
    expect(chart.bullets).toBeGreaterThan(0);
    expect(chart.drawnBullets).toBe(chart.bullets);
    // no CSP violation, no script error
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('filters the keys by workspace and sorts them, with links and a form (no script needed)', async () => {
    const { page } = await signedIn(1280);
    const workspaces = await page.$$eval('select[name="workspace"] option', (os) =>
      os.map((o) => o.getAttribute('value') ?? '').filter((v) => v !== ''),
    );
    expect(workspaces.length).toBeGreaterThan(1);
    const all = await page.locator('#keys-table tbody tr').count();
    const chosen = workspaces[0]!;
    await page.selectOption('select[name="workspace"]', chosen);
    await page.click('form.filter button');
    await page.waitForURL(/workspace=/);
    const shown = await page.$$eval('#keys-table tbody tr td:nth-child(3)', (tds) => tds.map((td) => td.textContent));
    expect(shown.length).toBeGreaterThan(0);
    expect(shown.length).toBeLessThan(all);
    expect(new Set(shown)).toEqual(new Set([chosen]));

    await page.goto(pageUrl);
    await page.click('#keys-table th a:text("Deadline")');
    await page.waitForURL(/sort=deadline/);
    const deadlines = await page.$$eval('#keys-table tbody tr td:nth-child(5)', (tds) =>
      tds.map((td) => td.textContent ?? ''),
    );
    const dated = deadlines.filter((d) => d !== '—');
    expect(dated).toEqual([...dated].sort());
    await page.context().close();
  });

  it('shows alerts with deliveries and the health facts; writes screenshots of each section at 1280 and 390 px', async () => {
    for (const width of WIDTHS) {
      const { page, errors } = await signedIn(width);
      expect(await page.locator('#alerts-table tbody tr').count()).toBeGreaterThan(0);
      await expect(page.locator('#health').textContent()).resolves.toMatch(/Admin API: answering/);
      await page.screenshot({ path: join(SHOTS, `page-${width}.png`), fullPage: true });
      for (const id of SECTIONS) {
        await page.locator(`#${id}`).screenshot({ path: join(SHOTS, `${id}-${width}.png`) });
      }
      // nothing wider than the viewport at either width: the tables scroll inside their section
      const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
      expect(overflow).toBeLessThanOrEqual(0);
      expect(errors).toEqual([]);
      await page.context().close();
    }
  });
});
