import { describe, expect, it } from 'vitest';
import type { Baseline } from '../../src/anomaly/core/baseline.ts';
import { type ExpectedMark, expectedNote } from '../../src/anomaly/core/expected.ts';
import {
  type DetectionInput,
  type DetectionPlan,
  detectionRange,
  type KeyInfo,
  planDetection,
  type ScopeState,
  scopeKey,
} from '../../src/anomaly/core/plan.ts';
import { type MinuteSpend, recentMinutesNeeded } from '../../src/anomaly/core/runaway.ts';
import { type AnomalyPolicy, policySchema } from '../../src/config/policy.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** The worker's clock; the poll committed data up to a minute before it. */
const NOW = new Date('2026-06-08T10:30:00Z');
const SETTLED = new Date('2026-06-08T10:29:00Z');
/** Five minutes before NOW, less the minute: the last complete minute. */
const DATA_UNTIL = new Date('2026-06-08T10:24:00Z');
const THIS_HOUR = new Date('2026-06-08T10:00:00Z');
const LAST_HOUR = new Date('2026-06-08T09:00:00Z');

function anomalyPolicy(over: Record<string, unknown> = {}): AnomalyPolicy {
  return policySchema.parse({ anomaly: over }).anomaly;
}
const policy = anomalyPolicy(); // factor 5, min_hourly_usd 5: a key typical at $1/h runs away above $5/h
const killSwitchOn = anomalyPolicy({ auto_deactivate: { enabled: true } }); // hard cap $200/h

const baseline = (typicalHourlyUsd = 1): Baseline => ({
  typicalHourlyUsd,
  source: 'hour_of_week',
  samples: 5,
  minuteDispersionUsd: 0.01,
  activeShare: 1,
  persistence: 1,
});

/** Every minute of the look-back up to DATA_UNTIL at `hourly` $/h. */
function spend(hourly: number): MinuteSpend[] {
  const n = recentMinutesNeeded(policy);
  return Array.from({ length: n }, (_, i) => ({
    minute: new Date(DATA_UNTIL.getTime() - (n - 1 - i) * MINUTE),
    usd: hourly / 60,
  }));
}

/** A stored state: by default quiet, with the baseline of this hour. */
function state(type: 'key' | 'workspace', id: string, over: Partial<ScopeState> = {}): ScopeState {
  return {
    scopeType: type,
    scopeId: id,
    runaway: {
      firing: false,
      since: null,
      lastAbnormal: null,
      evaluatedUntil: new Date(DATA_UNTIL.getTime() - MINUTE),
    },
    baseline: { hour: THIS_HOUR, value: baseline() },
    coveredByKey: false,
    deactivatedFor: null,
    killSwitchEvidence: null,
    ...over,
  };
}

/** Firing since `minutesAgo` before DATA_UNTIL, abnormal until `abnormalAgo` minutes before it (30: it resolves). */
function firing(
  type: 'key' | 'workspace',
  id: string,
  minutesAgo: number,
  over: Partial<ScopeState> = {},
  abnormalAgo = 1,
) {
  const at = (m: number) => new Date(DATA_UNTIL.getTime() - m * MINUTE);
  return state(type, id, {
    runaway: { firing: true, since: at(minutesAgo), lastAbnormal: at(abnormalAgo), evaluatedUntil: at(1) },
    ...over,
  });
}
const sinceOf = (s: ScopeState) => s.runaway!.since!;

function key(id: string, over: Partial<KeyInfo> = {}): KeyInfo {
  return {
    id,
    name: `name of ${id}`,
    status: 'active',
    partialKeyHint: 'sk-ant-api03-…AbCd',
    workspaceScope: 'wrkspc_1',
    workspaceName: 'Research',
    createdAt: new Date('2025-01-01T00:00:00Z'),
    ...over,
  };
}

interface World {
  settled?: Date | null;
  keys?: Record<string, { hourly?: number; workspace?: string; info?: KeyInfo | null; state?: ScopeState }>;
  workspaces?: Record<string, { hourly?: number; state?: ScopeState }>;
  /** scopeKey → the baseline computed this hour (for the scopes whose stored one is older). */
  baselines?: Record<string, Baseline>;
}

