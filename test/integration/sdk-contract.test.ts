import { Writable } from 'node:stream';
import Anthropic from '@anthropic-ai/sdk';
import type {
  APIKey,
  OrganizationInfo,
  OrganizationInvite,
  OrganizationRateLimit,
  OrganizationUser,
  Workspace,
} from '@anthropic-ai/sdk/resources/organization';
import type { WorkspaceMember, WorkspaceRateLimit } from '@anthropic-ai/sdk/resources/organization/workspaces';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fixedClock } from '../../src/clock.ts';
import { runEmulatorCommand } from '../../src/emulator/command.ts';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { DEMO_ADMIN_KEY } from '../support/demo-org.ts';

/**
 * The emulator against Anthropic's own SDK (`@anthropic-ai/sdk`, pinned as a devDependency; its version is in
 * package.json and the README): (a) every entity the emulator serves, fetched raw under `anthropic-version:
 * 2026-10-21`, is parsed with a strict schema whose type tsc proves equal to the SDK's type, so a field the SDK
 * adds, drops or retypes fails the typecheck, and a field the emulator gets wrong fails the run; (b) the SDK,
 * constructed plainly, drives the emulator over every method keywarden relies on, and its answers are compared
 * with the scenario's truth. The classic usage and cost reports are not in the SDK and are not checked here.
 */

// ── (a) strict schemas, tied to the SDK's types ─────────────────────────────────────────────────────────────

/** true only when A and B are the same type both ways; `ok<Same<…>>()` fails to compile otherwise. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const ok = <_ extends true>() => {};

const organizationInfo = z.strictObject({ id: z.string(), name: z.string(), type: z.literal('organization') });
ok<Same<z.output<typeof organizationInfo>, OrganizationInfo>>();

const ROLES = [
  'admin',
  'billing',
  'claude_code_user',
  'developer',
  'managed',
  'membership_admin',
  'owner',
  'primary_owner',
  'user',
] as const;
const organizationUser = z.strictObject({
  id: z.string(),
  added_at: z.string(),
  email: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  type: z.literal('user'),
});
ok<Same<z.output<typeof organizationUser>, OrganizationUser>>();

const organizationInvite = z.strictObject({
  id: z.string(),
  accepted_at: z.string().nullable(),
  email: z.string(),
  expires_at: z.string(),
  invited_at: z.string(),
  rbac_group_ids: z.array(z.string()),
  role: z.enum(ROLES),
  status: z.enum(['accepted', 'deleted', 'expired', 'pending']),
  type: z.literal('invite'),
});
ok<Same<z.output<typeof organizationInvite>, OrganizationInvite>>();

const geo = z.enum(['global', 'us']);
const workspace = z.strictObject({
  id: z.string(),
  archived_at: z.string().nullable(),
  compartment_id: z.string(),
  created_at: z.string(),
  data_residency: z.strictObject({
    allowed_inference_geos: z.union([z.array(geo), z.literal('unrestricted')]),
    default_inference_geo: geo,
    workspace_geo: z.literal('us'),
  }),
  display_color: z.string(),
  external_key_id: z.string().nullable(),
  name: z.string(),
  tags: z.record(z.string(), z.string()),
  type: z.literal('workspace'),
  user_profile_id: z.string().nullable(),
});
ok<Same<z.output<typeof workspace>, Workspace>>();

const workspaceRole = z.enum([
  'workspace_admin',
  'workspace_billing',
  'workspace_developer',
  'workspace_restricted_developer',
  'workspace_user',
]);
const workspaceMember = z.strictObject({
  type: z.literal('workspace_member'),
  user_id: z.string(),
  workspace_id: z.string(),
  workspace_role: workspaceRole,
});
ok<Same<z.output<typeof workspaceMember>, WorkspaceMember>>();

const apiKey = z.strictObject({
  id: z.string(),
  created_at: z.string(),
  created_by: z.strictObject({ id: z.string(), type: z.enum(['service_account', 'user']) }).nullable(),
  expires_at: z.string().nullable(),
  name: z.string(),
  partial_key_hint: z.string().nullable(),
  principal: z
    .union([
      z.strictObject({ type: z.literal('user_actor'), user_id: z.string() }),
      z.strictObject({ type: z.literal('service_account_actor'), service_account_id: z.string() }),
    ])
    .nullable(),
  scope: z.union([
    z.strictObject({ type: z.literal('organization') }),
    z.strictObject({ type: z.literal('workspace'), workspace_id: z.string() }),
  ]),
  status: z.enum(['active', 'archived', 'expired', 'inactive']),
  type: z.literal('api_key'),
});
ok<Same<z.output<typeof apiKey>, APIKey>>();

const group = z.union([
  z.strictObject({ id: z.string(), display_name: z.string(), type: z.literal('model_group') }),
  z.strictObject({ id: z.string(), type: z.literal('batch') }),
  z.strictObject({ id: z.string(), type: z.literal('token_count') }),
  z.strictObject({ id: z.string(), type: z.literal('files') }),
  z.strictObject({ id: z.string(), type: z.literal('skills') }),
  z.strictObject({ id: z.string(), type: z.literal('web_search') }),
]);
const organizationRateLimit = z.strictObject({
  id: z.string(),
  group,
  limits: z.array(z.strictObject({ type: z.string(), value: z.number() })),
  models: z.array(z.string()).nullable(),
  type: z.literal('rate_limit'),
});
ok<Same<z.output<typeof organizationRateLimit>, OrganizationRateLimit>>();

const workspaceRateLimit = z.strictObject({
  group,
  limits: z.array(
    z.strictObject({
      org_limit: z.number().nullable(),
      source: z.union([
        z.strictObject({ type: z.literal('workspace') }),
        z.strictObject({ type: z.literal('organization') }),
      ]),
      type: z.string(),
      value: z.number(),
    }),
  ),
  models: z.array(z.string()).nullable(),
  rate_limit_id: z.string(),
  type: z.literal('workspace_rate_limit'),
  workspace_id: z.string(),
});
ok<Same<z.output<typeof workspaceRateLimit>, WorkspaceRateLimit>>();

/** The SDK's `Page` (id cursors) and `PageCursor` (page tokens) envelopes. */
const page = <S extends z.ZodType>(item: S) =>
  z.strictObject({
    data: z.array(item),
    has_more: z.boolean(),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
  });
