import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Context } from '../context.ts';
import { groupMembers } from './groups.ts';
import { slackActionsEndpoint } from './http.ts';
import { type SocketModeTransport, startSocketMode } from './socket.ts';

/** The worker's ways to receive button presses, as the environment configures them; both feed handlePress. */
export interface SlackActionTransports {
  /** For `POST /slack/actions`; absent without SLACK_SIGNING_SECRET (the route then answers 404). */
  endpoint?: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  socket: SocketModeTransport | null;
  close(): Promise<void>;
}

/** `redis`: the worker's own connection (the Context has none), where replayed deliveries are recognised. */
export function startSlackActions(ctx: Context, redis: Redis): SlackActionTransports {
  const { env } = ctx.config;
  const actx = { ...ctx, redis, groups: groupMembers(ctx.notifier.slack, ctx.clock, ctx.log) };
  const socket =
    env.slackAppToken === null ? null : startSocketMode(actx, { appToken: env.slackAppToken, apiUrl: env.slackApiUrl });
  return {
    ...(env.slackSigningSecret === null ? {} : { endpoint: slackActionsEndpoint(actx, env.slackSigningSecret) }),
    socket,
    close: async () => socket?.close(),
  };
}