function input(w: World): DetectionInput {
  const keys = new Map<string, { workspaceScope: string; recent: MinuteSpend[] }>();
  const workspaces = new Map<string, MinuteSpend[]>();
  const states = new Map<string, ScopeState>();
  const infos = new Map<string, KeyInfo>();
  for (const [id, k] of Object.entries(w.keys ?? {})) {
    if (k.hourly !== undefined) keys.set(id, { workspaceScope: k.workspace ?? 'wrkspc_1', recent: spend(k.hourly) });
    if (k.state) states.set(scopeKey('key', id), k.state);
    if (k.info !== null) infos.set(id, k.info ?? key(id));
  }
  for (const [id, ws] of Object.entries(w.workspaces ?? {})) {
    if (ws.hourly !== undefined) workspaces.set(id, spend(ws.hourly));
    if (ws.state) states.set(scopeKey('workspace', id), ws.state);
  }
  return {
    settled: w.settled === undefined ? SETTLED : w.settled,
    series: { keys, workspaces },
    states,
    keys: infos,
    workspaces: new Map([
      ['wrkspc_1', { scope: 'wrkspc_1', name: 'Research', createdAt: null }],
      ['default', { scope: 'default', name: 'Default Workspace', createdAt: null }],
    ]),
    baselines: new Map(Object.entries(w.baselines ?? {})),
  };
}

const judgedIds = (p: DetectionPlan) => p.judged.map((j) => scopeKey(j.state.scopeType, j.state.scopeId));
const alerted = (p: DetectionPlan) => p.alerts.map((a) => `${a.scope.type}:${a.scope.id}`);
const saved = (p: DetectionPlan) => p.save.map((s) => scopeKey(s.scopeType, s.scopeId));
const stateOf = (p: DetectionPlan, k: string) =>
  p.judged.find((j) => scopeKey(j.state.scopeType, j.state.scopeId) === k)?.state;

describe('planDetection: who is judged, against which baseline', () => {
  it('reads up to 5 minutes before now, or to the newest minute the poll saw, whichever is earlier', () => {
    expect(detectionRange(NOW, SETTLED, policy)?.dataUntil).toEqual(DATA_UNTIL);
    const lagging = new Date('2026-06-08T10:20:00Z');
    expect(detectionRange(NOW, lagging, policy)?.dataUntil).toEqual(new Date('2026-06-08T10:19:00Z'));
    expect(detectionRange(NOW, SETTLED, policy)?.hour).toEqual(THIS_HOUR);
  });

  it.each<[string, World, string[], number]>([
    ['nothing polled yet: nothing is judged', { settled: null, keys: { k1: { hourly: 120 } } }, [], 0],
    [
      'a key with spend is judged, with its stored baseline of this hour',
      { keys: { k1: { hourly: 0.5, state: state('key', 'k1') } } },
      ['key:k1'],
      0,
    ],
    [
      'a key whose stored baseline is of the hour before is judged against the one computed for this hour',
      {
        keys: { k1: { hourly: 0.5, state: state('key', 'k1', { baseline: { hour: LAST_HOUR, value: baseline() } }) } },
        baselines: { 'key:k1': baseline(2) },
      },
      ['key:k1'],
      1,
    ],
    [
      'a key with no baseline at all (none stored, none computed) waits for one',
      { keys: { k1: { hourly: 120 } } },
      [],
      0,
    ],
    [
      'a firing key with no spend left is still judged, or its alert would never resolve',
      { keys: { k1: { state: firing('key', 'k1', 20) } } },
      ['key:k1'],
      0,
    ],
    ['a quiet key without spend is not judged', { keys: { k1: { state: state('key', 'k1') } } }, [], 0],
    [
      'keys first, then workspaces',
      {
        workspaces: { wrkspc_1: { hourly: 0.5, state: state('workspace', 'wrkspc_1') } },
        keys: { k1: { hourly: 0.5, state: state('key', 'k1') } },
      },
      ['key:k1', 'workspace:wrkspc_1'],
      0,
    ],
  ])('%s', (_name, w, judged, computed) => {
    const plan = planDetection(input(w), policy, NOW);
    expect(judgedIds(plan)).toEqual(judged);
    expect(plan.baselinesComputed).toBe(computed);
  });

  it('stores the computed baseline with its hour, so it is computed once an hour', () => {
    const plan = planDetection(
      input({
        keys: { k1: { hourly: 0.5, state: state('key', 'k1', { baseline: { hour: LAST_HOUR, value: baseline() } }) } },
        baselines: { 'key:k1': baseline(2) },
      }),
      policy,
      NOW,
    );
    expect(stateOf(plan, 'key:k1')?.baseline).toEqual({ hour: THIS_HOUR, value: baseline(2) });
    expect(plan.judged[0]?.assessment.typicalHourlyUsd).toBe(2);
  });
});

