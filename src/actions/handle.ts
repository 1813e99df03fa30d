import { type ActionId, actionOfChoice, isActionId, permissionOf } from '../action-ids.ts';
import type { Clock } from '../clock.ts';
import type { Context } from '../context.ts';
import type { Logger } from '../log.ts';
import { formatUsd, numberUsdToPico } from '../money.ts';
import { escapeSlack } from '../notify/escape.ts';
import { type OutboxPayload, taggedNotification } from '../notify/outbox.ts';
import { renderSlack } from '../notify/render.ts';
import { buttonValueParts } from '../notify/slack-buttons.ts';
import type { RedisConnection } from '../queue/connection.ts';
import { lastStatusChangeFailure, setKeyStatus } from '../rotation/set-status.ts';
import { answerApproval } from './approvals.ts';
import { decidePress, type PressDecision } from './core/decide.ts';
import type { GroupMembers } from './groups.ts';
import { answerIncrease } from './increase.ts';
import type { Press } from './payload.ts';

/**
 * A verified button press: find the row its value names (never trusting the payload for what it acts on), decide
 * (core/decide.ts, pure), apply once, answer. Every verified press, allowed or not, leaves an audit intent and its
 * outcome with the Slack user's id and name. Effects are single conditional UPDATEs, so a double click, a replay
 * that got past the guard or two replicas change the alert once; the later presses are told the current state.
 */

export type ActionContext = Pick<Context, 'config' | 'repos' | 'admin' | 'notifier' | 'clock' | 'log'> & {
  groups: GroupMembers;
};

/** What the transport answers: 200 once handled (the answer went to Slack), 400 for a press that names nothing. */
export interface PressAnswer {
  status: 200 | 400;
  outcome: string;
}

/** Each organization's action context by id, in the policy file's order: where the transports hand a press. */
export type PressTargets = ReadonlyMap<string, ActionContext>;

/**
 * What a transport hands presses with: the organizations, the Redis the replay guard lives in (one guard for the
 * deployment: one Slack app signs and delivers every organization's presses), the clock the signature is checked
 * against and the transport's log.
 */
export interface PressReceiver {
  targets: PressTargets;
  redis: RedisConnection;
  /** The deployment's queue prefix, which the replay guard's keys start with (default {keywarden}). */
  prefix?: string;
  clock: Clock;
  log: Logger;
}

/**
 * Hands a press to the organization its value names (buttonValue), with the value cut to the row id, so a row is
 * only ever looked up in its own organization's schema. With one organization the value is the bare row id, as it
 * always was. With several, a bare id or one naming no organization names nothing: it is refused and audited in
 * the first organization's log (the deployment's, as the press names no other).
 */
export async function dispatchPress(targets: PressTargets, press: Press): Promise<PressAnswer> {
  const [first] = targets.values();
  if (first === undefined) throw new Error('dispatchPress: no organization to hand the press to');
  if (targets.size === 1) return handlePress(first, press);
  const { organizationId, rowId } = buttonValueParts(press.value);
  const target = organizationId === null ? undefined : targets.get(organizationId);
  // an empty value names no row: the press goes through the same audit and refusal as any other that names nothing
  return target === undefined
    ? handlePress(first, { ...press, value: '' })
    : handlePress(target, { ...press, value: rowId });
}

