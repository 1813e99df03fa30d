import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  APIKey,
  OrganizationRateLimit,
  OrganizationUser,
  Workspace as SdkWorkspace,
} from '@anthropic-ai/sdk/resources/organization';
import type { WorkspaceRateLimit } from '@anthropic-ai/sdk/resources/organization/workspaces';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminClient } from '../../src/anthropic/client.ts';
import { ORGANIZATION_ROLES } from '../../src/anthropic/types.ts';
import { Secret } from '../../src/config/secret.ts';

/**
 * The client reads what the SDK (`@anthropic-ai/sdk`, a devDependency) types, as the SDK types it: every body
 * below is checked against the SDK's own types by `satisfies`, so `tsc` fails when a newer SDK changes them.
 */

const ADMIN_KEY = 'sk-ant-admin01-shapesTestKey0123456789-ZZZZ';
const DEFAULT_ID = 'wrkspc_01DEFAULTWORKSPACE00000';

const page = <T>(data: T[]) => ({
  data,
  has_more: false,
  first_id: null,
  last_id: null,
});

const workspace = (id: string, name: string): SdkWorkspace => ({
  id,
  type: 'workspace',
  name,
  archived_at: null,
  compartment_id: `cmpt_${id}`,
  created_at: '2025-01-01T00:00:00.000000Z',
  data_residency: { workspace_geo: 'us', allowed_inference_geos: ['us', 'global'], default_inference_geo: 'us' },
  display_color: '#123456',
  external_key_id: null,
  tags: { team: 'platform' },
  user_profile_id: null,
});

const KEYS = [
  {
    id: 'apikey_01DEFAULT',
    type: 'api_key',
    name: 'in the default workspace',
    status: 'active',
    created_at: '2025-02-01T00:00:00Z',
    created_by: { id: 'user_01A', type: 'user' },
    expires_at: null,
    partial_key_hint: 'sk-ant-api03-aaa...aaaa',
    principal: null,
    scope: { type: 'workspace', workspace_id: DEFAULT_ID },
  },
  {
    id: 'apikey_01RESEARCH',
    type: 'api_key',
    name: 'research',
    status: 'inactive',
    created_at: '2025-02-02T00:00:00Z',
    created_by: { id: 'svac_01BOT', type: 'service_account' },
    expires_at: '2027-01-01T00:00:00Z',
    partial_key_hint: null,
    principal: { type: 'service_account_actor', service_account_id: 'svac_01BOT' },
    scope: { type: 'workspace', workspace_id: 'wrkspc_01RESEARCH' },
  },
  {
    id: 'apikey_01ORG',
    type: 'api_key',
    name: 'principal-bound',
    status: 'active',
    created_at: '2025-02-03T00:00:00Z',
    created_by: null,
    expires_at: null,
    partial_key_hint: 'sk-ant-api03-ccc...cccc',
    principal: { type: 'user_actor', user_id: 'user_01A' },
    scope: { type: 'organization' },
  },
] satisfies APIKey[];

const RATE_LIMITS = [
  {
    id: 'rl_01SONNET',
    type: 'rate_limit',
    group: { id: 'rlg_01SONNET', type: 'model_group', display_name: 'Claude Sonnet' },
    models: ['claude-sonnet-4-5'],
    limits: [
      { type: 'input_tokens_per_minute_cache_aware', value: 2_000_000 },
      { type: 'fast_otpm', value: 50_000 },
    ],
  },
  { id: 'rl_01BATCH', type: 'rate_limit', group: { id: 'rlg_01BATCH', type: 'batch' }, models: null, limits: [] },
] satisfies OrganizationRateLimit[];

const WORKSPACE_LIMITS = [
  {
    type: 'workspace_rate_limit',
    rate_limit_id: 'rl_01SONNET',
    workspace_id: 'wrkspc_01RESEARCH',
    group: { id: 'rlg_01SONNET', type: 'model_group', display_name: 'Claude Sonnet' },
    models: ['claude-sonnet-4-5'],
    limits: [
      { type: 'tokens_per_day', value: 10_000_000, org_limit: null, source: { type: 'workspace' } },
      { type: 'fast_otpm', value: 50_000, org_limit: 50_000, source: { type: 'organization' } },
    ],
  },
] satisfies WorkspaceRateLimit[];

const USERS = ORGANIZATION_ROLES.map(
  (role, i): OrganizationUser => ({
    id: `user_0${i}`,
    type: 'user',
    email: `${role}@x.example`,
    name: role,
    role,
    added_at: '2025-01-01T00:00:00Z',
  }),
);

const running: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