const cursorPage = <S extends z.ZodType>(item: S) =>
  z.strictObject({ data: z.array(item), next_page: z.string().nullable() });

// ── the organization ────────────────────────────────────────────────────────────────────────────────────────

const ADMIN_KEY = 'sk-ant-admin01-sdk-contract-test-key-0001';
const START = new Date('2026-11-16T10:00:00Z');
const SONNETS = ['claude-sonnet-4-6', 'claude-sonnet-4-5'];

const SCENARIO = parseScenario({
  name: 'sdk-contract',
  seed: 11,
  admin_keys: [ADMIN_KEY],
  workspaces: [
    {
      name: 'Alpha',
      rate_limits: [{ group_type: 'model_group', models: SONNETS, limits: { input_tokens_per_minute: 100_000 } }],
    },
    { name: 'Beta' },
    { name: 'Gone', archived_days_ago: 3 },
  ],
  rate_limits: [
    { group_type: 'model_group', models: SONNETS, limits: { requests_per_minute: 4000, input_tokens_per_minute: 2e6 } },
    { group_type: 'batch', models: null, limits: { enqueued_batch_requests: 500_000 } },
  ],
  users: [
    { name: 'Owner', email: 'owner@sdk.example', role: 'primary_owner' },
    { name: 'Admin', email: 'admin@sdk.example', role: 'admin' },
    { name: 'Dev', email: 'dev@sdk.example', role: 'developer', workspaces: { Alpha: 'workspace_developer' } },
    { name: 'Bill', email: 'bill@sdk.example', role: 'billing', workspaces: { Beta: 'workspace_billing' } },
    { name: 'Memb', email: 'memb@sdk.example', role: 'membership_admin' },
  ],
  invites: [
    { email: 'new@sdk.example', role: 'developer' },
    { email: 'old@sdk.example', role: 'user', status: 'expired', invited_days_ago: 40 },
    { email: 'joined@sdk.example', role: 'billing', status: 'accepted', invited_days_ago: 10 },
  ],
  keys: [
    { name: 'alpha', workspace: 'Alpha', created_by: 'dev@sdk.example' },
    { name: 'beta', workspace: 'Beta', created_by: 'admin@sdk.example', status: 'inactive' },
    { name: 'default', created_by: null },
    { name: 'bot', workspace: 'Beta', created_by: 'svac_01ContractBot', principal: 'svac_01ContractBot' },
    { name: 'personal', scope: 'organization', principal: 'dev@sdk.example', created_by: 'dev@sdk.example' },
    { name: 'expired', workspace: 'Alpha', created_by: 'dev@sdk.example', expires_in_days: -1 },
    { name: 'gone', workspace: 'Gone', created_by: 'admin@sdk.example' },
  ],
});

