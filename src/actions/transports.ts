import type { IncomingMessage, ServerResponse } from 'node:http';
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

export function startSlackActions(ctx: Context): SlackActionTransports {
  const { env } = ctx.config;
  const actx = { ...ctx, groups: groupMembers(ctx.notifier.slack, ctx.clock, ctx.log) };
  const socket =
    env.slackAppToken === null ? null : startSocketMode(actx, { appToken: env.slackAppToken, apiUrl: env.slackApiUrl });
  return {
    ...(env.slackSigningSecret === null ? {} : { endpoint: slackActionsEndpoint(actx, env.slackSigningSecret) }),
    socket,
    close: async () => socket?.close(),
  };
}