describe('planDetection: one alert per runaway', () => {
  it.each<[string, World, string[], Record<string, boolean>]>([
    ['a key runs away: its alert', { keys: { k1: { hourly: 120, state: state('key', 'k1') } } }, ['key:k1'], {}],
    [
      'a workspace runs away while one of its keys does: the key says it, once',
      {
        keys: { k1: { hourly: 120, state: state('key', 'k1') } },
        workspaces: { wrkspc_1: { hourly: 120, state: state('workspace', 'wrkspc_1') } },
      },
      ['key:k1'],
      { 'workspace:wrkspc_1': true },
    ],
    [
      'a workspace runs away with none of its keys firing (spread over many keys): the workspace alert',
      {
        keys: { k1: { hourly: 3, state: state('key', 'k1') }, k2: { hourly: 3, state: state('key', 'k2') } },
        workspaces: { wrkspc_1: { hourly: 120, state: state('workspace', 'wrkspc_1') } },
      },
      ['workspace:wrkspc_1'],
      { 'workspace:wrkspc_1': false },
    ],
    [
      "a key of another workspace firing does not cover this workspace's runaway",
      {
        keys: {
          k1: {
            hourly: 120,
            workspace: 'wrkspc_2',
            info: key('k1', { workspaceScope: 'wrkspc_2' }),
            state: state('key', 'k1'),
          },
        },
        workspaces: { wrkspc_1: { hourly: 120, state: state('workspace', 'wrkspc_1') } },
      },
      ['key:k1', 'workspace:wrkspc_1'],
      { 'workspace:wrkspc_1': false },
    ],
    [
      "a key the inventory does not know yet counts in its usage rows' workspace",
      {
        keys: { k1: { hourly: 120, workspace: 'wrkspc_1', info: null, state: state('key', 'k1') } },
        workspaces: { wrkspc_1: { hourly: 120, state: state('workspace', 'wrkspc_1') } },
      },
      ['key:k1'],
      { 'workspace:wrkspc_1': true },
    ],
    [
      'a covered workspace episode stays covered after its key resolves: no late workspace alert',
      {
        keys: {
          k1: {
            hourly: 0.5,
            state: firing('key', 'k1', 60, {}, 40),
          },
        },
        workspaces: { wrkspc_1: { hourly: 120, state: firing('workspace', 'wrkspc_1', 60, { coveredByKey: true }) } },
      },
      [],
      { 'workspace:wrkspc_1': true },
    ],
  ])('%s', (_name, w, alerts, covered) => {
    const plan = planDetection(input(w), policy, NOW);
    expect(alerted(plan)).toEqual(alerts);
    for (const [k, v] of Object.entries(covered)) expect(stateOf(plan, k)?.coveredByKey).toBe(v);
  });

  it("names the key, its hint and its workspace, and reads the run's spend from its first minute", () => {
    const plan = planDetection(input({ keys: { k1: { hourly: 120, state: state('key', 'k1') } } }), policy, NOW);
    const [a] = plan.alerts;
    expect(a?.scope).toEqual({
      type: 'key',
      id: 'k1',
      name: 'name of k1',
      hint: 'sk-ant-api03-…AbCd',
      workspaceId: 'wrkspc_1',
      workspaceName: 'Research',
    });
    expect(a?.breakdown).toEqual({
      scope: { keyId: 'k1' },
      from: a?.judged.assessment.startedAt,
      until: new Date(DATA_UNTIL.getTime() + 16 * MINUTE),
    });
  });

  it('a key the inventory does not know is named by its id; Default Workspace usage says so', () => {
    const plan = planDetection(
      input({
        keys: { k1: { hourly: 120, workspace: 'default', info: null, state: state('key', 'k1') } },
        workspaces: { default: { hourly: 120, state: state('workspace', 'default') } },
      }),
      policy,
      NOW,
    );
    expect(plan.alerts[0]?.scope).toMatchObject({
      name: 'k1',
      hint: null,
      workspaceId: null,
      workspaceName: 'Default Workspace',
    });
  });
});

