import { describe, expect, it } from 'vitest';
import { policySchema } from '../../src/config/policy.ts';
import { NO_OWNER_NOTE, type RoutableAlert, routeAlert } from '../../src/notify/routing.ts';

const routes = policySchema.parse({
  routes: [
    { match: { kind: 'usage.*', workspace: 'Research' }, slack: ['#research'], continue: true },
    { match: { kind: 'usage.*' }, slack: ['#ai-alerts'], repeat_every: '1h' },
    {
      match: { kind: 'spend.*', severity: 'critical' },
      slack: ['#finance-urgent'],
      email: ['cfo@acme.com'],
      continue: true,
    },
    { match: { kind: 'spend.*' }, slack: ['#finance'], email: ['finance@acme.com', 'CFO@acme.com'] },
    { match: { kind: 'rotation.*' }, slack: ['#security'], email: ['key_owner', 'security@acme.com'] },
    { match: {}, slack: ['#catch-all'] },
  ],
}).routes;

function alert(a: Partial<RoutableAlert>): RoutableAlert {
  return {
    kind: 'usage.runaway',
    severity: 'warning',
    workspaceId: null,
    workspaceName: null,
    keyOwnerEmail: null,
    ...a,
  };
}

describe('routeAlert', () => {
  it.each<[string, Partial<RoutableAlert>, string[]]>([
    ['kind glob, first match wins', {}, ['slack:#ai-alerts']],
    ['workspace by name, continue: true', { workspaceName: 'Research' }, ['slack:#research', 'slack:#ai-alerts']],
    // a route names a workspace by id only when it reads wrkspc_…: "Research" is a name
    ['an id equal to the route’s name', { workspaceId: 'Research' }, ['slack:#ai-alerts']],
    [
      'severity: warning skips the critical route',
      { kind: 'spend.threshold' },
      ['slack:#finance', 'email:finance@acme.com', 'email:CFO@acme.com'],
    ],
    [
      'severity: critical adds it, and one recipient gets one copy',
      { kind: 'spend.threshold', severity: 'critical' },
      ['slack:#finance-urgent', 'email:cfo@acme.com', 'slack:#finance', 'email:finance@acme.com'],
    ],
    [
      'key_owner resolves to the creator',
      { kind: 'rotation.overdue', keyOwnerEmail: 'ana@acme.com' },
      ['slack:#security', 'email:ana@acme.com', 'email:security@acme.com'],
    ],
    ['no route matched but the catch-all', { kind: 'keywarden.blind' }, ['slack:#catch-all']],
  ])('%s', (_name, a, expected) => {
    expect(routeAlert(alert(a), routes).targets.map((t) => `${t.channel}:${t.target}`)).toEqual(expected);
  });

  it('key_owner without a known creator is dropped, noted, and the security route still gets it', () => {
    const r = routeAlert(alert({ kind: 'rotation.overdue' }), routes);
    expect(r.targets.map((t) => t.target)).toEqual(['#security', 'security@acme.com']);
    expect(r.notes).toEqual([NO_OWNER_NOTE]);
  });

  it('repeat interval: the shortest of the matching routes, 4 h by default', () => {
    expect(routeAlert(alert({ workspaceName: 'Research' }), routes).repeatEveryMs).toBe(3_600_000);
    expect(routeAlert(alert({ kind: 'keywarden.blind' }), routes).repeatEveryMs).toBe(4 * 3_600_000);
    expect(routeAlert(alert({ kind: 'keywarden.blind' }), []).targets).toEqual([]);
  });
});
