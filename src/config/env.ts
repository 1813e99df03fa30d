import { readFileSync } from 'node:fs';
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
  smtpUrl: Secret | null;
  emailFrom: string | null;
  configPath: string;
  httpPort: number;
  logLevel: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads a secret from NAME or from the file named by NAME_FILE (Docker and Kubernetes secrets), never both.
 * Trailing newlines of the file are dropped: editors and `echo` add them.
 */
function readSecret(env: NodeJS.ProcessEnv, name: string, problems: string[]): Secret | null {
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

  checkUrl('DATABASE_URL', databaseUrl, ['postgres', 'postgresql'], problems);
  checkUrl('MIGRATION_DATABASE_URL', migrationDatabaseUrl, ['postgres', 'postgresql'], problems);
  checkUrl('REDIS_URL', redisUrl, ['redis', 'rediss'], problems);
  checkUrl('SMTP_URL', smtpUrl, ['smtp', 'smtps'], problems);
  const anthropicBaseUrl = env.ANTHROPIC_BASE_URL || 'https://api.anthropic.com';
  checkUrl('ANTHROPIC_BASE_URL', anthropicBaseUrl, ['http', 'https'], problems);
  const slackApiUrl = env.SLACK_API_URL || 'https://slack.com/api/';
  checkUrl('SLACK_API_URL', slackApiUrl, ['http', 'https'], problems);

  if (adminKey && !adminKey.reveal().startsWith('sk-ant-admin')) {
    problems.push(
      `ANTHROPIC_ADMIN_KEY: ${adminKey.hint} is not an admin key (they start with sk-ant-admin); create one in the Console under Settings → Admin keys`,
    );
  }
  if (slackBotToken && !/^xox[bp]-/.test(slackBotToken.reveal())) {
    problems.push(`SLACK_BOT_TOKEN: ${slackBotToken.hint} is not a Slack bot token (they start with xoxb-)`);
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
    smtpUrl,
    emailFrom,
    configPath: env.KEYWARDEN_CONFIG || './keywarden.yaml',
    httpPort,
    logLevel,
  };
}
