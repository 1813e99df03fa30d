import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Secret } from '../../config/secret.ts';
import type { StatusData } from './load.ts';
import { parsePageQuery, renderLoginPage, renderStatusPage } from './page.ts';

/** The status page's part of the HTTP server: on only when the worker was given KEYWARDEN_UI_TOKEN. */
export interface StatusPage {
  token: Secret;
  /** The page's data for the organization `?org=` names (null: the first); null when it names none. */
  load: (org: string | null) => Promise<StatusData | null>;
}

/**
 * The page runs no inline script or style, loads nothing from elsewhere and cannot be framed: a name that slipped
 * past escaping still could not run. Its own script reads the chart data from a JSON block.
 */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const COOKIE = 'keywarden_status';
/** A signed-in browser stays signed in for a working day. */
const COOKIE_MAX_AGE_S = 12 * 3600;
/** A login form is a token and a flag; anything longer is not one. */
const MAX_FORM_BYTES = 4096;

/**
 * The files the page loads, served by the worker (no CDN, no build step): chart.js is already the pinned chart
 * library of the finance digest, so its UMD build is served from node_modules rather than a second library vendored.
 */
const ASSETS: Record<string, { file: () => string; type: string }> = {
  '/status/status.css': { file: () => join(import.meta.dirname, 'status.css'), type: 'text/css; charset=utf-8' },
  '/status/status.js': { file: () => join(import.meta.dirname, 'status.js'), type: 'text/javascript; charset=utf-8' },
  '/status/chart.umd.min.js': {
    file: () => join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
};

/** Equal-length digests compared in constant time: neither the token's length nor a prefix leaks through timing. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The cookie's value: derived from the token, so a copied cookie does not reveal the token itself. */
function sessionValue(token: Secret): string {
  return createHmac('sha256', token.reveal()).update('keywarden status page session').digest('base64url');
}

function cookieOf(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

function isAuthorized(req: IncomingMessage, token: Secret): boolean {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(.+)$/i.exec(auth);
    return m !== null && sameSecret(m[1]!.trim(), token.reveal());
  }
  const cookie = cookieOf(req, COOKIE);
  return cookie !== null && sameSecret(cookie, sessionValue(token));
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | null> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) return null;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function html(res: ServerResponse, status: number, body: string, extra: Record<string, string | string[]> = {}) {
  res
    .writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      ...extra,
    })
    .end(body);
}

/**
 * Answers the status page's requests; false for a path that is not the page's. GET `/` is the page (or the login
 * form); POST `/` signs in or out, which sets or clears a cookie and changes nothing else.
 */
export async function serveStatus(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  page: StatusPage,
): Promise<boolean> {
  const asset = ASSETS[path];
  if (asset !== undefined) {
    const body = await readFile(asset.file());
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'cache-control': 'public, max-age=3600' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }
  if (path !== '/') return false;
  if (req.method === 'POST') {
    const form = await readForm(req);
    if (form === null) {
      // the rest of the body is not read: the connection closes with the answer
      html(res, 413, 'a sign-in form is a few bytes\n', { connection: 'close' });
      return true;
    }
    // behind a TLS-terminating proxy the browser is on https: the cookie says Secure there
    const secure = req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : '';
    if (form.get('signout') === '1') {
      html(res, 303, '', { location: './', 'set-cookie': `${COOKIE}=; HttpOnly; SameSite=Strict; Max-Age=0${secure}` });
    } else if (sameSecret(form.get('token') ?? '', page.token.reveal())) {
      const cookie = `${COOKIE}=${sessionValue(page.token)}; HttpOnly; SameSite=Strict; Max-Age=${COOKIE_MAX_AGE_S}${secure}`;
      html(res, 303, '', { location: './', 'set-cookie': cookie });
    } else {
      html(res, 401, renderLoginPage(true));
    }
    return true;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    html(res, 405, 'method not allowed\n', { allow: 'GET, HEAD, POST' });
    return true;
  }
  if (!isAuthorized(req, page.token)) {
    html(res, 401, renderLoginPage(false), { 'www-authenticate': 'Bearer realm="keywarden"' });
    return true;
  }
  const url = new URL(req.url ?? '/', 'http://status.invalid');
  const q = parsePageQuery(url.searchParams);
  const data = await page.load(q.org);
  // the id is not echoed: the page without ?org= links every organization
  if (data === null) html(res, 404, 'no organization of that id: open the page without ?org= to see the list\n');
  else html(res, 200, renderStatusPage(data, q));
  return true;
}
