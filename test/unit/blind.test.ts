import { describe, expect, it } from 'vitest';
import { AdminKeyRejectedError } from '../../src/anthropic/errors.ts';
import { parsePolicy, type Route } from '../../src/config/index.ts';
import { blindObservation, blindRoutes } from '../../src/health/blind.ts';
import { routeAlert } from '../../src/notify/routing.ts';

const rejection = new AdminKeyRejectedError({
  status: 401,
  errorType: 'authentication_error',
  requestId: 'req_011',
  endpoint: 'GET /v1/organizations/api_keys',
  keyHint: 'sk-ant-admin01-****WXYZ',
  serverMessage: 'invalid x-api-key',
});

function routesOf(yaml: string): Route[] {
  const problems: string[] = [];
  const policy = parsePolicy(yaml, 'keywarden.yaml', problems);
  if (!policy) throw new Error(problems.join('\n'));
  return policy.routes;
}

const BLIND = {
  kind: 'keywarden.blind' as const,
  severity: 'critical' as const,
  workspaceId: null,
  workspaceName: null,
  keyOwnerEmail: null,
};
const targetsOf = (routes: readonly Route[]) =>
  routeAlert(BLIND, routes).targets.map((t) => `${t.channel}:${t.target}`);

describe('the keywarden.blind alert', () => {
  it('is critical, one per organization, and says what is wrong and what to do, by the key hint only', () => {
    const o = blindObservation(rejection);
    expect(o).toMatchObject({ kind: 'keywarden.blind', severity: 'critical', scopeType: 'organization', period: '' });
    expect(o.summary).toMatch(
      /rejected the admin key sk-ant-admin01-\*\*\*\*WXYZ on GET \/v1\/organizations\/api_keys/,
    );
    expect(o.summary).toMatch(/401 authentication_error: invalid x-api-key, request req_011/);
    expect(o.summary).toMatch(/set ANTHROPIC_ADMIN_KEY/);
    expect(o.fields).toContainEqual({ label: 'Admin key', value: 'sk-ant-admin01-****WXYZ' });
  });

  it('names the organization where the deployment watches several, and where its key comes from', () => {
    const o = blindObservation(rejection, 'Acme EMEA');
    expect(o.title).toBe('keywarden is blind to Acme EMEA: the Admin API rejects its admin key');
    expect(o.summary).toMatch(
      /Acme EMEA's key is the one its entry under organizations: names \(admin_key_env or admin_key_file\)/,
    );
    expect(o.summary).toMatch(/polls no usage of Acme EMEA/);
    expect(o.fields).toContainEqual({ label: 'Organization', value: 'Acme EMEA' });
    expect(blindObservation(rejection).title).toBe('keywarden is blind: the Admin API rejects the admin key');
  });

  it.each([
    [
      'a route for keywarden.* wins',
      'routes:\n  - { match: { kind: "keywarden.*" }, slack: ["#ops"] }\n  - { match: { kind: "spend.*" }, slack: ["#finance"] }\n',
      ['slack:#ops'],
    ],
    [
      'a catch-all route wins',
      'routes:\n  - { match: { kind: "spend.*" }, slack: ["#finance"] }\n  - { slack: ["#everything"] }\n',
      ['slack:#everything'],
    ],
    [
      'no matching route: every channel and address the routes name, owners aside',
      'routes:\n  - { match: { kind: "spend.*" }, slack: ["#finance"], email: ["cfo@acme.com"] }\n  - { match: { kind: "rotation.*" }, slack: ["#security", "#finance"], email: ["key_owner", "sec@acme.com"] }\n',
      ['slack:#finance', 'slack:#security', 'email:cfo@acme.com', 'email:sec@acme.com'],
    ],
    [
      'no matching route: the receivers the routes name too (on-call must hear that keywarden went blind)',
      'receivers:\n  pagerduty: { oncall: { routing_key_env: PD_KEY } }\n  webhook: { ops: { url: "https://h.example/k", secret_env: OPS_SECRET } }\nroutes:\n  - { match: { kind: "usage.*" }, pagerduty: ["oncall"] }\n  - { match: { kind: "rotation.*" }, slack: ["#security"], webhook: ["ops"] }\n',
      ['slack:#security', 'pagerduty:oncall', 'webhook:ops'],
    ],
    ['no routes at all: recorded, sent nowhere', '{}\n', []],
  ])('%s', (_name, yaml, expected) => {
    expect(targetsOf(blindRoutes(routesOf(yaml)))).toEqual(expected);
  });
});
