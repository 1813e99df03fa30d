import { LogLevel, type Logger as SlackLogger, SocketModeClient } from '@slack/socket-mode';
import type { Secret } from '../config/secret.ts';
import type { Logger } from '../log.ts';
import { dispatchPress, type PressReceiver } from './handle.ts';
import { parsePress } from './payload.ts';
import { firstDelivery } from './replay.ts';

/**
 * Socket Mode: the worker opens a WebSocket to Slack (apps.connections.open with the app-level token) and presses
 * arrive over it, so no public URL is needed. The connection itself is the authentication. Each envelope is acked
 * at once (Slack redelivers one not acked within 3 seconds) and then handled once by its envelope id.
 */

export interface SocketModeTransport {
  /** Settles once Slack said hello on the first connection (the client keeps reconnecting by itself after). */
  connected: Promise<void>;
  close(): Promise<void>;
}

export function startSocketMode(ctx: PressReceiver, opts: { appToken: Secret; apiUrl: string }): SocketModeTransport {
  const log = ctx.log.child({ component: 'slack-socket-mode' });
  const client = new SocketModeClient({
    appToken: opts.appToken.reveal(),
    logger: socketLogger(log),
    clientOptions: { slackApiUrl: opts.apiUrl, allowAbsoluteUrls: false },
  });
  client.on(
    'interactive',
    async ({ ack, envelope_id, body }: { ack: () => Promise<void>; envelope_id: string; body: unknown }) => {
      try {
        await ack();
        if (!(await firstDelivery(ctx, 'envelope', String(envelope_id)))) return;
        const press = parsePress(body, 'socket');
        if (press === null) {
          log.warn('ignored a Socket Mode interaction that is not a button press');
          return;
        }
        await dispatchPress(ctx.targets, press);
      } catch (err) {
        log.warn({ err }, 'a Slack button press over Socket Mode failed');
      }
    },
  );
  // not awaited by the caller: a Slack that is down at startup must not hold the worker's other duties
  const connected = client.start().then(
    () => undefined,
    (err: unknown) => {
      log.warn({ err }, 'Socket Mode did not connect: button presses will not arrive');
    },
  );
  return {
    connected,
    async close() {
      await client.disconnect();
    },
  };
}

/**
 * The client logs every message it receives and sends at debug level, payloads included (response URLs are
 * credentials): debug goes nowhere, the rest into pino one level down.
 */
function socketLogger(log: Logger): SlackLogger {
  let level = LogLevel.INFO;
  const write =
    (fn: (msg: string) => void) =>
    (...msg: unknown[]) =>
      fn(msg.map(String).join(' '));
  return {
    debug: () => {},
    info: write((m) => log.debug(m)),
    warn: write((m) => log.info(m)),
    error: write((m) => log.warn(m)),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}
