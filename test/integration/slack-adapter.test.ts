import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createLogger } from '../../src/log.ts';
import type { Notification } from '../../src/notify/message.ts';
import { renderSlack } from '../../src/notify/render.ts';
import { createSlackClient, type SlackPostResult } from '../../src/notify/slack.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';

const TOKEN = 'xoxb-4242424242-CANARY-s3cr3t-token-value';

const alert: Notification = {
  kind: 'usage.runaway',
  event: 'firing',
  severity: 'critical',
  title: 'Runaway spend on key <!channel>',
  summary: 'The key spent $412.50 in the last 10 minutes.',
  fields: [{ label: 'Workspace', value: 'Customer chatbot' }],
  links: [{ label: 'Open in Console', url: 'https://console.anthropic.com/settings/keys' }],
};

let server: SlackServer;
const logLines: string[] = [];
const log = createLogger({
  level: 'trace',
  destination: new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  }),
});

function client(opts: { token?: string; timeoutMs?: number } = {}) {
  return createSlackClient({
    token: new Secret(opts.token ?? TOKEN),
    apiUrl: server.url,
    timeoutMs: opts.timeoutMs ?? 2000,
    log,
  });
}

function post(result: SlackPostResult) {
  if (!result.ok) throw new Error(`expected a post, got ${JSON.stringify(result.failure)}`);
  return result;
}

function failure(result: SlackPostResult) {
  if (result.ok) throw new Error('expected a failure, got a post');
  return result.failure;
}

beforeAll(async () => {
  server = await startSlackServer({ tokens: [TOKEN] });
});
afterAll(async () => {
  await server.close();
  // Whatever happened above (failures, timeouts, the client's own debug output), the token was never logged.
  expect(logLines.join('')).not.toContain('CANARY');
});
beforeEach(() => {
  server.reset();
});