describe('planDetection: the kill switch, once per episode', () => {
  const episode = firing('key', 'k1', 20);
  it.each<[string, AnomalyPolicy, World, 'candidate' | 'off' | 'armed' | 'deactivated']>([
    ['off in the policy: the key stays active', policy, { keys: { k1: { hourly: 600, state: episode } } }, 'off'],
    [
      'on, above the hard cap through the window, active: a candidate (applyKillSwitch checks and acts)',
      killSwitchOn,
      { keys: { k1: { hourly: 600, state: episode } } },
      'candidate',
    ],
    [
      'on, already set inactive in this episode: not again',
      killSwitchOn,
      { keys: { k1: { hourly: 600, state: { ...episode, deactivatedFor: sinceOf(episode) } } } },
      'deactivated',
    ],
    [
      'on, set inactive in an earlier episode: this one is a new candidate',
      killSwitchOn,
      {
        keys: {
          k1: { hourly: 600, state: { ...episode, deactivatedFor: new Date(sinceOf(episode).getTime() - HOUR) } },
        },
      },
      'candidate',
    ],
    [
      'on, but a person or another system set the key inactive: armed, nothing to do',
      killSwitchOn,
      { keys: { k1: { hourly: 600, info: key('k1', { status: 'inactive' }), state: episode } } },
      'armed',
    ],
    ['on, firing below the hard cap: armed', killSwitchOn, { keys: { k1: { hourly: 120, state: episode } } }, 'armed'],
  ])('%s', (_name, p, w, expected) => {
    const plan = planDetection(input(w), p, NOW);
    const candidate = plan.killSwitch.candidates.map((c) => c.state.scopeId);
    const settled = plan.killSwitch.settled.get('k1')?.state;
    expect(candidate.includes('k1') ? 'candidate' : settled).toBe(expected);
  });

  it("a key found inactive with no record of its episode is named for the shell to ask whether another run's kill switch did it", () => {
    const inactive = key('k1', { status: 'inactive' });
    const found = (w: World) =>
      planDetection(input(w), killSwitchOn, NOW).killSwitch.foundInactive.map((s) => s.scopeId);
    expect(found({ keys: { k1: { hourly: 600, info: inactive, state: episode } } })).toEqual(['k1']);
    expect(found({ keys: { k1: { hourly: 120, info: inactive, state: episode } } })).toEqual(['k1']);
    expect(
      found({ keys: { k1: { hourly: 600, info: inactive, state: { ...episode, deactivatedFor: sinceOf(episode) } } } }),
    ).toEqual([]);
    expect(found({ keys: { k1: { hourly: 600, state: episode } } })).toEqual([]);
    expect(
      planDetection(input({ keys: { k1: { hourly: 600, info: inactive, state: episode } } }), policy, NOW).killSwitch
        .foundInactive,
    ).toEqual([]);
  });

  it('evidence of one poll above the cap is forgotten when the rate drops below it', () => {
    const evidence = new Date(NOW.getTime() - 2 * MINUTE);
    const above = planDetection(
      input({ keys: { k1: { hourly: 600, state: { ...episode, killSwitchEvidence: evidence } } } }),
      killSwitchOn,
      NOW,
    );
    expect(above.killSwitch.candidates[0]?.state.killSwitchEvidence).toEqual(evidence);
    const below = planDetection(
      input({ keys: { k1: { hourly: 120, state: { ...episode, killSwitchEvidence: evidence } } } }),
      killSwitchOn,
      NOW,
    );
    expect(stateOf(below, 'key:k1')?.killSwitchEvidence).toBeNull();
  });

  it('an episode that ended forgets what the kill switch did in it', () => {
    const ended = firing(
      'key',
      'k1',
      90,
      {
        deactivatedFor: new Date(DATA_UNTIL.getTime() - 90 * MINUTE),
        killSwitchEvidence: new Date(DATA_UNTIL.getTime() - 80 * MINUTE),
      },
      45,
    );
    const plan = planDetection(input({ keys: { k1: { hourly: 0.5, state: ended } } }), killSwitchOn, NOW);
    expect(plan.judged[0]?.assessment.decision).toBe('resolve');
    expect(stateOf(plan, 'key:k1')).toMatchObject({
      deactivatedFor: null,
      killSwitchEvidence: null,
      coveredByKey: false,
    });
    expect(plan.killSwitch.settled.size + plan.killSwitch.candidates.length).toBe(0);
  });
});

