import { slackButtonsWarning } from '../actions/buttons.ts';
import { AdminClient } from '../anthropic/client.ts';
import { insecureHttpWarning } from '../config/index.ts';
import { describeReceivers } from '../config/receivers.ts';
import { maskUrl } from '../config/secret.ts';
import { blindRoutes } from '../health/blind.ts';
import { terminalJson, terminalText } from '../notify/escape.ts';
import { probeAdminApi, renderProbe } from './check-config-probe.ts';
import { type Command, loadCliConfig, parse, pickOrganization, takeOrg, UsageError } from './command.ts';

export const checkConfigCommand: Command = {
  summary: 'validate the environment and the policy file, print the effective config with secrets masked',
  usage:
    'keywarden check-config [--json] [--probe]\n\n  Exit code 2 and one line per problem when anything is wrong.\n' +
    '  --probe  call each Admin API once with ANTHROPIC_ADMIN_KEY and print which answer and what keywarden will use\n' +
    '  --org <id>  with an organizations: list, the organization --probe calls with its own key and base URL',
  async run(argv) {
    const { org: orgId, rest: args } = takeOrg(argv);
    const { values } = parse(args, { json: { type: 'boolean' }, probe: { type: 'boolean' } });
    const config = loadCliConfig();
    const env = config.env;
    const org = pickOrganization(config, values.probe ? orgId : (orgId ?? config.organizations[0]!.id));
    if (values.probe && !org.adminKey) throw new UsageError('--probe: ANTHROPIC_ADMIN_KEY is not set');
    const probe = values.probe
      ? await probeAdminApi(
          new AdminClient({
            baseUrl: org.baseUrl,
            adminKey: org.adminKey!,
            maxAttempts: 1,
            timeoutMs: 15_000,
          }),
          {
            baseUrl: maskUrl(org.baseUrl),
            keyHint: org.adminKey!.hint,
            policy: org.policy,
            now: new Date(),
          },
        )
      : null;
    const effective = {
      policy_file: config.policySource,
      environment: {
        DATABASE_URL: env.databaseUrl ? maskUrl(env.databaseUrl.reveal()) : null,
        MIGRATION_DATABASE_URL: env.migrationDatabaseUrl ? maskUrl(env.migrationDatabaseUrl.reveal()) : null,
        REDIS_URL: env.redisUrl ? maskUrl(env.redisUrl.reveal()) : null,
        ANTHROPIC_ADMIN_KEY: env.adminKey?.hint ?? null,
        ANTHROPIC_BASE_URL: maskUrl(env.anthropicBaseUrl),
        SLACK_BOT_TOKEN: env.slackBotToken?.hint ?? null,
        SLACK_API_URL: maskUrl(env.slackApiUrl),
        SLACK_SIGNING_SECRET: env.slackSigningSecret?.hint ?? null,
        SLACK_APP_TOKEN: env.slackAppToken?.hint ?? null,
        PAGERDUTY_EVENTS_URL: maskUrl(env.pagerdutyEventsUrl),
        KEYWARDEN_ALLOW_INSECURE_HTTP: env.allowInsecureHttp,
        SMTP_URL: env.smtpUrl ? maskUrl(env.smtpUrl.reveal()) : null,
        EMAIL_FROM: env.emailFrom,
        KEYWARDEN_CONFIG: env.configPath,
        KEYWARDEN_HTTP_PORT: env.httpPort,
        KEYWARDEN_HTTP_HOST: env.httpHost,
        KEYWARDEN_UI_TOKEN: env.uiToken?.hint ?? null,
        LOG_LEVEL: env.logLevel,
      },
      policy: config.policy,
      // a list: each organization's own fields (its policy is the file's sections with its own replacing them)
      ...(config.organizations.length > 1
        ? {
            organizations: config.organizations.map((o) => ({
              id: o.id,
              name: o.name,
              schema: o.schema,
              base_url: maskUrl(o.baseUrl),
              admin_key: o.adminKey?.hint ?? null,
            })),
          }
        : {}),
      // where each receiver delivers and the variable it reads, the values masked
      receivers: describeReceivers(config.policy.receivers, config.receivers),
    };
    if (values.json) {
      console.log(terminalJson(probe === null ? effective : { ...effective, probe }));
    } else {
      const { stringify } = await import('yaml');
      console.log(stringify(effective, { lineWidth: 0 }).trimEnd());
      // the answers quote the API's error codes: text from outside, shown on a terminal
      if (probe !== null) console.log(`\n${renderProbe(probe).split('\n').map(terminalText).join('\n')}`);
    }
    const warnings: string[] = env.insecureHttp.map(insecureHttpWarning);
    if (config.organizations.some((o) => o.adminKey === null))
      warnings.push('ANTHROPIC_ADMIN_KEY is not set: the worker will not start without it');
    const wantsSlack = config.policy.routes.some((r) => r.slack.length > 0);
    if (wantsSlack && !env.slackBotToken) warnings.push('routes name Slack channels but SLACK_BOT_TOKEN is not set');
    const wantsEmail = config.policy.routes.some((r) => r.email.length > 0);
    if (wantsEmail && (!env.smtpUrl || !env.emailFrom))
      warnings.push('routes name email recipients but SMTP_URL or EMAIL_FROM is not set');
    if (blindRoutes(config.policy.routes) !== config.policy.routes)
      warnings.push('no route matches keywarden.blind: if the admin key is refused, every route target is told');
    const buttons = slackButtonsWarning(config);
    if (buttons !== null) warnings.push(buttons);
    for (const w of warnings) console.error(`warning: ${w}`);
    for (const p of probe?.problems ?? []) console.error(`probe: ${p}`);
    return probe !== null && probe.problems.length > 0 ? 2 : 0;
  },
};
