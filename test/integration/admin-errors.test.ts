import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminClient, type AdminClientOptions } from '../../src/anthropic/client.ts';
import { AdminApiError, AdminApiTimeoutError, AdminKeyRejectedError } from '../../src/anthropic/errors.ts';
import { Secret } from '../../src/config/secret.ts';

/**
 * How the transport reads the API's failures: redirects, error codes, `x-should-retry`, and retry timing at the
 * edge of the total-time bound. Each test runs against a local server scripted answer by answer.
 */

const ADMIN_KEY = 'sk-ant-admin01-CANARYerrorsTestKey0123456789-ZZZZ';

interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
}

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

const running: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

/** A server answering its requests with `answers` in order (the last one repeats), recording what it receives. */
async function scripted(...answers: Answer[]): Promise<{ url: string; host: string; received: Received[] }> {
  const received: Received[] = [];
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    open.add(res);
    res.on('close', () => open.delete(res));
    req.resume();
    const answer = answers[Math.min(received.length - 1, answers.length - 1)]!;
    answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  running.push({
    close: () => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  });
  return { url: `http://${host}`, host, received };
}

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}): Answer =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_01TEST', ...headers });
    res.end(JSON.stringify(body));
  };

const apiError = (status: number, type: string, errorCode: string | null, headers: Record<string, string> = {}) =>
  json(
    status,
    {
      type: 'error',
      error: {
        type,
        message: `scripted ${errorCode ?? type}`,
        ...(errorCode ? { details: { error_code: errorCode } } : {}),
      },
      request_id: 'req_01TEST',
    },
    headers,
  );

const KEY = {
  id: 'apikey_01A',
  type: 'api_key',
  name: 'prod',
  status: 'inactive',
  created_at: '2026-01-01T00:00:00Z',
  created_by: { id: 'user_01A', type: 'user' },
  partial_key_hint: 'sk-ant-api03-abc...wxyz',
  workspace_id: 'wrkspc_01A',
  expires_at: null,
};
const ORG = { id: 'org-uuid', type: 'organization', name: 'Acme' };
const hang: Answer = () => {};

function client(url: string, opts: Partial<AdminClientOptions> = {}) {
  const waits: number[] = [];
  const c = new AdminClient({
    baseUrl: url,
    adminKey: new Secret(ADMIN_KEY),
    sleep: async (ms) => {
      waits.push(ms);
    },
    random: () => 0,
    ...opts,
  });
  return Object.assign(c, { waits });
}

describe('redirects', () => {
  it.each([302, 307])('a %i is an error naming the other host, and the admin key never goes there', async (status) => {
    const elsewhere = await scripted(json(200, KEY));
    const api = await scripted((_req, res) => {
      res.writeHead(status, { location: `${elsewhere.url}/v1/organizations/api_keys/apikey_01A` }).end();
    });
    const c = client(api.url);
    const err = await c.updateApiKey('apikey_01A', { status: 'inactive' }).catch((e: unknown) => e);
    expect(elsewhere.received).toEqual([]);
    expect(err).toBeInstanceOf(AdminApiError);
    expect(err).not.toBeInstanceOf(AdminKeyRejectedError);
    expect((err as Error).message).toContain(`redirect to ${elsewhere.host}`);
    expect((err as AdminApiError).retryable).toBe(false);
    expect(JSON.stringify(err) + String((err as Error).stack)).not.toContain('CANARY');
    expect(api.received).toHaveLength(1);
    expect(c.keyVerdict.state).toBe('unknown');
  });
});

describe('timeouts near the total-time bound', () => {
  it('a hanging API ends in a timeout error, not a RangeError from a fractional timeout', async () => {
    const api = await scripted(hang);
    // Real sleeping and real timeouts, all short: the third attempt starts with less than timeoutMs left.
    const c = new AdminClient({
      baseUrl: api.url,
      adminKey: new Secret(ADMIN_KEY),
      timeoutMs: 120,
      maxElapsedMs: 330,
      maxAttempts: 6,
      random: () => 0,
    });
    const err = await c.getOrganization().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminApiTimeoutError);
    expect(api.received.length).toBeGreaterThanOrEqual(3);
  });
});

describe('error codes', () => {
  it('403 api_key_requester_unconfirmed on a key update is retried, and says nothing about the admin key', async () => {
    const api = await scripted(apiError(403, 'permission_error', 'api_key_requester_unconfirmed'), json(200, KEY));
    const c = client(api.url);
    const key = await c.updateApiKey('apikey_01A', { status: 'inactive' });
    expect(key.status).toBe('inactive');
    expect(api.received.map((r) => r.method)).toEqual(['POST', 'POST']);
    expect(c.keyVerdict.state).toBe('accepted');
  });

  it.each([
    'sandbox_egress_restricted',
    'spend_limits_admin_api_writes_not_enabled',
    'api_key_scope_missing',
    'organization_level_scoped_api_key_required',
  ])('403 %s is a refusal of that request, not a rejected admin key', async (code) => {
    const api = await scripted(apiError(403, 'permission_error', code));
    const c = client(api.url);
    const err = await c.getOrganization().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminApiError);
    expect(err).not.toBeInstanceOf(AdminKeyRejectedError);
    expect(err).toMatchObject({ status: 403, errorCode: code, retryable: false });
    expect(c.keyVerdict.state).not.toBe('rejected');
  });

  it('401, and a 403 without an error code, are a rejected admin key', async () => {
    for (const answer of [apiError(401, 'authentication_error', null), apiError(403, 'permission_error', null)]) {
      const api = await scripted(answer);
      const c = client(api.url);
      await expect(c.getOrganization()).rejects.toBeInstanceOf(AdminKeyRejectedError);
      expect(c.keyVerdict.state).toBe('rejected');
    }
  });

  it('retries 409 concurrent_membership_change and 503 change_outcome_unknown', async () => {
    const api = await scripted(
      apiError(409, 'conflict_error', 'concurrent_membership_change'),
      apiError(503, 'api_error', 'change_outcome_unknown'),
      json(200, KEY),
    );
    const c = client(api.url);
    expect((await c.updateApiKey('apikey_01A', { status: 'inactive' })).id).toBe('apikey_01A');
    expect(api.received).toHaveLength(3);
  });

  it('honours x-should-retry both ways', async () => {
    const no = await scripted(apiError(500, 'api_error', null, { 'x-should-retry': 'false' }), json(200, ORG));
    const err = await client(no.url)
      .getOrganization()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 500, retryable: false, attempts: 1 });
    const yes = await scripted(
      apiError(400, 'invalid_request_error', null, { 'x-should-retry': 'true' }),
      json(200, ORG),
    );
    expect((await client(yes.url).getOrganization()).name).toBe('Acme');
    expect(yes.received).toHaveLength(2);
  });

  it('keeps anthropic-workspace-id beside request-id, and the error code, in the error', async () => {
    const api = await scripted(
      apiError(400, 'invalid_request_error', 'workspace_api_key_limit_exceeded', {
        'anthropic-workspace-id': 'wrkspc_01LIMIT',
      }),
    );
    const err = (await client(api.url)
      .updateApiKey('apikey_01A', { status: 'active' })
      .catch((e: unknown) => e)) as AdminApiError;
    expect(err).toMatchObject({
      status: 400,
      errorCode: 'workspace_api_key_limit_exceeded',
      requestId: 'req_01TEST',
      workspaceId: 'wrkspc_01LIMIT',
    });
    expect(err.message).toContain('workspace wrkspc_01LIMIT');
    expect(err.message).toContain('request req_01TEST');
  });
});
