import type { Context } from '../context.ts';

/**
 * The alerts, newest first, each with its deliveries: the firing ones, those resolved since `resolvedSince` too,
 * or every one with `all`. For the CLI and the status page.
 */
export async function listAlerts(
  ctx: Pick<Context, 'repos'>,
  opts: { all: boolean; resolvedSince?: Date },
): Promise<AlertListing[]> {
  const alerts = await ctx.repos.alerts.list(opts);
  const deliveries = await ctx.repos.outbox.deliveriesFor(alerts.map((a) => a.fingerprint));
  const result: AlertListing[] = alerts.map((a) => ({
    fingerprint: a.fingerprint,
    kind: a.kind,
    severity: a.severity,
    state: a.state,
    title: a.title,
    startedAt: a.startedAt.toISOString(),
    lastSeenAt: a.lastSeenAt.toISOString(),
    resolvedAt: a.resolvedAt === null ? null : a.resolvedAt.toISOString(),
    inhibitedBy: a.inhibitedBy,
    acknowledgedBy: a.acknowledgedBy,
    deliveries: deliveries
      .filter((d) => d.fingerprints.includes(a.fingerprint))
      .map((d) => ({
        id: d.id,
        event: d.event,
        channel: d.channel,
        target: d.target,
        status: d.status,
        attempts: d.attempts,
        possiblyDuplicate: d.possiblyDuplicate,
        lastError: d.lastError,
        sentAt: d.sentAt === null ? null : d.sentAt.toISOString(),
        nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt.toISOString() : null,
      })),
  }));
  return result;
}

export interface AlertListing {
  fingerprint: string;
  kind: string;
  severity: string;
  state: string;
  title: string;
  startedAt: string;
  lastSeenAt: string;
  resolvedAt: string | null;
  inhibitedBy: string | null;
  /** The Slack user id of who acknowledged this episode (its repeats stop). */
  acknowledgedBy?: string | null;
  deliveries: Array<{
    id: string;
    event: string;
    channel: string;
    target: string;
    status: string;
    attempts: number;
    possiblyDuplicate: boolean;
    lastError: string | null;
    sentAt: string | null;
    nextAttemptAt: string | null;
  }>;
}
