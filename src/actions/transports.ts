import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.ts';
import type { Logger } from '../log.ts';
import type { RedisConnection } from '../queue/connection.ts';
import { groupMembers } from './groups.ts';
import type { ActionContext } from './handle.ts';
import { slackActionsEndpoint } from './http.ts';
import { type SocketModeTransport, startSocketMode } from './socket.ts';

/** The worker's ways to receive button presses, as the environment configures them; both feed dispatchPress. */
export interface SlackActionTransports {
  /** For `POST /slack/actions`; absent without SLACK_SIGNING_SECRET (the route then answers 404). */
  endpoint?: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  socket: SocketModeTransport | null;
  close(): Promise<void>;
}

/**
 * `orgs`: every organization's Context by id, in the policy file's order; a press goes to the one its button's
 * value names, and is checked against that organization's own `slack_actions`. `redis`: the worker's own connection
 * (the Context has none), where replayed deliveries are recognised, under the worker's queue `prefix`. The Slack
 * secrets are the deployment's.
 */
export function startSlackActions(
  orgs: ReadonlyMap<string, Context>,
  redis: RedisConnection,
  prefix: string,
  log: Logger,
): SlackActionTransports {
  const [first] = orgs.values();
  if (first === undefined) throw new Error('startSlackActions: no organization');
  const { env } = first.config;
  const targets = new Map<string, ActionContext>(
    [...orgs].map(([id, ctx]) => [id, { ...ctx, groups: groupMembers(ctx.notifier.slack, ctx.clock, ctx.log) }]),
  );
  const receiver = { targets, redis, prefix, clock: first.clock, log };
  const socket =
    env.slackAppToken === null
      ? null
      : startSocketMode(receiver, { appToken: env.slackAppToken, apiUrl: env.slackApiUrl });
  return {
    ...(env.slackSigningSecret === null ? {} : { endpoint: slackActionsEndpoint(receiver, env.slackSigningSecret) }),
    socket,
    close: async () => socket?.close(),
  };
}