let em: Emulator;
beforeAll(async () => {
  em = await startEmulator({ scenario: SCENARIO, clock: fixedClock(START), startAt: START });
});
afterAll(async () => {
  await em.close();
});

const ws = (name: string) => em.state.workspaces.find((w) => w.name === name)!;
const key = (name: string) => em.state.keys.find((k) => k.name === name)!;

async function raw(path: string, init: RequestInit = {}): Promise<unknown> {
  const res = await fetch(`${em.url}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${ADMIN_KEY}`,
      'anthropic-version': '2026-10-21',
      'content-type': 'application/json',
    },
  });
  expect(res.status, path).toBe(200);
  return res.json();
}

describe('(a) every entity the emulator serves, as the SDK types it', () => {
  it.each([
    ['/v1/organizations/me', organizationInfo],
    ['/v1/organizations/users?limit=2', page(organizationUser)],
    ['/v1/organizations/invites', page(organizationInvite)],
    ['/v1/organizations/workspaces?include_default=true&include_archived=true', page(workspace)],
    ['/v1/organizations/api_keys', page(apiKey)],
    ['/v1/organizations/rate_limits', cursorPage(organizationRateLimit)],
  ] as const)('GET %s', async (path, schema) => {
    const body = await raw(path);
    const parsed = (schema as z.ZodType).safeParse(body);
    expect(parsed.error?.issues ?? []).toEqual([]);
  });

  it('the endpoints with an id in the path, and the key update', async () => {
    const alpha = ws('Alpha');
    const dev = em.state.users.find((u) => u.email === 'dev@sdk.example')!;
    const checks: Array<[string, z.ZodType, RequestInit?]> = [
      [`/v1/organizations/users/${dev.id}`, organizationUser],
      [`/v1/organizations/invites/${em.state.invites[0]!.id}`, organizationInvite],
      [`/v1/organizations/workspaces/${alpha.id}`, workspace],
      [`/v1/organizations/workspaces/${em.state.defaultWorkspace.id}`, workspace],
      [`/v1/organizations/workspaces/${alpha.id}/members`, page(workspaceMember)],
      [`/v1/organizations/workspaces/${alpha.id}/members/${dev.id}`, workspaceMember],
      [`/v1/organizations/workspaces/${alpha.id}/rate_limits?include_inherited=true`, cursorPage(workspaceRateLimit)],
      [`/v1/organizations/workspaces/${alpha.id}/rate_limits`, cursorPage(workspaceRateLimit)],
      [`/v1/organizations/api_keys/${key('personal').id}`, apiKey],
      [
        `/v1/organizations/api_keys/${key('alpha').id}`,
        apiKey,
        { method: 'POST', body: JSON.stringify({ name: 'alpha', status: null }) },
      ],
    ];
    for (const [path, schema, init] of checks) {
      const parsed = schema.safeParse(await raw(path, init));
      expect(parsed.error?.issues ?? [], path).toEqual([]);
    }
  });
});