export async function handlePress(ctx: ActionContext, press: Press): Promise<PressAnswer> {
  const known = isActionId(press.actionId);
  const button = known ? await ctx.repos.actions.find(press.value) : null;
  const { operation_id: audit } = await ctx.repos.audit.recordIntent(
    {
      actor: `slack:${press.userId}`,
      action: `slack.${known ? press.actionId : 'unknown'}`,
      subjectType: button === null ? 'slack_button' : 'alert',
      subjectId: button === null ? 'none' : button.alertId,
    },
    { slackUserId: press.userId, slackUserName: press.userName, teamId: press.teamId, transport: press.transport },
  );
  const finish = async (
    step: 'done' | 'failed',
    answer: PressAnswer,
    details: Record<string, unknown> = {},
  ): Promise<PressAnswer> => {
    await ctx.repos.audit.recordOutcome(auditRow(audit, press, known, button?.alertId), step, {
      outcome: answer.outcome,
      ...details,
    });
    return answer;
  };

  if (!known) return finish('failed', { status: 400, outcome: 'unknown_action' });
  // a value from one button pressed as another (an Acknowledge row sent as `snooze`) names nothing that exists
  if (button === null || actionOfChoice(button.choice) !== press.actionId) {
    return finish('failed', { status: 400, outcome: 'names_nothing' });
  }
  const alert = await ctx.repos.alerts.byId(button.alertId);
  if (alert === null) return finish('failed', { status: 400, outcome: 'names_nothing' });

  const actionId = press.actionId as ActionId;
  const allow = ctx.config.policy.slack_actions.allow[permissionOf(actionId, button.choice)];
  const decision = decidePress({
    actionId,
    userId: press.userId,
    userGroups: await ctx.groups.groupsOf(press.userId, allow),
    policy: ctx.config.policy.slack_actions,
    alert,
    episodeStartedAt: button.episodeStartedAt,
    choice: button.choice,
    keyStatus: actionId === 'reactivate' ? await storedKeyStatus(ctx, alert) : null,
    coveredHourlyUsd: actionId === 'expected' ? reportedRate(alert.details) : null,
    increaseRequestId: actionId === 'approve' || actionId === 'deny' ? increaseRequestOf(alert.details) : null,
  });

  if (decision.do === 'refuse') {
    await tell(ctx, press, refusalText(decision));
    return finish('failed', { status: 200, outcome: `refused:${decision.reason}` });
  }
  if (decision.do === 'acknowledge') {
    const now = ctx.clock.now();
    // the on-call's incident for the same alert is acknowledged too, through the outbox like any message
    if (await ctx.repos.alerts.acknowledgeEverywhere(alert, button.episodeStartedAt, press.userId, now)) {
      await updateAnswered(ctx, button.notificationId, `Acknowledged by <@${press.userId}> at ${clockTime(ctx, now)}`);
      return finish('done', { status: 200, outcome: 'acknowledged' });
    }
    // another press got there between the read and the update: say what it left
    const current = await ctx.repos.alerts.byId(alert.id);
    await tell(ctx, press, currentStateText(ctx, current?.acknowledgedBy ?? null, current?.acknowledgedAt ?? null));
    return finish('done', { status: 200, outcome: 'unchanged:acknowledged' });
  }
  if (decision.do === 'snooze') {
    const now = ctx.clock.now();
    const until = new Date(now.getTime() + decision.ms);
    const hours = decision.ms / 3_600_000;
    const { silence, created } = await ctx.repos.silences.add(
      {
        matchers: { fingerprint: alert.fingerprint },
        startsAt: now,
        endsAt: until,
        createdBy: `slack:${press.userId}`,
        comment: `Snoozed from Slack for ${hours} h`,
        slackButtonId: button.id,
      },
      now,
    );
    if (!created) {
      await tell(ctx, press, `Already snoozed from this button, until ${clockTime(ctx, silence.endsAt)}.`);
      return finish('done', { status: 200, outcome: 'unchanged:snoozed' }, { silenceId: silence.id });
    }
    await updateAnswered(
      ctx,
      button.notificationId,
      `Snoozed for ${hours} h by <@${press.userId}>, until ${clockTime(ctx, until)}`,
    );
    return finish('done', { status: 200, outcome: 'snoozed' }, { silenceId: silence.id, until: until.toISOString() });
  }
  if (decision.do === 'reactivate') {
    const actor = `slack:${press.userId}`;
    const now = ctx.clock.now();
    // one status change at a time, as enforcement, the kill switch and `keywarden keys reactivate` do
    const locked = await ctx.repos.keys.withStatusLock(() =>
      setKeyStatus(ctx, {
        keyId: decision.keyId,
        to: 'active',
        action: 'api_key.reactivate',
        actor,
        reason: 'reactivated from Slack',
      }),
    );
    if (locked === null) {
      await tell(
        ctx,
        press,
        'Another run is changing key statuses right now: nothing was changed, try again in a minute.',
      );
      return finish('failed', { status: 200, outcome: 'busy' });
    }
    if (locked.value === 'done') {
      await updateAnswered(ctx, button.notificationId, `Reactivated by <@${press.userId}> at ${clockTime(ctx, now)}`);
      return finish('done', { status: 200, outcome: 'reactivated' });
    }
    // the API's own refusal (an expired key cannot come back), said plainly; it is outside text, so escaped
    const why = await lastStatusChangeFailure(ctx, { keyId: decision.keyId, action: 'api_key.reactivate', actor });
    await tell(ctx, press, `The Admin API refused to reactivate the key: ${escapeSlack(why ?? 'see the worker log')}`);
    return finish('failed', { status: 200, outcome: 'refused_by_api' });
  }
  if (decision.do === 'mark_expected') {
    const now = ctx.clock.now();
    const until = new Date(now.getTime() + decision.ms);
    const hours = decision.ms / 3_600_000;
    // the detector reads the mark on its next run: it raises the bar and resolves this episode with the mark's note
    const { mark, created } = await ctx.repos.anomaly.addMark(
      {
        scopeType: decision.scopeType,
        scopeId: decision.scopeId,
        coveredHourlyUsd: decision.coveredHourlyUsd,
        startsAt: now,
        until,
        markedBy: `slack:${press.userId}`,
        alertId: alert.id,
        slackButtonId: button.id,
      },
      now,
    );
    if (!created) {
      await tell(ctx, press, `Already marked as expected from this button, until ${clockTime(ctx, mark.until)}.`);
      return finish('done', { status: 200, outcome: 'unchanged:expected' }, { markId: mark.id });
    }
    await updateAnswered(
      ctx,
      button.notificationId,
      `Marked as expected for ${hours} h by <@${press.userId}>, until ${clockTime(ctx, until)}: ` +
        `spend up to ${formatUsd(numberUsdToPico(decision.coveredHourlyUsd))}/h is not a runaway until then`,
    );
    return finish(
      'done',
      { status: 200, outcome: 'marked_expected' },
      { markId: mark.id, until: until.toISOString(), coveredHourlyUsd: decision.coveredHourlyUsd },
    );
  }
  if (decision.do === 'approve' || decision.do === 'deny' || decision.do === 'deactivate') {
    const when = (at: Date) => clockTime(ctx, at);
    const target = {
      userId: press.userId,
      userName: press.userName,
      alertId: alert.id,
      episodeStartedAt: button.episodeStartedAt,
    };
    const answer = await answerApproval(ctx, decision, target, when);
    if (answer.settle)
      await ctx.repos.alerts.acknowledgeEverywhere(alert, button.episodeStartedAt, press.userId, ctx.clock.now());
    if (answer.tell !== undefined) await tell(ctx, press, answer.tell);
    if (answer.update !== undefined) await updateAnswered(ctx, button.notificationId, answer.update);
    return finish(answer.step, { status: 200, outcome: answer.outcome });
  }
  if (decision.do === 'answer_increase') {
    const answer = await answerIncrease(
      ctx,
      decision,
      { userId: press.userId, notificationId: button.notificationId },
      (at) => clockTime(ctx, at),
    );
    if (answer.settle)
      await ctx.repos.alerts.acknowledgeEverywhere(alert, button.episodeStartedAt, press.userId, ctx.clock.now());
    if (answer.tell !== undefined) await tell(ctx, press, answer.tell);
    if (answer.update !== undefined) await updateAnswered(ctx, button.notificationId, answer.update);
    return finish(answer.step, { status: 200, outcome: answer.outcome }, answer.details);
  }
  const text =
    decision.state === 'acknowledged'
      ? currentStateText(ctx, alert.acknowledgedBy, alert.acknowledgedAt)
      : decision.state === 'resolved'
        ? actionId === 'ack'
          ? 'This alert has resolved: there is nothing to acknowledge.'
          : 'This alert has resolved: nothing was changed.'
        : decision.state === 'already_active'
          ? 'The key is already active: nothing was changed.'
          : 'This message is about an earlier episode of the alert, which has ended: use the newest message.';
  await tell(ctx, press, text);
  return finish('done', { status: 200, outcome: `unchanged:${decision.state}` });
}

