import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { Secret } from './secret.ts';

/** What the environment says, validated. Secrets are wrapped so they never print. */
export interface EnvConfig {
  databaseUrl: Secret | null;
  /** `keywarden migrate` connects with this (the tables' owner) when set, else with DATABASE_URL. */
  migrationDatabaseUrl: Secret | null;
  redisUrl: Secret | null;
  adminKey: Secret | null;
  anthropicBaseUrl: string;
  slackBotToken: Secret | null;
  slackApiUrl: string;
  /** Verifies button presses sent to `POST /slack/actions` (Slack's v0 request signing). */
  slackSigningSecret: Secret | null;
  /** `xapp-…`: button presses arrive over Socket Mode instead (no public URL needed). */
  slackAppToken: Secret | null;
  pagerdutyEventsUrl: string;
  /** KEYWARDEN_ALLOW_INSECURE_HTTP=1: plain http:// to hosts other than this machine is allowed (and warned about). */
  allowInsecureHttp: boolean;
  /** The base URLs that use that allowance: check-config and the worker warn about each. */
  insecureHttp: InsecureHttpUse[];
  smtpUrl: Secret | null;
  emailFrom: string | null;
  configPath: string;
  httpPort: number;
  /** Bind address of the HTTP port; every interface by default (a container's published port needs that). */
  httpHost: string;
  /** KEYWARDEN_UI_TOKEN: the status page at `/` asks for it; without one the page is off. */
  uiToken: Secret | null;
  logLevel: string;
}

export interface InsecureHttpUse {
  variable: string;
  host: string;
}

