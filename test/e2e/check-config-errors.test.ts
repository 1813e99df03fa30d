import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runNode } from '../support/processes.ts';

/** Drill 8 through the command a person runs first: `keywarden check-config` on a broken policy file. */

const dir = mkdtempSync(join(tmpdir(), 'kw-policy-'));
function policyFile(name: string, yaml: string): string {
  const path = join(dir, name);
  writeFileSync(path, yaml);
  return path;
}
const checkConfig = (env: Record<string, string>) => runNode('src/cli.ts', ['check-config'], env);

describe('keywarden check-config on malformed policy files', () => {
  it('a tab in the indentation: exit 2, the file, line and column', async () => {
    const path = policyFile('tab.yaml', 'rotation:\n  enforce: true\nanomaly:\n\tfactor: 5\n');
    const { code, output } = await checkConfig({ KEYWARDEN_CONFIG: path });
    expect(code).toBe(2);
    expect(output.trim()).toBe(`config: ${path}:4:1: YAML: Tabs are not allowed as indentation`);
  });

  it('three mistakes: exit 2, one line each, every one named, nothing printed as if valid', async () => {
    const path = policyFile(
      'three.yaml',
      [
        'rotation:',
        '  max_age_days: 90d',
        'spend:',
        '  thresholds: [0.5, 80]',
        'routes:',
        '  - { match: { kind: "spend.*", severity: high }, slack: ["#finance"] }',
        '',
      ].join('\n'),
    );
    const { code, output } = await checkConfig({ KEYWARDEN_CONFIG: path });
    expect(code).toBe(2);
    expect(output.trim().split('\n')).toEqual([
      `config: ${path}: rotation.max_age_days: expected a number, got string "90d"`,
      `config: ${path}: spend.thresholds[1]: 80: a threshold is a fraction of the limit (0 < t ≤ 1); did you mean 0.8?`,
      `config: ${path}: routes[0].match.severity: "high" is not one of info, warning, critical`,
    ]);
  });

  it('a policy with no route for keywarden.blind: valid, with a warning saying where that alert goes', async () => {
    const path = policyFile(
      'no-blind-route.yaml',
      'routes:\n  - { match: { kind: "spend.*" }, slack: ["#finance"] }\n',
    );
    const { code, output } = await checkConfig({ KEYWARDEN_CONFIG: path, SLACK_BOT_TOKEN: 'xoxb-check-config-0000' });
    expect(code).toBe(0);
    expect(output).toMatch(
      /warning: no route matches keywarden\.blind: if the admin key is refused, every route target is told/,
    );
  });
});
