import { describe, expect, it } from 'vitest';
import { type AlertObservation, observationFingerprint } from '../../src/alerts/core/lifecycle.ts';
import {
  type AlertRouting,
  type AlertView,
  type Destination,
  planRaise,
  planRaiseInSteps,
  type StoredAlertView,
} from '../../src/alerts/core/plan.ts';
import type { AlertKind } from '../../src/kinds.ts';
import { overdueObservation } from '../support/alerts.ts';

const HOUR = 3_600_000;
const NOW = new Date('2026-11-29T10:00:00Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms);

function runaway(keyId: string, workspaceName = 'Research'): AlertObservation {
  return {
    kind: 'usage.runaway',
    severity: 'critical',
    scopeType: 'key',
    scopeId: keyId,
    workspaceId: `wrkspc_${workspaceName}`,
    workspaceName,
    period: '',
    title: `Runaway spend on key ${keyId}`,
    summary: 'The key spent $412.50 in the last 10 minutes.',
    fields: [{ label: 'Key', value: keyId }],
    details: {},
  };
}

function threshold(t: number): AlertObservation {
  return {
    kind: 'spend.threshold',
    severity: t >= 1 ? 'critical' : 'warning',
    scopeType: 'organization',
    scopeId: 'org',
    workspaceId: null,
    period: `2026-11@${t}`,
    title: `Spend at ${t * 100}% of the limit`,
    details: { threshold: t },
  };
}

/** What the store would hold for `o`, firing and last notified `notifiedAgo` ago (null: never). */
function stored(o: AlertObservation, s: Partial<StoredAlertView> = {}): StoredAlertView {
  return {
    id: `id-${o.scopeId}`,
    fingerprint: observationFingerprint(o),
    kind: o.kind,
    scopeType: o.scopeType,
    scopeId: o.scopeId,
    severity: o.severity,
    workspaceId: o.workspaceId,
    period: o.period,
    title: o.title,
    state: 'firing',
    lastNotifiedAt: ago(30 * 60_000),
    inhibitedBy: null,
    content: {
      details: o.details,
      summary: o.summary ?? '',
      fields: o.fields ?? [],
      links: [],
      workspaceName: o.workspaceName ?? null,
      keyOwnerEmail: o.keyOwnerEmail ?? null,
    },
    ...s,
  };
}

/**
 * A small routing like the policy's: runaways to the workspace's channel, repeated hourly; rotation to #security
 * and the key owner, every 4 h, with a note when the owner is unknown; spend to #finance.
 */
function routing(alert: AlertView): AlertRouting<Destination> {
  if (alert.kind === 'usage.runaway') {
    return { targets: [{ channel: 'slack', target: `#${alert.workspaceName}` }], repeatEveryMs: HOUR, notes: [] };
  }
  if (alert.kind === 'rotation.overdue') {
    const owner = alert.keyOwnerEmail;
    return {
      targets: [{ channel: 'slack', target: '#security' }, ...(owner ? [{ channel: 'email', target: owner }] : [])],
      repeatEveryMs: 4 * HOUR,
      notes: owner ? [] : ['The key owner could not be notified.'],
    };
  }
  return { targets: [{ channel: 'slack', target: '#finance' }], repeatEveryMs: 4 * HOUR, notes: [] };
}

function plan(kinds: AlertKind[], observations: AlertObservation[], storedAlerts: StoredAlertView[] = []) {
  const routed: string[] = [];
  const p = planRaise({
    kinds,
    observations,
    stored: storedAlerts,
    route: (a) => {
      routed.push(a.fingerprint);
      return routing(a);
    },
    now: NOW,
  });
  const messages = p.messages.map((m) => ({
    event: m.event,
    to: `${m.to.channel}:${m.to.target}`,
    alerts: m.alerts.map((a) => a.title),
    notes: m.notes,
    single: m.alertFingerprint !== null,
  }));
  return { plan: p, routed, messages };
}

const k1 = runaway('k1');
const k2 = runaway('k2');
const k3 = runaway('k3', 'Support');

describe('planRaise: messages, one per target, routed once per alert', () => {
  it.each<[string, AlertKind[], AlertObservation[], StoredAlertView[], ReturnType<typeof plan>['messages']]>([
    [
      'a new runaway: one firing post to its workspace channel',
      ['usage.runaway'],
      [k1],
      [],
      [{ event: 'firing', to: 'slack:#Research', alerts: [k1.title], notes: [], single: true }],
    ],
    [
      'a storm in two workspaces: one post per channel, listing its keys',
      ['usage.runaway'],
      [k1, k2, k3],
      [],
      [
        { event: 'firing', to: 'slack:#Research', alerts: [k1.title, k2.title], notes: [], single: false },
        { event: 'firing', to: 'slack:#Support', alerts: [k3.title], notes: [], single: true },
      ],
    ],
    [
      'still firing after the route’s hour: repeated; the other key, notified 30 min ago, is not',
      ['usage.runaway'],
      [k1, k2],
      [stored(k1, { lastNotifiedAt: ago(HOUR) }), stored(k2)],
      [{ event: 'repeat', to: 'slack:#Research', alerts: [k1.title], notes: [], single: true }],
    ],
    [
      'no longer observed: resolved, to where the stored alert routes',
      ['usage.runaway'],
      [],
      [stored(k3)],
      [{ event: 'resolved', to: 'slack:#Support', alerts: [k3.title], notes: [], single: true }],
    ],
    [
      'an overdue key with an owner: #security and the owner',
      ['rotation.overdue'],
      [overdueObservation('k9', 'k9', 'ana@acme.com')],
      [],
      [
        { event: 'firing', to: 'slack:#security', alerts: ['Key k9 is overdue for rotation'], notes: [], single: true },
        {
          event: 'firing',
          to: 'email:ana@acme.com',
          alerts: ['Key k9 is overdue for rotation'],
          notes: [],
          single: true,
        },
      ],
    ],
    [
      'an overdue key without an owner: #security, told why the owner was not',
      ['rotation.overdue'],
      [overdueObservation('k9', 'k9', null)],
      [],
      [
        {
          event: 'firing',
          to: 'slack:#security',
          alerts: ['Key k9 is overdue for rotation'],
          notes: ['The key owner could not be notified.'],
          single: true,
        },
      ],
    ],
    [
      'the limit reached inhibits the 80% threshold: one message, the 100%',
      ['spend.threshold'],
      [threshold(0.8), threshold(1)],
      [],
      [{ event: 'firing', to: 'slack:#finance', alerts: ['Spend at 100% of the limit'], notes: [], single: true }],
    ],
  ])('%s', (_name, kinds, observations, storedAlerts, expected) => {
    expect(plan(kinds, observations, storedAlerts).messages).toEqual(expected);
  });

  it('a storm to Slack and PagerDuty: one Slack post listing the keys, one PagerDuty message per key (its incident)', () => {
    const p = planRaise({
      kinds: ['usage.runaway'],
      observations: [k1, k2],
      stored: [],
      route: () => ({
        targets: [
          { channel: 'slack', target: '#ai-alerts' },
          { channel: 'pagerduty', target: 'oncall' },
        ],
        repeatEveryMs: HOUR,
        notes: [],
      }),
      now: NOW,
    });
    expect(p.messages.map((m) => [`${m.to.channel}:${m.to.target}`, m.alerts.map((a) => a.title)])).toEqual([
      ['slack:#ai-alerts', [k1.title, k2.title]],
      ['pagerduty:oncall', [k1.title]],
      ['pagerduty:oncall', [k2.title]],
    ]);
    expect(p.messages.filter((m) => m.to.channel === 'pagerduty').map((m) => m.alertFingerprint)).toEqual(
      [k1, k2].map(observationFingerprint),
    );
  });

  it('routes each alert once, though its routing gives both its repeat interval and its targets', () => {
    const { routed } = plan(['usage.runaway'], [k1, k2], [stored(k1, { lastNotifiedAt: ago(2 * HOUR) }), stored(k3)]);
    expect(routed.sort()).toEqual([k1, k2, k3].map(observationFingerprint).sort());
  });
});

describe('planRaise: alert rows', () => {
  it('a first firing starts an episode; a repeat keeps it; an inhibited alert is stored, not sent', () => {
    const { plan: p } = plan(
      ['usage.runaway', 'spend.threshold'],
      [k1, k2, threshold(0.8), threshold(1)],
      [stored(k2, { lastNotifiedAt: ago(HOUR) })],
    );
    expect(
      p.writes.map((w) =>
        w.op === 'fire' ? [w.row.scopeId, w.row.inhibitedBy !== null, w.notified, w.newEpisode] : w,
      ),
    ).toEqual([
      ['k1', false, true, true],
      ['k2', false, true, false],
      ['org', true, false, true],
      ['org', false, true, true],
    ]);
    expect([p.fired, p.repeated, p.resolved]).toEqual([2, 1, 0]);
  });

  it('an alert still firing exactly as stored is only marked seen; a changed one is written', () => {
    const asStored = (o: AlertObservation) => stored(o, { content: { ...stored(o).content, scopeName: null } });
    const changed = { ...runaway('k2'), summary: 'The key spent $9,000.00 in the last 10 minutes.' };
    const { plan: p } = plan(['usage.runaway'], [k1, changed], [asStored(k1), asStored(k2)]);
    expect(p.writes).toEqual([
      { op: 'seen', fingerprint: observationFingerprint(k1), id: 'id-k1' },
      expect.objectContaining({ op: 'fire', notified: false, newEpisode: false }),
    ]);
  });

  it('an alert seen again after it resolved, or due to repeat, is written', () => {
    const quiet = {
      ...stored(k1, { lastNotifiedAt: ago(5 * 60_000) }),
      content: { ...stored(k1).content, scopeName: null },
    };
    expect(plan(['usage.runaway'], [k1], [{ ...quiet, state: 'resolved' }]).plan.writes[0]?.op).toBe('fire');
    expect(plan(['usage.runaway'], [k1], [{ ...quiet, lastNotifiedAt: ago(HOUR) }]).plan.writes[0]?.op).toBe('fire');
  });

  it('firing again after it resolved is a new episode', () => {
    const { plan: p } = plan(['usage.runaway'], [k1], [stored(k1, { state: 'resolved' })]);
    expect(p.writes).toMatchObject([{ op: 'fire', notified: true, newEpisode: true }]);
  });

  it('a resolve names the stored row; one never announced ends unsaid', () => {
    const quiet = runaway('k4');
    const { plan: p, messages } = plan(['usage.runaway'], [], [stored(k1), stored(quiet, { lastNotifiedAt: null })]);
    expect(p.writes).toEqual([
      { op: 'resolve', fingerprint: observationFingerprint(k1), id: 'id-k1', notified: true },
      { op: 'resolve', fingerprint: observationFingerprint(quiet), id: 'id-k4', notified: false },
    ]);
    expect(messages.map((m) => m.event)).toEqual(['resolved']);
    expect(p.resolved).toBe(2);
  });

  it('the row keeps what a resolve message needs: summary, fields and routing facts', () => {
    const { plan: p } = plan(['usage.runaway'], [k1]);
    expect(p.writes[0]).toMatchObject({
      op: 'fire',
      row: {
        details: {
          summary: k1.summary,
          fields: k1.fields,
          links: [],
          workspaceName: 'Research',
          keyOwnerEmail: null,
        },
      },
    });
  });
});

describe('planRaiseInSteps', () => {
  it('plans thousands of alerts in steps, with the plan planRaise makes at once', () => {
    const many = Array.from({ length: 1200 }, (_, i) => runaway(`k${i}`));
    const input = {
      kinds: ['usage.runaway' as const],
      observations: many,
      stored: many.slice(0, 600).map((o) => stored(o)),
      route: routing,
      now: NOW,
    };
    const steps = planRaiseInSteps(input);
    let yields = 0;
    let step = steps.next();
    for (; !step.done; step = steps.next()) yields++;
    expect(yields).toBeGreaterThanOrEqual(3);
    expect(step.value).toEqual(planRaise(input));
  });
});
