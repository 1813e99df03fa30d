import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { runNode } from '../support/processes.ts';

/**
 * `keywarden check-config --probe` (issue #15 item 7) against the emulator: each Admin API called once with the
 * configured admin key, a table of what answers and what keywarden will use, with and without each refusal.
 */

const ADMIN_KEY = 'sk-ant-admin01-check-config-probe-test-0001';
let em: Emulator;

beforeAll(async () => {
  em = await startEmulator({
    scenario: parseScenario({ name: 'probe', admin_keys: [ADMIN_KEY], workspaces: [{ name: 'Alpha' }] }),
  });
});
afterAll(async () => {
  await em.close();
});

const probe = (args: string[] = [], env: Record<string, string> = {}) =>
  runNode('src/cli/index.ts', ['check-config', '--probe', ...args], {
    KEYWARDEN_CONFIG: 'examples/keywarden.yaml',
    ANTHROPIC_ADMIN_KEY: ADMIN_KEY,
    ANTHROPIC_BASE_URL: em.url,
    ...env,
  });

interface ProbeJson {
  probe: {
    results: { name: string; available: boolean; status: number; answer: string | null }[];
    uses: Record<string, string>;
    problems: string[];
  };
}

function parsed(output: string): ProbeJson {
  return JSON.parse(output.slice(output.indexOf('{'), output.lastIndexOf('}') + 1)) as ProbeJson;
}

describe('keywarden check-config --probe', () => {
  it('prints which APIs answer and what keywarden will use; each is called once', async () => {
    const before = em.requestLog.length;
    const { code, output } = await probe();
    expect(code).toBe(0);
    expect(output).toMatch(/^classic usage report +yes +200$/m);
    expect(output).toMatch(/^classic cost report +yes +200$/m);
    expect(output).toMatch(/^spend limits +yes +200$/m);
    expect(output).toMatch(/^rate limits +yes +200$/m);
    expect(output).toMatch(/^member spend limits \(Enterprise\) +no +400 organization_type_not_supported$/m);
    expect(output).toContain('member spend limits: not used (Enterprise only; this organization does not answer)');
    expect(output).toContain(
      'spend limits: the Spend Limits API (organization, workspaces, usage tier) and the policy file',
    );
    expect(output).not.toContain(ADMIN_KEY);
    const requests = em.requestLog.slice(before).map((r) => r.path.split('?')[0]);
    expect(requests.length).toBe(new Set(requests).size);
    expect(requests).toHaveLength(8);
  });

  it('an Enterprise organization: the per-member report and the increase requests are used', async () => {
    const enterprise = await startEmulator({
      scenario: parseScenario({
        name: 'probe-enterprise',
        admin_keys: [ADMIN_KEY],
        users: [{ name: 'Ana', email: 'ana@ent.example', role: 'developer' }],
        spend_limits: {
          organization_type: 'enterprise',
          members: [{ user: 'ana@ent.example', amount_usd: 100 }],
        },
      }),
    });
    try {
      const { code, output } = await probe([], { ANTHROPIC_BASE_URL: enterprise.url });
      expect(code).toBe(0);
      expect(output).toMatch(/^member spend limits \(Enterprise\) +yes +200$/m);
      expect(output).toMatch(/^spend limit increase requests \(Enterprise\) +yes +200$/m);
      expect(output).toContain(
        "member spend limits: the per-member report: 75% and 95% of each member's limit, by email to the member",
      );
      expect(output).toContain('limit increase requests: the pending ones in the finance digest');
    } finally {
      await enterprise.close();
    }
  });

  it('--json: the effective config with a probe section; spend limits refused (no early access) → the policy file', async () => {
    await fetch(`${em.url}/_emulator/spend-limits`, {
      method: 'POST',
      body: JSON.stringify({ access: 'not_enabled' }),
    });
    try {
      const { code, output } = await probe(['--json']);
      expect(code).toBe(0);
      const { probe: p } = parsed(output);
      expect(p.results.find((r) => r.name === 'spend limits')).toMatchObject({
        available: false,
        status: 403,
        answer: 'spend_limits_admin_api_writes_not_enabled',
      });
      expect(p.uses['spend limits']).toBe('the policy file (the Spend Limits API does not answer)');
      expect(p.problems).toEqual([]);
    } finally {
      await fetch(`${em.url}/_emulator/spend-limits`, { method: 'POST', body: JSON.stringify({ access: 'enabled' }) });
    }
  });

  it('the cost report refused: billed cost does not use it; the usage report refused: exit 2', async () => {
    em.setFaults({
      script: [{ status: 403, errorCode: 'api_key_scope_missing', path: '/v1/organizations/cost_report' }],
    });
    const cost = await probe(['--json']);
    expect(cost.code).toBe(0);
    expect(parsed(cost.output).probe.results.find((r) => r.name === 'classic cost report')).toMatchObject({
      available: false,
      answer: 'api_key_scope_missing',
    });
    expect(parsed(cost.output).probe.uses['billed cost']).not.toMatch(/classic cost report/);

    em.setFaults({ script: [{ status: 500, path: '/v1/organizations/usage_report' }] });
    const usage = await probe();
    em.setFaults({});
    expect(usage.code).toBe(2);
    expect(usage.output).toMatch(/^classic usage report +no +500 api_error$/m);
    expect(usage.output).toContain(
      'probe: GET /v1/organizations/usage_report/messages (classic usage report) answered 500',
    );
  });

  it('a bare 403 on the usage report (a key that is not an admin key) is a refused admin key, not a missing feature', async () => {
    em.setFaults({ script: [{ status: 403, path: '/v1/organizations/usage_report' }] });
    const r = await probe();
    em.setFaults({});
    expect(r.code).toBe(2);
    expect(r.output).toContain('probe: the Admin API refused the admin key');
  });

  it('a refused admin key: exit 2 and says so; without a key: a usage error', async () => {
    const refused = await probe([], { ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-not-the-right-key-000000' });
    expect(refused.code).toBe(2);
    expect(refused.output).toContain('probe: the Admin API refused the admin key');
    expect(refused.output).not.toContain('not-the-right-key');
    const without = await probe([], { ANTHROPIC_ADMIN_KEY: '' });
    expect(without.code).toBe(2);
    expect(without.output).toContain('--probe: ANTHROPIC_ADMIN_KEY is not set');
  });
});