describe('planDetection: only what changed is saved', () => {
  it.each<[string, World, string[]]>([
    [
      'a quiet key with its baseline of this hour: nothing to write',
      { keys: { k1: { hourly: 0.5, state: state('key', 'k1') } } },
      [],
    ],
    [
      'a key seen for the first time',
      { keys: { k1: { hourly: 0.5 } }, baselines: { 'key:k1': baseline() } },
      ['key:k1'],
    ],
    [
      "a quiet key's new baseline of the hour",
      {
        keys: { k1: { hourly: 0.5, state: state('key', 'k1', { baseline: { hour: LAST_HOUR, value: baseline() } }) } },
        baselines: { 'key:k1': baseline() },
      },
      ['key:k1'],
    ],
    ['a key that starts firing', { keys: { k1: { hourly: 120, state: state('key', 'k1') } } }, ['key:k1']],
    [
      'a key still firing (its run moves on)',
      { keys: { k1: { hourly: 120, state: firing('key', 'k1', 20) } } },
      ['key:k1'],
    ],
    [
      'a key that stops firing',
      {
        keys: {
          k1: {
            hourly: 0.5,
            state: firing('key', 'k1', 90, {}, 45),
          },
        },
      },
      ['key:k1'],
    ],
  ])('%s', (_name, w, expected) => {
    expect(saved(planDetection(input(w), policy, NOW))).toEqual(expected);
  });
});

describe('planDetection: Mark as expected', () => {
  /** A mark on key k1 covering `covered` $/h, made `madeAgo` minutes before NOW, holding for `hours` hours. */
  const mark = (covered: number, madeAgo = 2, hours = 4): ExpectedMark => ({
    scopeType: 'key',
    scopeId: 'k1',
    coveredHourlyUsd: covered,
    startsAt: new Date(NOW.getTime() - madeAgo * MINUTE),
    until: new Date(NOW.getTime() - madeAgo * MINUTE + hours * HOUR),
    markedBy: 'slack:U0ANA',
  });
  const withMarks = (w: World, marks: ExpectedMark[]): DetectionInput => ({ ...input(w), marks });

  it.each<[string, World, ExpectedMark[], { firing: boolean; alerts: string[]; ended: string[] }]>([
    [
      'the episode it was made in ends: no alert (the lifecycle resolves it), the mark noted',
      { keys: { k1: { hourly: 120, state: firing('key', 'k1', 20) } } },
      [mark(120)],
      { firing: false, alerts: [], ended: ['key:k1'] },
    ],
    [
      'the marked rate does not fire again while the mark holds',
      { keys: { k1: { hourly: 120, state: state('key', 'k1') } } },
      [mark(120, 60)],
      { firing: false, alerts: [], ended: [] },
    ],
    [
      'a jump to ten times the marked rate fires all the same',
      { keys: { k1: { hourly: 1200, state: state('key', 'k1') } } },
      [mark(120, 60)],
      { firing: true, alerts: ['key:k1'], ended: [] },
    ],
    [
      'a mark that has ended raises nothing: the planned rate fires again',
      { keys: { k1: { hourly: 120, state: state('key', 'k1') } } },
      [mark(120, 5 * 60, 4)],
      { firing: true, alerts: ['key:k1'], ended: [] },
    ],
    [
      'a mark made before the episode started does not end it (a later, larger jump)',
      { keys: { k1: { hourly: 1200, state: firing('key', 'k1', 20) } } },
      [mark(120, 60)],
      { firing: true, alerts: ['key:k1'], ended: [] },
    ],
    [
      "another key's mark changes nothing",
      { keys: { k1: { hourly: 120, state: firing('key', 'k1', 20) } } },
      [{ ...mark(120), scopeId: 'k2' }],
      { firing: true, alerts: ['key:k1'], ended: [] },
    ],
  ])('%s', (_name, w, marks, expected) => {
    const plan = planDetection(withMarks(w, marks), policy, NOW);
    expect(stateOf(plan, 'key:k1')?.runaway?.firing).toBe(expected.firing);
    expect(alerted(plan)).toEqual(expected.alerts);
    expect(plan.expected.map((e) => scopeKey(e.scopeType, e.scopeId))).toEqual(expected.ended);
  });

  it("judges by the marked rate and says so, while the stored baseline stays the hour's own", () => {
    const plan = planDetection(
      withMarks({ keys: { k1: { hourly: 1200, state: state('key', 'k1') } } }, [mark(120, 60)]),
      policy,
      NOW,
    );
    const judged = plan.judged[0]!;
    expect(judged.baseline).toMatchObject({ typicalHourlyUsd: 120, source: 'expected' });
    expect(judged.assessment.thresholdHourlyUsd).toBe(600);
    expect(judged.state.baseline?.value).toEqual(baseline());
  });

  it('the resolve note names who marked it, until when, and the rate that still alerts', () => {
    expect(expectedNote(mark(120), policy)).toBe(
      'Marked as expected by slack:U0ANA until 2026-06-08 14:28 UTC: spend up to $120.00/h is not a runaway until ' +
        'then; above $600.00/h it still alerts.',
    );
  });
});