describe('(b) the official SDK, constructed plainly, over every method keywarden relies on', () => {
  const sdk = () => new Anthropic({ apiKey: ADMIN_KEY, baseURL: em.url });

  it('organization, users (with the roles filter), invites (with the statuses filter)', async () => {
    const org = sdk().organization;
    expect(await org.retrieve()).toMatchObject({ id: em.state.id, name: em.state.name });
    const users: string[] = [];
    for await (const u of org.users.list({ limit: 2 })) users.push(u.email);
    expect(users).toEqual(em.state.users.map((u) => u.email));
    const billing: string[] = [];
    for await (const u of org.users.list({ roles: ['billing', 'membership_admin'] })) billing.push(u.role);
    expect(billing).toEqual(['billing', 'membership_admin']);
    const pending: string[] = [];
    for await (const i of org.invites.list({ statuses: ['pending', 'expired'] })) pending.push(i.email);
    expect(pending).toEqual(['new@sdk.example', 'old@sdk.example']);
    expect((await org.invites.retrieve(em.state.invites[2]!.id)).status).toBe('accepted');
  });

  it('workspaces: the Default Workspace by include_default, ids[], members list and read', async () => {
    const org = sdk().organization;
    const names = async (params: Anthropic.Organization.WorkspaceListParams) => {
      const out: string[] = [];
      for await (const w of org.workspaces.list(params)) out.push(w.id);
      return out;
    };
    const named = em.state.workspaces.filter((w) => w.archivedAt === null).map((w) => w.id);
    expect(await names({})).toEqual(named);
    expect(await names({ include_default: true })).toEqual([em.state.defaultWorkspace.id, ...named]);
    expect(await names({ ids: [ws('Beta').id], include_archived: true })).toEqual([ws('Beta').id]);
    const members: string[] = [];
    for await (const m of org.workspaces.members.list(ws('Alpha').id, { limit: 1 })) members.push(m.user_id);
    const truth = em.state.members(ws('Alpha'), START.getTime()).map((m) => m.user.id);
    expect(members).toEqual(truth);
    const member = await org.workspaces.members.retrieve(truth[0]!, { workspace_id: ws('Alpha').id });
    expect(member.workspace_role).toBe('workspace_admin');
  });

  it('API keys: listed across pages with scope and principal as the scenario says, read, updated', async () => {
    const org = sdk().organization;
    const keys: APIKey[] = [];
    for await (const k of org.apiKeys.list({ limit: 3 })) keys.push(k);
    expect(keys.map((k) => k.name)).toEqual(em.state.keys.map((k) => k.name));
    const byName = new Map(keys.map((k) => [k.name, k]));
    expect(byName.get('default')!.scope).toEqual({ type: 'workspace', workspace_id: em.state.defaultWorkspace.id });
    expect(byName.get('alpha')!.scope).toEqual({ type: 'workspace', workspace_id: ws('Alpha').id });
    expect(byName.get('personal')!.scope).toEqual({ type: 'organization' });
    expect(byName.get('bot')).toMatchObject({
      created_by: { id: 'svac_01ContractBot', type: 'service_account' },
      principal: { type: 'service_account_actor', service_account_id: 'svac_01ContractBot' },
    });
    expect(byName.get('expired')!.status).toBe('expired');
    expect(byName.get('gone')!.status).toBe('archived');
    const inDefault: string[] = [];
    for await (const k of org.apiKeys.list({ workspace_id: em.state.defaultWorkspace.id })) inDefault.push(k.name);
    expect(inDefault).toEqual(['default']);

    const id = key('beta').id;
    const { data, response } = await org.apiKeys.retrieve(id).withResponse();
    expect(data.status).toBe('inactive');
    expect(response.headers.get('anthropic-workspace-id')).toBe(ws('Beta').id);
    expect((await org.apiKeys.update(id, { status: 'active' })).status).toBe('active');
    expect((await org.apiKeys.update(id, { status: 'inactive', name: null })).status).toBe('inactive');
  });

  it('rate limits: by group, a model filter, 404 for an unknown model, a workspace with inherited limits', async () => {
    const org = sdk().organization;
    const groups: OrganizationRateLimit[] = [];
    for await (const g of org.rateLimits.list({ limit: 1 })) groups.push(g);
    expect(groups.map((g) => g.group.type)).toEqual(['model_group', 'batch']);
    expect(groups[0]!.models).toEqual(SONNETS);
    const sonnet: string[] = [];
    for await (const g of org.rateLimits.list({ model: 'claude-sonnet-4-5' })) sonnet.push(g.group.id);
    expect(sonnet).toEqual([groups[0]!.group.id]);
    await expect(org.rateLimits.list({ model: 'no-such-model' })).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    const own: WorkspaceRateLimit[] = [];
    for await (const g of org.workspaces.rateLimits.list(ws('Alpha').id, { include_inherited: true })) own.push(g);
    expect(own[0]!.rate_limit_id).toBe(groups[0]!.id);
    expect(own[0]!.limits).toEqual([
      { type: 'requests_per_minute', value: 4000, org_limit: 4000, source: { type: 'organization' } },
      { type: 'input_tokens_per_minute', value: 100_000, org_limit: 2e6, source: { type: 'workspace' } },
    ]);
  });

  it('errors carry details.error_code as the SDK reads it; x-should-retry false is obeyed', async () => {
    const id = key('alpha').id;
    em.setFaults({ script: [{ status: 403, errorCode: 'api_key_requester_unconfirmed', shouldRetry: false }] });
    const err = await sdk()
      .organization.apiKeys.update(id, { status: 'inactive' })
      .catch((e: unknown) => e);
    em.setFaults({});
    expect(err).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(err).toMatchObject({ status: 403, errorCode: 'api_key_requester_unconfirmed' });
    expect(err!.constructor.name).toBe('APIKeyRequesterUnconfirmedError');
  });
});

