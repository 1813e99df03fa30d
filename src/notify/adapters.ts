import type { NotificationsTable } from '../db/types.ts';
import { renderSpendChart } from './chart.ts';
import type { SendOutcome } from './delivery.ts';
import type { EmailSender, InlineImage } from './email.ts';
import type { DeliveryResult } from './http-delivery.ts';
import type { Notifier } from './notifier.ts';
import type { DigestPayload, OutboxPayload } from './outbox.ts';
import { type PagerDutyClient, renderPagerDutyEvent } from './pagerduty.ts';
import { renderDigestEmail, renderDigestSlack, renderEmail, renderSlack } from './render.ts';
import type { SlackClient } from './slack.ts';
import { alertButtons } from './slack-buttons.ts';
import { renderTeamsMessage, type TeamsClient } from './teams.ts';
import type { WebhookSender } from './webhook.ts';
import { renderWebhookAlert, renderWebhookDigest } from './webhook-payload.ts';

/**
 * The seam between the outbox and the outside systems: one DeliveryAdapter per channel, which renders (at send time)
 * and sends one message to one target and says how it went. The outbox leases, decides retries and holds
 * (delivery.ts) and records; an adapter decides nothing about them.
 *
 * Plugging in another receiver (as pagerduty, webhook and teams are):
 *   1. its channel name in the `notifications.channel` CHECK (a migration) and in NotificationsTable['channel'];
 *   2. its client on the Notifier (notifier.ts), null when the environment does not configure it;
 *   3. `function xAdapter(client): DeliveryAdapter` below, beside slackAdapter and emailAdapter: `service` names
 *      what its failures hold (`webhook:${target}` where each target is a server of its own), `threads: false`,
 *      and `sendAlert` / `sendDigest` render `message.payload` for `message.target` (`message.id` stays the same
 *      across retries of the row: an idempotency key);
 *   4. one line each in NOT_CONFIGURED and deliveryAdapters (the compiler asks for both once the channel exists);
 *   5. routing.ts adds the route's targets for the channel.
 */

/** The outside systems the outbox delivers to. */
export type Channel = NotificationsTable['channel'];

/** One outbox row as an adapter sends it. */
interface Outgoing<P> {
  /** The outbox row's id: the same on every retry of the row (an idempotency key, a webhook-id). */
  id: string;
  /** The row's fingerprint: the alert's own, a group's, or a digest's with its period. */
  fingerprint: string;
  target: string;
  payload: P;
}

export interface OutgoingAlert extends Outgoing<OutboxPayload> {
  /** `acknowledged`: acknowledged from Slack; only PagerDuty rows carry it (outboxRepo.acknowledgeOnPagerDuty). */
  event: 'firing' | 'repeat' | 'resolved' | 'acknowledged';
  /** For an adapter that threads, on a repeat or a resolve: the provider id of the episode's first post, if sent. */
  thread: string | null;
  /** The `slack_buttons` rows this message's buttons name, by choice; absent or null: no buttons (links only). */
  buttons?: ReadonlyMap<string, string> | null;
}

export type OutgoingDigest = Outgoing<DigestPayload>;

export interface DeliveryAdapter {
  /**
   * Which service a target's failure speaks for: while it refuses or does not answer, the run holds every other
   * message to that service behind one probe. One service per channel (one Slack, one SMTP server); an adapter
   * whose targets are servers of their own (webhooks) answers per target.
   */
  service(target: string): string;
  /** Whether repeats and resolves reply to the episode's first post (the outbox finds it, or waits for it). */
  readonly threads: boolean;
  sendAlert(message: OutgoingAlert): Promise<SendOutcome>;
  sendDigest(message: OutgoingDigest): Promise<SendOutcome>;
}

/** Why a message to a channel the environment does not configure waits (retried: configuring it sends them). */
export const NOT_CONFIGURED: Record<Channel, string> = {
  slack: 'Slack is not configured (SLACK_BOT_TOKEN)',
  email: 'email is not configured (SMTP_URL, EMAIL_FROM)',
  pagerduty: 'PagerDuty is not configured (receivers.pagerduty)',
  webhook: 'webhooks are not configured (receivers.webhook)',
  teams: 'Teams is not configured (receivers.teams)',
};

/** The adapters the notifier's clients make; null for a channel that is not configured. */
export function deliveryAdapters(
  notifier: Pick<Notifier, Channel | 'organization'>,
): Record<Channel, DeliveryAdapter | null> {
  return {
    slack: notifier.slack === null ? null : slackAdapter(notifier.slack),
    email: notifier.email === null ? null : emailAdapter(notifier.email),
    pagerduty: notifier.pagerduty ? pagerdutyAdapter(notifier.pagerduty) : null,
    webhook: notifier.webhook ? webhookAdapter(notifier.webhook, notifier.organization ?? '') : null,
    teams: notifier.teams ? teamsAdapter(notifier.teams) : null,
  };
}

/** The Content-ID the digest's HTML names its chart by. */
export const DIGEST_CHART_CID = 'spend-chart@keywarden';

function permanent(err: unknown): SendOutcome {
  return { ok: false, failure: { kind: 'permanent', reason: err instanceof Error ? err.message : String(err) } };
}