/** `twoDefaults`: include_default adds two workspaces; `rateLimits`: the body of the rate limits instead. */
async function sdkShapedServer(
  opts: { twoDefaults?: boolean; rateLimits?: unknown } = {},
): Promise<{ url: string; paths: string[] }> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    paths.push(url.pathname + url.search);
    const p = url.pathname;
    const named = [workspace('wrkspc_01RESEARCH', 'Research')];
    let body: unknown = { type: 'error', error: { type: 'not_found_error', message: 'no' } };
    if (p === '/v1/organizations/workspaces') {
      body = page(
        url.searchParams.get('include_default') === 'true'
          ? [
              workspace(DEFAULT_ID, 'Default'),
              ...(opts.twoDefaults ? [workspace('wrkspc_01OTHER', 'Other')] : []),
              ...named,
            ]
          : named,
      );
    } else if (p === '/v1/organizations/api_keys') body = page(KEYS);
    else if (p.startsWith('/v1/organizations/api_keys/')) body = KEYS.find((k) => p.endsWith(k.id));
    else if (p === '/v1/organizations/rate_limits') body = opts.rateLimits ?? { data: RATE_LIMITS, next_page: null };
    else if (p.endsWith('/rate_limits')) body = { data: WORKSPACE_LIMITS, next_page: null };
    else if (p === '/v1/organizations/users') body = page(USERS);
    res.writeHead(body && !('error' in (body as object)) ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  running.push({ close: () => new Promise((resolve) => server.close(resolve)) });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths };
}

const client = (url: string) => new AdminClient({ baseUrl: url, adminKey: new Secret(ADMIN_KEY) });

describe('the shapes the SDK types', () => {
  it('API keys: the Default Workspace by its real id is the Default Workspace (null); others keep theirs', async () => {
    const api = await sdkShapedServer();
    const c = client(api.url);
    const keys = await c.listApiKeys().toArray();
    expect(keys.map((k) => [k.id, k.workspaceId, k.scope])).toEqual([
      ['apikey_01DEFAULT', null, 'workspace'],
      ['apikey_01RESEARCH', 'wrkspc_01RESEARCH', 'workspace'],
      ['apikey_01ORG', null, 'organization'],
    ]);
    expect(keys[1]).toMatchObject({
      createdBy: { id: 'svac_01BOT', type: 'service_account' },
      principal: { type: 'service_account_actor', serviceAccountId: 'svac_01BOT', userId: null },
      partialKeyHint: null,
    });
    expect(keys[2]!.principal).toEqual({ type: 'user_actor', userId: 'user_01A', serviceAccountId: null });
    expect((await c.getApiKey('apikey_01DEFAULT')).workspaceId).toBeNull();
    expect(await c.defaultWorkspaceId()).toBe(DEFAULT_ID);
    // learned once: two workspace listings in all, whatever else was read
    expect(api.paths.filter((p) => p.startsWith('/v1/organizations/workspaces'))).toHaveLength(2);
  });

  it('rate limits by group object, with source objects and a null org_limit', async () => {
    const c = client((await sdkShapedServer()).url);
    const org = await c.listRateLimits().toArray();
    expect(org[0]).toMatchObject({
      id: 'rl_01SONNET',
      groupId: 'rlg_01SONNET',
      groupType: 'model_group',
      groupName: 'Claude Sonnet',
    });
    expect(org[1]).toMatchObject({ groupType: 'batch', groupName: null, models: null });
    const ws = await c.listWorkspaceRateLimits('wrkspc_01RESEARCH', { includeInherited: true }).toArray();
    expect(ws[0]).toMatchObject({ id: 'rl_01SONNET', groupId: 'rlg_01SONNET', groupType: 'model_group' });
    expect(ws[0]!.limits).toEqual([
      { type: 'tokens_per_day', value: 10_000_000, orgLimit: null, source: 'workspace' },
      { type: 'fast_otpm', value: 50_000, orgLimit: 50_000, source: 'organization' },
    ]);
  });

  it('workspaces with their newer fields, and the nine organization roles', async () => {
    const c = client((await sdkShapedServer()).url);
    expect(await c.listWorkspaces().toArray()).toEqual([
      expect.objectContaining({
        id: 'wrkspc_01RESEARCH',
        tags: { team: 'platform' },
        compartmentId: 'cmpt_wrkspc_01RESEARCH',
        externalKeyId: null,
        userProfileId: null,
      }),
    ]);
    expect((await c.listUsers().toArray()).map((u) => u.role)).toEqual([...ORGANIZATION_ROLES]);
  });

  it('refuses to guess: two workspaces added by include_default, or a rate limit with no group, is an error naming it', async () => {
    const two = client((await sdkShapedServer({ twoDefaults: true })).url);
    await expect(two.listApiKeys().toArray()).rejects.toThrow(
      /include_default: include_default=true added 2 workspaces \(wrkspc_01DEFAULTWORKSPACE00000, wrkspc_01OTHER\), expected one/,
    );
    const noGroup = { data: [{ id: 'rl_01', type: 'rate_limit', models: null, limits: [] }], next_page: null };
    const c = client((await sdkShapedServer({ rateLimits: noGroup })).url);
    await expect(c.listRateLimits().toArray()).rejects.toThrow(
      /rate_limits: data\[0\]\.group: expected group\.type \(or group_type\), got missing/,
    );
  });
});
