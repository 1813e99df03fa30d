import { expect, it } from 'vitest';
import { type HealthPresses, pressConfig, startHealthPresses } from '../support/slack-press.ts';

/**
 * The replay guard keys Socket Mode envelopes by id in the Redis every test file shares, so two stand-ins that
 * number their envelopes alike would make one file's press a "replay" of another's, dropped without an answer.
 */
it('two Slack stand-ins never hand out the same envelope id for the same sequence of calls', async () => {
  const rigs: HealthPresses[] = [];
  try {
    for (let i = 0; i < 2; i++) rigs.push(await startHealthPresses({ usergroups: {}, config: pressConfig() }));
    const press = { actionId: 'ack', value: 'no-such-button', userId: 'U0ANA', message: 'C0ALERTS:1.000100' };
    const ids = await Promise.all(rigs.map((r) => r.slack.pressOverSocket(press)));
    expect(ids[0]).not.toBe(ids[1]);
  } finally {
    await Promise.all(rigs.map((r) => r.close()));
  }
});
