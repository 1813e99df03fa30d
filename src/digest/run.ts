import type { Context } from '../context.ts';
import type { DigestPayload } from '../notify/outbox.ts';
import { type DigestKind, enqueueDigest, targetsWithoutDigest } from './enqueue.ts';
import { organizationName } from './organization.ts';
import { localDate } from './period.ts';

/** What sets one digest apart: the period it is sent once for, and how it is composed. */
export interface DigestRecipe {
  /** The period's name, from today's date in the organization's timezone (`2026-11-16`, `2026-W47`). */
  period(today: string): string;
  /** The digest, or why there is none to send yet. */
  compose(at: { now: Date; timezone: string; organizationName: string }): Promise<DigestPayload | { skipped: string }>;
}

type DigestRunResult = { skipped: string } | { period: string; queued: number; skipped?: string };

/**
 * One run of a digest job: nothing without its policy section; nothing composed when every target has this
 * period's digest already (loading and charting a month is the expensive part); else one outbox row for each
 * target still without it.
 */
export async function runDigest(
  ctx: Pick<Context, 'repos' | 'log' | 'clock' | 'config'>,
  kind: DigestKind,
  recipe: DigestRecipe,
): Promise<DigestRunResult> {
  const { policy } = ctx.config;
  const targets = policy.digests[kind];
  if (!targets) return { skipped: `digests.${kind} is not configured` };
  const now = ctx.clock.now();
  const timezone = policy.organization.timezone;
  const period = recipe.period(localDate(now, timezone));
  if ((await targetsWithoutDigest(ctx.repos, kind, period, targets)) === 0) {
    return { period, queued: 0, skipped: 'already queued for every target (or none configured)' };
  }
  const composed = await recipe.compose({
    now,
    timezone,
    organizationName: await organizationName(ctx.repos, policy.organization.name),
  });
  if ('skipped' in composed) return { period, queued: 0, skipped: composed.skipped };
  const queued = await enqueueDigest(ctx.repos, { kind, period, payload: composed }, targets, now);
  ctx.log.info({ period, queued }, `${kind} digest queued`);
  return { period, queued };
}