/** The rate (USD/hour) a runaway alert last reported (its details, as the detector wrote them); null when none. */
function reportedRate(content: Record<string, unknown>): number | null {
  const details = content.details as Record<string, unknown> | undefined;
  const rate = details?.currentHourlyUsd;
  return typeof rate === 'number' && Number.isFinite(rate) ? rate : null;
}

/** The Admin API's id of the increase request a `spend.limit_changed` notice asks about (its details); null when none. */
function increaseRequestOf(content: Record<string, unknown>): string | null {
  const details = content.details as Record<string, unknown> | undefined;
  return typeof details?.increaseRequestId === 'string' ? details.increaseRequestId : null;
}

/** The key's status as keywarden stored it (the deactivation wrote it; sync-inventory keeps it current). */
async function storedKeyStatus(
  ctx: ActionContext,
  alert: { scopeType: string; scopeId: string },
): Promise<string | null> {
  if (alert.scopeType !== 'key') return null;
  return (await ctx.repos.keys.activeAmong([alert.scopeId])).has(alert.scopeId) ? 'active' : 'inactive';
}

function auditRow(operationId: string, press: Press, known: boolean, alertId: string | undefined) {
  return {
    operation_id: operationId,
    actor: `slack:${press.userId}`,
    action: `slack.${known ? press.actionId : 'unknown'}`,
    subject_type: alertId === undefined ? 'slack_button' : 'alert',
    subject_id: alertId ?? 'none',
  };
}

