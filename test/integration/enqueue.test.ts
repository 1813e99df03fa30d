import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

let t: TestDatabase;
let env: ReturnType<typeof testJobContext>;

beforeAll(async () => {
  t = await createTestDatabase();
  // no Admin API call is made here: the client only needs an address
  env = testJobContext({
    db: t.db,
    emulatorUrl: 'http://127.0.0.1:9',
    adminKey: 'sk-ant-admin01-test',
    clock: fixedClock(new Date()),
  });
});
afterAll(async () => {
  await env.close();
  await t.drop();
});

describe('ctx.enqueue', () => {
  it("queues a job by name on its own queue, with the job's retries, for the worker", async () => {
    await env.ctx.enqueue('project-spend', {});
    await env.ctx.enqueue('deliver-notifications', {});
    const [analyze] = await env.queues.analyze.getJobs(['waiting']);
    expect(analyze).toMatchObject({ name: 'project-spend', data: {}, opts: { attempts: 5 } });
    expect((await env.queues.notify.getJobs(['waiting'])).map((j) => j.name)).toEqual(['deliver-notifications']);
    expect(await env.queues.ingest.getJobs(['waiting'])).toEqual([]);
  });

  it('refuses a name the registry does not have (a name typed as a string where the compiler cannot see it)', async () => {
    await expect(env.ctx.enqueue('project-spnd' as never, {} as never)).rejects.toThrow(
      /no job named "project-spnd" \(jobs: sync-inventory, /,
    );
  });
});