describe('the emulator command', () => {
  it('--api-shape 2026 serves the SDK shapes under 2023-06-01; a wrong value is refused', async () => {
    let out = '';
    let err = '';
    let stop = () => {};
    const sink = (append: (t: string) => void) =>
      new Writable({
        write(chunk, _enc, cb) {
          append(String(chunk));
          cb();
        },
      });
    const io = {
      out: sink((t) => {
        out += t;
      }),
      err: sink((t) => {
        err += t;
      }),
      stopped: new Promise<void>((resolve) => {
        stop = resolve;
      }),
    };
    const running = runEmulatorCommand(['--scenario', 'demo', '--port', '0', '--api-shape', '2026'], io);
    while (!out.includes('ANTHROPIC_BASE_URL=')) await new Promise((r) => setTimeout(r, 20));
    const url = /ANTHROPIC_BASE_URL=(\S+)/.exec(out)![1]!;
    const res = await fetch(`${url}/v1/organizations/api_keys?limit=1`, {
      headers: { 'x-api-key': DEMO_ADMIN_KEY, 'anthropic-version': '2023-06-01' },
    });
    const parsed = page(apiKey).safeParse(await res.json());
    stop();
    expect(await running).toBe(0);
    expect(parsed.error?.issues ?? []).toEqual([]);

    const bad = await runEmulatorCommand(['--scenario', 'demo', '--api-shape', 'newest'], io);
    expect(bad).toBe(2);
    expect(err).toContain('--api-shape: "newest" is not one of by_version, classic, 2026');
  });
});
