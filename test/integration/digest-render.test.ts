import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { financeDigestJob } from '../../jobs/finance-digest.ts';
import { securityDigestJob } from '../../jobs/security-digest.ts';
import { Secret } from '../../src/config/secret.ts';
import { createEmailSender } from '../../src/notify/email.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { testJobContext } from '../support/context.ts';
import { DEMO_ADMIN_KEY, useDemoOrg } from '../support/demo-org.ts';
import { DIGEST_TARGETS, digestConfig, prepareDigestOrg } from '../support/digest-fixture.ts';
import { type CapturedEmail, type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';

/**
 * The digests as a reader sees them: the emails as received over SMTP, their HTML opened in headless Chromium with
 * the inline chart given as a data: URL (what a mail client does with a cid: part), and screenshots written to
 * $TMPDIR/keywarden-digests/ for a person to look at.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = join(tmpdir(), 'keywarden-digests');

const org = useDemoOrg();
let smtp: SmtpCapture;
let browser: BrowserContext;
let profile: string;
const mails = new Map<string, CapturedEmail>();

beforeAll(async () => {
  smtp = await startSmtpCapture();
  const env = testJobContext({
    db: org.t.db,
    emulatorUrl: org.emulator.url,
    adminKey: DEMO_ADMIN_KEY,
    clock: org.clock,
    config: digestConfig(),
    notifier: {
      slack: null,
      email: createEmailSender({ smtpUrl: new Secret(smtp.url), from: 'keywarden@acme.example' }),
      close: async () => {},
    },
  });
  try {
    await prepareDigestOrg(env.ctx, org.t.db);
    await financeDigestJob.handler(env.ctx, {});
    await securityDigestJob.handler(env.ctx, {});
    await deliverNotifications(env.ctx);
  } finally {
    await env.close();
  }
  for (const m of await smtp.waitFor(2)) mails.set(m.to[0]!, m);

  profile = mkdtempSync(join(tmpdir(), 'kw-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 820, height: 900 },
  });
  mkdirSync(OUT, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await smtp?.close();
});

/** The HTML with each cid: reference replaced by its part as a data: URL. */
function inlineImages(mail: CapturedEmail): string {
  let html = mail.html;
  for (const a of mail.attachments) {
    if (a.cid === undefined) continue;
    html = html.split(`cid:${a.cid}`).join(`data:${a.contentType};base64,${a.content.toString('base64')}`);
  }
  return html;
}

async function render(mail: CapturedEmail, file: string) {
  const page = await browser.newPage();
  try {
    await page.setContent(inlineImages(mail), { waitUntil: 'load' });
    const images = await page.$$eval('img', (imgs) =>
      imgs.map((i) => ({ complete: i.complete, naturalWidth: i.naturalWidth, shownWidth: i.clientWidth })),
    );
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text, as a reader sees it, is the point
    const text = await page.innerText('body');
    const path = join(OUT, file);
    writeFileSync(path, await page.screenshot({ fullPage: true }));
    console.log(`digest rendered by Chromium: ${path}`);
    return { images, text };
  } finally {
    await page.close();
  }
}

describe('digests rendered in headless Chromium', () => {
  it('finance: the chart loads and fits the page; the figures and top lists are on it', async () => {
    const mail = mails.get(DIGEST_TARGETS.financeEmail)!;
    writeFileSync(join(OUT, 'finance-chart.png'), mail.attachments[0]!.content);
    const { images, text } = await render(mail, 'finance-digest.png');
    expect(images).toEqual([{ complete: true, naturalWidth: 1440, shownWidth: 720 }]);
    expect(text).toContain('Finance digest: Acme AI, Mon, 16 Nov 2026');
    expect(text).toMatch(/Spent in November 2026\s+\$2,470\.50/);
    expect(text).toMatch(/Projected month end\s+\$4,700 \(likely \$4,350–\$5,400\)/);
    expect(text).toMatch(/Production Backend\s+Customer chatbot\s+\$1,220\.00/);
    expect(text).toMatch(/Customer chatbot\s+\$1,830\.00/);
    expect(text).toMatch(/12 Nov\s+Research\s+\$100\.00\s+\$103\.50\s+\+3\.5%/);
  });

  it('security: the stage lists, orphaned keys, keys without expiry and admin count are on it', async () => {
    const { images, text } = await render(mails.get(DIGEST_TARGETS.securityEmail)!, 'security-digest.png');
    expect(images).toEqual([]);
    expect(text).toContain('Security digest: Acme AI, week of Mon, 16 Nov 2026');
    expect(text).toMatch(/Overdue for rotation\s+Key\s+Workspace\s+Owner/);
    expect(text).toMatch(/Legacy integration\s+Default Workspace\s+no user \(created by the API\)/);
    expect(text).toMatch(/Orphaned keys \(their creator left the organization\)\s+Key[^\n]*\n+Research notebook/);
    expect(text).toContain('Keys without an expiry date');
    expect(text).toMatch(/Admins\s+1/);
    expect(text).toMatch(/Dana Admin\s+dana@acme\.example/);
  });
});