describe('Slack adapter against the local Slack server', () => {
  it('posts the rendered Block Kit message with its fallback text', async () => {
    const msg = renderSlack(alert);
    const res = post(await client().postMessage({ channel: '#ai-alerts', ...msg }));
    expect(res.channel).toBe(server.channelId('#ai-alerts'));
    expect(res.ts).toMatch(/^\d{10}\.\d{6}$/);

    expect(server.calls).toHaveLength(1);
    const call = server.calls[0]!;
    expect(call.method).toBe('chat.postMessage');
    expect(call.tokenHint).toBe('xoxb-****alue');
    expect(call.args).toMatchObject({ channel: '#ai-alerts', text: msg.text, link_names: false });
    expect(call.args.blocks).toEqual(msg.blocks);
    // mrkdwn (the fallback) carries the name escaped; plain_text (the header) is never parsed by Slack, so as is
    expect(call.args.text).toContain('&lt;!channel&gt;');
    expect(JSON.stringify(call.args.blocks)).toContain('"plain_text","text":"🚨 Runaway spend on key <!channel>"');
    expect(call.args.thread_ts).toBeUndefined();
  });

  it('posts a repeat in the thread of the first post', async () => {
    const slack = client();
    const first = post(await slack.postMessage({ channel: '#ai-alerts', ...renderSlack(alert) }));
    const repeat = renderSlack({ ...alert, event: 'repeat' });
    const reply = post(await slack.postMessage({ channel: first.channel, threadTs: first.ts, ...repeat }));

    expect(reply.channel).toBe(first.channel);
    expect(Number(reply.ts)).toBeGreaterThan(Number(first.ts));
    expect(server.calls[1]?.args).toMatchObject({ channel: first.channel, thread_ts: first.ts });
  });

  it('returns rate_limited with Retry-After on a 429, without retrying inside the client', async () => {
    server.failNext(1, { status: 429, retryAfter: 7 });
    const f = failure(await client().postMessage({ channel: '#ai-alerts', ...renderSlack(alert) }));
    expect(f).toMatchObject({ kind: 'rate_limited', retryAfterMs: 7000 });
    expect(server.calls).toHaveLength(1);
  });

  it('falls back to a minute when a 429 has no Retry-After', async () => {
    server.failNext(1, { status: 429, retryAfter: null });
    const f = failure(await client().postMessage({ channel: '#ai-alerts', ...renderSlack(alert) }));
    expect(f).toMatchObject({ kind: 'rate_limited', retryAfterMs: 60_000 });
  });

  it.each([
    ['channel_not_found', 'permanent'],
    ['not_in_channel', 'permanent'],
    ['is_archived', 'permanent'],
    ['internal_error', 'retryable'],
    ['service_unavailable', 'retryable'],
  ] as const)('ok:false %s → %s', async (error, kind) => {
    server.failNext(1, { error });
    const f = failure(await client().postMessage({ channel: '#ai-alerts', ...renderSlack(alert) }));
    expect(f.kind).toBe(kind);
    expect(f.reason).toContain(error);
    // Slack answered: a refusal of this message, not a sign the service is down
    expect(f).not.toHaveProperty('unreachable');
  });

  it.each([
    [500, 'retryable'],
    [503, 'retryable'],
    [404, 'permanent'],
  ] as const)('HTTP %i → %s', async (status, kind) => {
    server.failNext(1, { status });
    const f = failure(await client().postMessage({ channel: '#ai-alerts', ...renderSlack(alert) }));
    expect(f.kind).toBe(kind);
    // a 5xx comes from the service (or a proxy before it) being down: the outbox holds the rest of its run
    if (kind === 'retryable') expect(f).toMatchObject({ unreachable: true });
    expect(f.reason).toContain(String(status));
  });

  it('reports a wrong token as permanent invalid_auth, never quoting the token', async () => {
    const wrong = 'xoxb-1111-CANARY-wrong-token-value';
    const result = await client({ token: wrong }).postMessage({ channel: '#ai-alerts', ...renderSlack(alert) });
    const f = failure(result);
    expect(f.kind).toBe('permanent');
    expect(f.reason).toContain('invalid_auth');
    expect(f.reason).toContain('SLACK_BOT_TOKEN');
    expect(JSON.stringify(result)).not.toContain('CANARY');
  });

  it('refuses blocks beyond Slack limits as permanent invalid_blocks', async () => {
    const msg = renderSlack(alert);
    const header = { type: 'header' as const, text: { type: 'plain_text' as const, text: 'x'.repeat(151) } };
    const f = failure(await client().postMessage({ channel: '#ai-alerts', text: msg.text, blocks: [header] }));
    expect(f).toMatchObject({ kind: 'permanent', reason: expect.stringContaining('invalid_blocks') });
  });

  it('reports a server that is down as retryable, and delivers once it is back on the same URL', async () => {
    const slack = client();
    await server.setDown(true);
    try {
      const f = failure(await slack.postMessage({ channel: '#ai-alerts', ...renderSlack(alert) }));
      expect(f).toMatchObject({ kind: 'retryable', unreachable: true });
      expect(f.reason).toContain('unreachable');
      expect(f.reason).not.toContain('CANARY');
    } finally {
      await server.setDown(false);
    }
    post(await slack.postMessage({ channel: '#ai-alerts', ...renderSlack(alert) }));
    expect(server.calls).toHaveLength(1);
  });

  it('gives up on a request that hangs once the timeout passes, as retryable', async () => {
    server.failNext(1, { hang: true });
    const f = failure(await client({ timeoutMs: 300 }).postMessage({ channel: '#ai-alerts', ...renderSlack(alert) }));
    expect(f).toEqual({ kind: 'retryable', reason: 'slack chat.postMessage: timed out', unreachable: true });
  });

  it('checks who the token belongs to with auth.test', async () => {
    expect(await client().authTest()).toEqual({
      ok: true,
      team: 'Keywarden stand-in',
      user: 'keywarden',
      botId: 'B0KEYWARDEN',
    });
    const wrong = await client({ token: 'xoxb-9999-CANARY-nope-nope' }).authTest();
    expect(wrong).toMatchObject({ ok: false, failure: { kind: 'permanent' } });
  });

  it('accepts JSON bodies the way Slack does', async () => {
    const msg = renderSlack(alert);
    const res = await fetch(`${server.url}chat.postMessage`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ channel: '#finance', ...msg, unfurl_links: false }),
    });
    expect(await res.json()).toMatchObject({ ok: true, channel: server.channelId('#finance') });
    expect(server.calls[0]?.args).toMatchObject({ blocks: msg.blocks, unfurl_links: false });
  });
});
