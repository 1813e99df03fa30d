import { CronExpressionParser } from 'cron-parser';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { policySchema } from '../../src/config/policy.ts';
import { demoPolicy } from '../../src/demo/run.ts';
import { DEMO_TOUR } from '../../src/demo/tour.ts';
import type { AlertKind } from '../../src/kinds.ts';
import { routeAlert } from '../../src/notify/routing.ts';
import { MINUTE_MS } from '../../src/time.ts';

describe("the demo's policy file", () => {
  for (const start of ['2026-12-04T20:59:50Z', '2026-12-07T08:59:58Z', '2026-12-31T23:59:59Z']) {
    it(`schedules no rotation run in the demo's first hour (started ${start})`, () => {
      // the keys table shows `overdue` only until the overdue notice is sent; the demo asks for the rotation
      // run after the table, so no scheduled run may come first
      const now = new Date(start);
      const policy = policySchema.parse(parse(demoPolicy(19_400, now)));
      const cron = policy.schedules['enforce-rotation'];
      expect(cron).toBeDefined();
      const next = CronExpressionParser.parse(cron!, { currentDate: now, tz: 'UTC' }).next().toDate();
      expect(next.getTime() - now.getTime()).toBeGreaterThan(60 * MINUTE_MS);
    });
  }

  it("routes every alert of the tour where the tour waits for it (Ana owns the overdue 'Production Backend')", () => {
    const policy = policySchema.parse(parse(demoPolicy(19_400, new Date('2026-12-04T20:59:50Z'))));
    for (const sight of DEMO_TOUR) {
      if (sight.medium === 'terminal') continue;
      const digest = /^digest\.(finance|security)$/.exec(sight.kind)?.[1] as 'finance' | 'security' | undefined;
      const targets = digest
        ? [
            ...(policy.digests[digest]?.slack ?? []).map((target) => ({ channel: 'slack', target })),
            ...(policy.digests[digest]?.email ?? []).map((target) => ({ channel: 'email', target })),
          ]
        : routeAlert(
            {
              kind: sight.kind as AlertKind,
              severity: 'warning',
              workspaceId: null,
              workspaceName: null,
              keyOwnerEmail: 'ana@acme.example',
            },
            policy.routes,
          ).targets;
      const want = { channel: sight.medium, target: sight.medium === 'slack' ? sight.channel : sight.to };
      expect(targets, sight.label).toContainEqual(want);
    }
  });
});