/** The warning for a base URL that sends secrets over plain http:// because the operator allowed it. */
export function insecureHttpWarning(use: InsecureHttpUse): string {
  return `${use.variable} uses plain http:// to ${use.host} (allowed by KEYWARDEN_ALLOW_INSECURE_HTTP=1): secrets cross the network in clear text`;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads a secret from NAME or from the file named by NAME_FILE (Docker and Kubernetes secrets), never both.
 * Trailing newlines of the file are dropped: editors and `echo` add them.
 */
export function readSecret(env: NodeJS.ProcessEnv, name: string, problems: string[]): Secret | null {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct && file) {
    problems.push(`${name} and ${name}_FILE are both set: keep one`);
    return null;
  }
  if (file) {
    try {
      const value = readFileSync(file, 'utf8').replace(/[\r\n]+$/, '');
      if (!value) problems.push(`${name}_FILE: ${file} is empty`);
      return value ? new Secret(value) : null;
    } catch (err) {
      problems.push(`${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return null;
    }
  }
  return direct ? new Secret(direct) : null;
}

/** Hosts of this machine: plain http:// to them carries nothing across a network. */
export const LOOPBACK_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/**
 * A base URL keywarden sends a secret to (the admin key, the Slack token, a routing key). Credentials in it would
 * go to every request and into error messages, so they are refused; plain http:// is allowed to this machine
 * (the emulator, the demo's stand-ins) and elsewhere only with the explicit opt-in, since the secret would cross
 * the network in clear text.
 */
export function checkBaseUrl(
  name: string,
  text: string,
  allowInsecure: boolean,
  problems: string[],
  insecure: InsecureHttpUse[],
): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.push(`${name}: not a URL`);
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    problems.push(`${name}: must start with https:// or http:// (got ${url.protocol}//)`);
    return;
  }
  if (url.username || url.password) {
    problems.push(
      `${name}: holds credentials (user or password); a base URL must not carry them (they would go with every request and into error messages): remove them from the URL`,
    );
  }
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.test(url.hostname)) {
    if (allowInsecure) insecure.push({ variable: name, host: url.hostname });
    else {
      problems.push(
        `${name}: plain http:// to a host other than this machine (${url.hostname}) sends secrets in clear text: use https://, or set KEYWARDEN_ALLOW_INSECURE_HTTP=1 for a network you trust`,
      );
    }
  }
}

function checkUrl(name: string, value: Secret | string | null, protocols: string[], problems: string[]): void {
  if (value === null) return;
  const text = typeof value === 'string' ? value : value.reveal();
  let protocol: string;
  try {
    protocol = new URL(text).protocol.replace(/:$/, '');
  } catch {
    problems.push(`${name}: not a URL`);
    return;
  }
  if (!protocols.includes(protocol)) {
    problems.push(`${name}: must start with ${protocols.map((p) => `${p}://`).join(' or ')} (got ${protocol}://)`);
  }
}

export function readEnv(env: NodeJS.ProcessEnv, problems: string[]): EnvConfig {
  const databaseUrl = readSecret(env, 'DATABASE_URL', problems);
  const migrationDatabaseUrl = readSecret(env, 'MIGRATION_DATABASE_URL', problems);
  const redisUrl = readSecret(env, 'REDIS_URL', problems);
  const adminKey = readSecret(env, 'ANTHROPIC_ADMIN_KEY', problems);
  const slackBotToken = readSecret(env, 'SLACK_BOT_TOKEN', problems);
  const smtpUrl = readSecret(env, 'SMTP_URL', problems);
  const slackSigningSecret = readSecret(env, 'SLACK_SIGNING_SECRET', problems);
  const slackAppToken = readSecret(env, 'SLACK_APP_TOKEN', problems);

  checkUrl('DATABASE_URL', databaseUrl, ['postgres', 'postgresql'], problems);
  checkUrl('MIGRATION_DATABASE_URL', migrationDatabaseUrl, ['postgres', 'postgresql'], problems);
  checkUrl('REDIS_URL', redisUrl, ['redis', 'rediss'], problems);
  checkUrl('SMTP_URL', smtpUrl, ['smtp', 'smtps'], problems);
  const insecureText = env.KEYWARDEN_ALLOW_INSECURE_HTTP ?? '';
  if (!['', '0', '1'].includes(insecureText)) {
    problems.push(
      `KEYWARDEN_ALLOW_INSECURE_HTTP: "${insecureText}": set it to 1 to allow plain http:// to other hosts, or leave it unset`,
    );
  }
  const allowInsecureHttp = insecureText === '1';
  const insecureHttp: InsecureHttpUse[] = [];
  const anthropicBaseUrl = env.ANTHROPIC_BASE_URL || 'https://api.anthropic.com';
  const slackApiUrl = env.SLACK_API_URL || 'https://slack.com/api/';
  const pagerdutyEventsUrl = env.PAGERDUTY_EVENTS_URL || 'https://events.pagerduty.com';
  for (const [name, url] of [
    ['ANTHROPIC_BASE_URL', anthropicBaseUrl],
    ['SLACK_API_URL', slackApiUrl],
    ['PAGERDUTY_EVENTS_URL', pagerdutyEventsUrl],
  ] as const) {
    checkBaseUrl(name, url, allowInsecureHttp, problems, insecureHttp);
  }

  if (adminKey && !adminKey.reveal().startsWith('sk-ant-admin')) {
    problems.push(
      `ANTHROPIC_ADMIN_KEY: ${adminKey.hint} is not an admin key (they start with sk-ant-admin); create one in the Console under Settings → Admin keys`,
    );
  }
  if (slackBotToken && !/^xox[bp]-/.test(slackBotToken.reveal())) {
    problems.push(`SLACK_BOT_TOKEN: ${slackBotToken.hint} is not a Slack bot token (they start with xoxb-)`);
  }
  if (slackAppToken && !slackAppToken.reveal().startsWith('xapp-')) {
    problems.push(
      `SLACK_APP_TOKEN: ${slackAppToken.hint} is not an app-level token (they start with xapp-); create one under Basic Information → App-Level Tokens with the connections:write scope`,
    );
  }
  const emailFrom = env.EMAIL_FROM || null;
  if (emailFrom !== null && !/^([^<>\r\n]*<)?[^\s@<>]+@[^\s@<>]+\.?[^\s@<>]*>?$/.test(emailFrom)) {
    problems.push(`EMAIL_FROM: "${emailFrom}" is not an email address`);
  }

  const portText = env.KEYWARDEN_HTTP_PORT ?? '9464';
  const httpPort = Number(portText);
  if (!/^\d+$/.test(portText) || httpPort > 65535) {
    problems.push(`KEYWARDEN_HTTP_PORT: "${portText}" is not a port number (0–65535)`);
  }
  const httpHost = env.KEYWARDEN_HTTP_HOST || '0.0.0.0';
  if (isIP(httpHost) === 0 && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(httpHost)) {
    problems.push(
      `KEYWARDEN_HTTP_HOST: "${httpHost}" is not an IP address or host name (e.g. 127.0.0.1 for this machine only, 0.0.0.0 for every interface)`,
    );
  }
  const uiToken = readSecret(env, 'KEYWARDEN_UI_TOKEN', problems);
  // the page shows spend, owners and alerts to whoever holds the token: one short enough to guess protects nothing
  if (uiToken && uiToken.reveal().length < 16) {
    problems.push('KEYWARDEN_UI_TOKEN: at least 16 characters (e.g. the output of `openssl rand -hex 16`)');
  }
  const logLevel = env.LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL: "${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);

  return {
    databaseUrl,
    migrationDatabaseUrl,
    redisUrl,
    adminKey,
    anthropicBaseUrl,
    slackBotToken,
    slackApiUrl,
    slackSigningSecret,
    slackAppToken,
    pagerdutyEventsUrl,
    allowInsecureHttp,
    insecureHttp,
    smtpUrl,
    emailFrom,
    configPath: env.KEYWARDEN_CONFIG || './keywarden.yaml',
    httpPort,
    httpHost,
    uiToken,
    logLevel,
  };
}