function refusalText(d: Extract<PressDecision, { do: 'refuse' }>): string {
  switch (d.reason) {
    case 'disabled':
      return 'Buttons are turned off (slack_actions.enabled in the policy file): nothing was changed.';
    case 'not_offered':
      return 'This button does nothing in this version of keywarden: nothing was changed.';
    case 'not_allowed':
      return `You are not allowed to do this (slack_actions.allow.${d.permission} in the policy file): nothing was changed.`;
  }
}

function currentStateText(ctx: ActionContext, by: string | null, at: Date | null): string {
  return by === null || at === null
    ? 'This alert is already acknowledged.'
    : `Already acknowledged by <@${by}> at ${clockTime(ctx, at)}.`;
}

/** HH:MM and the zone, in the organization's timezone (the one place a person reads the time). */
function clockTime(ctx: ActionContext, at: Date): string {
  const timeZone = ctx.config.policy.organization.timezone;
  const hhmm = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit' }).format(at);
  return `${hhmm} ${timeZone}`;
}

/** An ephemeral answer to the presser through the press's response_url; a failure is logged, not fatal. */
async function tell(ctx: ActionContext, press: Press, text: string): Promise<void> {
  if (ctx.notifier.slack === null || press.responseUrl === null) return;
  const r = await ctx.notifier.slack.respond(press.responseUrl, { text, response_type: 'ephemeral' });
  if (!r.ok) ctx.log.warn({ reason: r.failure.reason }, 'could not answer a Slack button press');
}

/**
 * The message is rewritten in place from what the outbox sent (not from the payload's copy): the same alert,
 * the buttons gone, and who did what when (`line`: only ids as mentions and times, no names typed by people).
 */
async function updateAnswered(ctx: ActionContext, notificationId: string, line: string): Promise<void> {
  const message = await ctx.repos.outbox.message(notificationId);
  const sep = message?.providerId?.indexOf(':') ?? -1;
  if (ctx.notifier.slack === null || message === null || message.providerId === null || sep < 0) return;
  const payload = message.payload as unknown as OutboxPayload;
  // the organization's name in front of the title, as the message went out (Notifier.organizationTag)
  const rendered = renderSlack(taggedNotification(payload.notification, ctx.notifier.organizationTag));
  const r = await ctx.notifier.slack.updateMessage({
    channel: message.providerId.slice(0, sep),
    ts: message.providerId.slice(sep + 1),
    text: rendered.text,
    blocks: [
      ...rendered.blocks,
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: line }],
      },
    ],
  });
  if (!r.ok) ctx.log.warn({ reason: r.failure.reason }, 'could not update an alert message after a press');
}
