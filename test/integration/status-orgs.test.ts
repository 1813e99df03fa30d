import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig, orgConfig } from '../../src/config/index.ts';
import type { Context } from '../../src/context.ts';
import { createDb, type Db, migrateToLatest } from '../../src/db/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { type HealthServer, startHealthServer } from '../../src/http/server.ts';
import { statusLoader } from '../../src/http/status/load.ts';
import { captureLog } from '../support/context.ts';
import { createTestDatabase, redisUrl, type TestDatabase } from '../support/db.ts';

/**
 * The status page of a deployment that watches two organizations: the first by default, another by `?org=<id>`,
 * each read from its own schema, with a link to each organization's page; an id it does not watch is a 404.
 */

const TOKEN = 'status-orgs-token-0123456789abcdef';
const NOW = new Date('2026-12-01T12:00:00Z');

let t: TestDatabase;
let redis: Redis;
let server: HealthServer;
const pools: Db[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  const file = join(mkdtempSync(join(tmpdir(), 'kw-status-orgs-')), 'keywarden.yaml');
  writeFileSync(
    file,
    'organizations:\n  - { id: emea, name: "Acme EMEA", admin_key_env: EMEA_KEY }\n  - { id: apac, name: "Acme APAC", admin_key_env: APAC_KEY }\n',
  );
  const config = loadConfig({
    env: {
      KEYWARDEN_CONFIG: file,
      KEYWARDEN_UI_TOKEN: TOKEN,
      EMEA_KEY: 'sk-ant-admin01-emea-organization-key-0123456789abcdefAAAA',
      APAC_KEY: 'sk-ant-admin01-apac-organization-key-0123456789abcdefBBBB',
    },
  });
  const orgs = new Map<string, { ctx: Pick<Context, 'config' | 'repos' | 'clock'>; failing: () => [] }>();
  for (const org of config.organizations) {
    const owner = createDb(t.url, { max: 2, schema: org.schema });
    const db = createDb(t.runtimeUrl, { max: 2, schema: org.schema });
    pools.push(owner, db);
    await migrateToLatest(owner, org.schema);
    await createRepos(db).jobRuns.recordFailure(`${org.id}-job`, `${org.id} failed`, NOW);
    orgs.set(org.id, {
      ctx: { config: orgConfig(config, org), repos: createRepos(db), clock: fixedClock(NOW) },
      failing: () => [],
    });
  }
  redis = new Redis(redisUrl());
  server = await startHealthServer({
    port: 0,
    host: '127.0.0.1',
    db: t.db,
    redis,
    metrics: createMetrics(createRepos(t.db)),
    log: captureLog().log,
    status: { token: config.env.uiToken!, load: statusLoader(orgs) },
  });
});
afterAll(async () => {
  await server?.close();
  redis?.disconnect();
  await Promise.all(pools.map((p) => p.destroy()));
  await t?.drop();
});

const page = (query = '') =>
  fetch(`http://127.0.0.1:${server.port}/${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });

describe('status page over several organizations', () => {
  it('shows the first organization by default, another by ?org=, each from its own schema, with a selector', async () => {
    const first = await (await page()).text();
    expect(first).toContain('<title>keywarden: Acme EMEA</title>');
    expect(first).toContain('emea failed');
    expect(first).not.toContain('apac failed');
    expect(first).toContain('<strong aria-current="page">Acme EMEA</strong>');
    expect(first).toContain('<a href="?org=apac">Acme APAC</a>');

    const apac = await page('?org=apac&sort=owner');
    expect(apac.status).toBe(200);
    const body = await apac.text();
    expect(body).toContain('<title>keywarden: Acme APAC</title>');
    expect(body).toContain('apac failed');
    expect(body).not.toContain('emea failed');
    expect(body).toContain('<a href="?org=emea">Acme EMEA</a>');
    // the keys table's sort links and workspace filter stay on this organization's page
    expect(body).toContain('href="?org=apac&amp;sort=name#keys"');
    expect(body).toContain('<input type="hidden" name="org" value="apac">');
  });

  it('an organization it does not watch is a 404 that does not echo the id', async () => {
    const r = await page('?org=%3Cscript%3Enowhere');
    expect(r.status).toBe(404);
    const text = await r.text();
    expect(text).toContain('no organization of that id');
    expect(text).not.toContain('nowhere');
  });
});