function slackAdapter(slack: SlackClient): DeliveryAdapter {
  return {
    service: () => 'slack',
    threads: true,
    async sendAlert({ target, payload, thread, buttons }) {
      let channel = target;
      let threadTs: string | null = null;
      if (thread !== null) {
        // provider_id is `channelId:ts`: replies must name the channel by the ID Slack returned
        const sep = thread.indexOf(':');
        channel = thread.slice(0, sep);
        threadTs = thread.slice(sep + 1);
      }
      const rendered = renderSlack(payload.notification);
      const r = await slack.postMessage({
        channel,
        text: rendered.text,
        blocks: buttons ? [...rendered.blocks, alertButtons(buttons)] : rendered.blocks,
        ...(threadTs === null ? {} : { threadTs }),
      });
      return r.ok ? { ok: true, providerId: `${r.channel}:${r.ts}`, threadTs } : r;
    },
    // A digest goes out as it is: no thread, each is news of its own period.
    async sendDigest({ target, payload }) {
      const r = await slack.postMessage({ channel: target, ...renderDigestSlack(payload.digest) });
      return r.ok ? { ok: true, providerId: `${r.channel}:${r.ts}`, threadTs: null } : r;
    },
  };
}

function emailAdapter(email: EmailSender): DeliveryAdapter {
  return {
    service: () => 'email',
    threads: false,
    async sendAlert({ target, payload }) {
      let content: ReturnType<typeof renderEmail>;
      try {
        content = renderEmail(payload.notification);
      } catch (err) {
        // e.g. a CR/LF in a subject: sending it again will not change that
        return permanent(err);
      }
      const r = await email.sendEmail({ to: [target], ...content });
      return r.ok ? { ok: true, providerId: r.messageId, threadTs: null } : r;
    },
    // The digest's chart is kept as numbers in the row and drawn here, inline in the email.
    async sendDigest({ target, payload: { digest, chart } }) {
      let content: ReturnType<typeof renderDigestEmail>;
      const attachments: InlineImage[] = [];
      try {
        // drawing and rendering are pure: what fails here fails the same way next time
        if (chart !== null) {
          attachments.push({
            cid: DIGEST_CHART_CID,
            filename: 'spend-chart.png',
            content: renderSpendChart(chart.spend),
          });
        }
        const images = chart === null ? [] : [{ cid: DIGEST_CHART_CID, alt: chart.alt }];
        content = renderDigestEmail(digest, { images });
      } catch (err) {
        return permanent(err);
      }
      const r = await email.sendEmail({ to: [target], ...content, attachments });
      return r.ok ? { ok: true, providerId: r.messageId, threadTs: null } : r;
    },
  };
}

/** The three receivers answer alike: an id for the row, or a failure the outbox knows how to treat. */
function fromReceiver(r: DeliveryResult): SendOutcome {
  return r.ok ? { ok: true, providerId: r.providerId, threadTs: null } : r;
}

function digestsNotTo(channel: string): DeliveryAdapter['sendDigest'] {
  return async () => permanent(new Error(`digests go to Slack, email or webhooks, not ${channel}`));
}

/** PagerDuty: one event per row (routing writes one alert per PagerDuty row), its fingerprint the dedup_key. */
function pagerdutyAdapter(client: PagerDutyClient): DeliveryAdapter {
  return {
    service: () => 'pagerduty',
    threads: false,
    async sendAlert({ target, fingerprint, payload, event: kind }) {
      const alert = payload.alerts?.[0] ?? null;
      const action = kind === 'acknowledged' ? 'acknowledge' : undefined;
      const event = renderPagerDutyEvent(payload.notification, alert?.fingerprint ?? fingerprint, alert, action);
      return fromReceiver(await client.send(target, event));
    },
    sendDigest: digestsNotTo('PagerDuty'),
  };
}

/** The `webhook-id` of an outbox row: the same on every retry of it, so a receiver can drop a second copy. */
export function webhookId(rowId: string): string {
  return `keywarden-notification-${rowId}`;
}

/** Signed webhooks: each receiver is a server of its own, so one that is down holds only its own messages. */
function webhookAdapter(sender: WebhookSender, organization: string): DeliveryAdapter {
  return {
    service: (target) => `webhook:${target}`,
    threads: false,
    async sendAlert({ id, target, fingerprint, payload }) {
      const ctx = { id: webhookId(id), organization };
      const body = JSON.stringify(renderWebhookAlert(payload.notification, fingerprint, payload.alerts ?? [], ctx));
      return fromReceiver(await sender.send(target, webhookId(id), body));
    },
    async sendDigest({ id, target, fingerprint, payload: { digest, chart } }) {
      // the row's fingerprint names the digest's period (`digest|finance|2026-11-16`): a day for the finance digest
      const period = fingerprint.split('|').at(-1) ?? '';
      const date = /^\d{4}-\d{2}-\d{2}$/.test(period) ? period : null;
      const ctx = { id: webhookId(id), organization };
      const body = JSON.stringify(renderWebhookDigest(digest, chart?.spend ?? null, date, ctx));
      return fromReceiver(await sender.send(target, webhookId(id), body));
    },
  };
}

/** Microsoft Teams through a Workflows URL: an Adaptive Card per message, no threads. */
function teamsAdapter(client: TeamsClient): DeliveryAdapter {
  return {
    service: () => 'teams',
    threads: false,
    async sendAlert({ target, payload }) {
      return fromReceiver(await client.send(target, renderTeamsMessage(payload.notification)));
    },
    sendDigest: digestsNotTo('Teams'),
  };
}
