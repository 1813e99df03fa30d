import { describe, expect, it } from 'vitest';
import { runNode } from '../support/processes.ts';

/** `keywarden check-config` with receivers: each shown with its variable, no secret printed, a missing one named. */

const ROUTING_KEY = 'R0UTINGKEY0123456789abcdefABCDEF';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const TEAMS_URL =
  'https://prod-12.westeurope.logic.azure.com/workflows/0123abcd/triggers/manual/paths/invoke?api-version=2016-06-01&sig=Zm9vYmFyYmF6cXV4';
const env = {
  KEYWARDEN_CONFIG: 'examples/receivers.yaml',
  PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
  OPS_WEBHOOK_SECRET: SECRET,
  TEAMS_FINANCE_WORKFLOW_URL: TEAMS_URL,
};
const checkConfig = (e: Record<string, string>) => runNode('src/cli/index.ts', ['check-config', '--json'], e);

describe('keywarden check-config with receivers', () => {
  it('prints every receiver with its variable and a masked value, and no secret', async () => {
    const { code, output } = await checkConfig(env);
    expect(code).toBe(0);
    for (const secret of [ROUTING_KEY, SECRET, '0123abcd', 'Zm9vYmFy', 'MfKQ9r8G'])
      expect(output).not.toContain(secret);
    const shown = JSON.parse(output.slice(output.indexOf('{'), output.lastIndexOf('}') + 1));
    expect(shown.receivers).toEqual({
      pagerduty: { oncall: { routing_key_env: 'PAGERDUTY_ROUTING_KEY', routing_key: '****CDEF' } },
      webhook: {
        ops: { url: 'https://hooks.example/keywarden', secret_env: 'OPS_WEBHOOK_SECRET', secrets: ['****LaSw'] },
      },
      teams: {
        finance: { url_env: 'TEAMS_FINANCE_WORKFLOW_URL', url: 'https://prod-12.westeurope.logic.azure.com/****' },
      },
    });
  });

  it('a receiver whose variable is unset: exit 2, the field and the fix', async () => {
    const { OPS_WEBHOOK_SECRET: _, ...without } = env;
    const { code, output } = await checkConfig(without);
    expect(code).toBe(2);
    expect(output.trim()).toBe(
      'config: examples/receivers.yaml: receivers.webhook.ops.secret_env: OPS_WEBHOOK_SECRET is not set: export OPS_WEBHOOK_SECRET (or OPS_WEBHOOK_SECRET_FILE naming a file that holds it)',
    );
  });
});
