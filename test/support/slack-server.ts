import {
  type SlackCall,
  type SlackFault,
  type SlackStandin,
  type SlackStandinOptions,
  STANDIN_TOKEN,
  startSlackStandin,
} from '../../src/notify/dev/slack-standin.ts';

export type { SlackCall, SlackFault };

/** The Slack stand-in for tests, plus the token it accepts (pass `new Secret(server.token)` to the adapter). */
export interface SlackServer extends SlackStandin {
  readonly token: string;
}

/** A local Slack Web API on 127.0.0.1 and an ephemeral port. Close it in afterAll/afterEach. */
export async function startSlackServer(opts: SlackStandinOptions = {}): Promise<SlackServer> {
  const token = opts.tokens?.[0] ?? STANDIN_TOKEN;
  const standin = await startSlackStandin({ ...opts, tokens: opts.tokens ?? [token] });
  return Object.assign(standin, { token });
}
