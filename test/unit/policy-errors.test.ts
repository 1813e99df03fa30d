import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/config/index.ts';

/**
 * Drill 8, the policy half: twenty policy files with the mistakes people make (beyond those in config.test.ts),
 * each refused with exactly one line that names the file, the field and what is wrong, and quotes the value.
 * Each file is otherwise sound, so the line is about the mistake and nothing else.
 */

const SOUND = `organization: { name: "Acme AI", timezone: Europe/Paris }
rotation:
  max_age_days: 90
  enforce: false
spend:
  limits: { organization: 5000 }
routes:
  - { match: { kind: "spend.*" }, slack: ["#finance"], email: ["finance@acme.com"] }
`;

const CASES: Array<[mistake: string, yaml: string, problem: string]> = [
  [
    'a tab used for indentation',
    `${SOUND}anomaly:\n\tfactor: 5\n`,
    'keywarden.yaml:10:1: YAML: Tabs are not allowed as indentation',
  ],
  [
    'a section written twice',
    `${SOUND}rotation:\n  grace_days: 3\n`,
    'keywarden.yaml:9:1: YAML: Map keys must be unique',
  ],
  [
    'enforce: yes (YAML 1.2 reads a string)',
    SOUND.replace('enforce: false', 'enforce: yes'),
    'keywarden.yaml: rotation.enforce: expected true, false or approve, got string "yes"',
  ],
  [
    'an age with a unit',
    SOUND.replace('max_age_days: 90', 'max_age_days: 90d'),
    'keywarden.yaml: rotation.max_age_days: expected a number, got string "90d"',
  ],
  [
    'a fractional grace period',
    `${SOUND.replace('enforce: false', 'grace_days: 2.5')}`,
    'keywarden.yaml: rotation.grace_days: expected a whole number, got number 2.5',
  ],
  [
    'thresholds as one number',
    `${SOUND}`.replace('spend:\n', 'spend:\n  thresholds: 0.8\n'),
    'keywarden.yaml: spend.thresholds: expected a list, got number 0.8',
  ],
  [
    'a threshold of 0',
    SOUND.replace('spend:\n', 'spend:\n  thresholds: [0, 0.5]\n'),
    'keywarden.yaml: spend.thresholds[0]: 0: a threshold is a fraction of the limit (0 < t ≤ 1)',
  ],
  [
    'a negative limit',
    SOUND.replace('organization: 5000', 'organization: -100'),
    'keywarden.yaml: spend.limits.organization: -100: a limit is a positive amount of USD per month',
  ],
  [
    'a limit with its currency',
    SOUND.replace('organization: 5000', 'workspaces: { "Customer chatbot": "2000 USD" }'),
    'keywarden.yaml: spend.limits.workspaces.Customer chatbot: expected a number, got string "2000 USD"',
  ],
  [
    '"route" for "routes"',
    SOUND.replace('routes:', 'route:'),
    'keywarden.yaml: route: unknown key (did you mean routes?)',
  ],
  [
    'a team name where an address goes',
    SOUND.replace('"finance@acme.com"', '"finance team"'),
    'keywarden.yaml: routes[0].email[0]: not an email address (or "key_owner")',
  ],
  [
    // PagerDuty is a receiver now: a route may name one, but only one the policy defines
    'a route naming a receiver the policy does not define',
    SOUND.replace('email: ["finance@acme.com"]', 'pagerduty: ["finance-oncall"]'),
    'keywarden.yaml: routes[0].pagerduty[0]: "finance-oncall" is not a pagerduty receiver: define it under receivers.pagerduty (see the README\'s section on pagerduty)',
  ],
  [
    'a severity that does not exist',
    SOUND.replace('{ kind: "spend.*" }', '{ kind: "spend.*", severity: high }'),
    'keywarden.yaml: routes[0].match.severity: "high" is not one of info, warning, critical',
  ],
  [
    'a repeat interval without a unit',
    SOUND.replace('slack: ["#finance"]', 'slack: ["#finance"], repeat_every: 90'),
    'keywarden.yaml: routes[0].repeat_every: 90 has no unit: write a duration like 30m, 1h, 2d',
  ],
  [
    'a match written as a bare kind',
    SOUND.replace('match: { kind: "spend.*" }', 'match: "spend.*"'),
    'keywarden.yaml: routes[0].match: expected a mapping, got string "spend.*"',
  ],
  [
    'a schedule in words',
    `${SOUND}schedules:\n  poll-usage: "every 5 minutes"\n`,
    'keywarden.yaml: schedules.poll-usage: "every 5 minutes" is not a valid cron expression: Invalid characters, got value: every',
  ],
  [
    'an exemption until "next January"',
    SOUND.replace('enforce: false', 'exemptions:\n    - { key: "ci-*", until: "next January", reason: "vendor" }'),
    'keywarden.yaml: rotation.exemptions[0].until: "next January" is not a date (YYYY-MM-DD)',
  ],
  [
    'an exemption without a reason',
    SOUND.replace('enforce: false', 'exemptions:\n    - { key: "ci-*", until: 2027-01-31 }'),
    'keywarden.yaml: rotation.exemptions[0].reason: missing (required, a string)',
  ],
  [
    'a reminder on the deadline day',
    SOUND.replace('enforce: false', 'remind_before_days: [14, 7, 0]'),
    'keywarden.yaml: rotation.remind_before_days[2]: 0: must be above 0',
  ],
  [
    'auto_deactivate: true instead of its section',
    `${SOUND}anomaly:\n  auto_deactivate: true\n`,
    'keywarden.yaml: anomaly.auto_deactivate: expected a mapping, got boolean true',
  ],
];

describe('twenty malformed policy files (drill 8)', () => {
  it('the sound file they start from is accepted', () => {
    const problems: string[] = [];
    expect(parsePolicy(SOUND, 'keywarden.yaml', problems, ['poll-usage'])).not.toBeNull();
    expect(problems).toEqual([]);
  });

  it.each(CASES)('%s', (_mistake, yaml, problem) => {
    const problems: string[] = [];
    expect(parsePolicy(yaml, 'keywarden.yaml', problems, ['poll-usage'])).toBeNull();
    expect(problems).toEqual([problem]);
  });
});
