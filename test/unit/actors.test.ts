import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/command.ts';
import { spendCommand } from '../../src/cli/spend.ts';
import { type ActorSpend, actorName, leadingActor, rankActors } from '../../src/usage/core/actors.ts';

const USD = 1_000_000_000_000n;
const actor = (type: string | null, id: string, label: string | null, usd: bigint): ActorSpend => ({
  type,
  id,
  label,
  billed: usd * USD,
  list: usd * USD,
  requests: 0,
  keys: 1,
});

describe('actorName', () => {
  it.each([
    [actor('user_actor', 'user_01', 'ana@acme.example', 1n), 'ana@acme.example'],
    [actor('user_actor', 'user_01', null, 1n), 'user user_01'],
    [actor('service_account_actor', 'svac_01Ci', null, 1n), 'service account svac_01Ci'],
    [actor('federated_actor', 'repo:acme/ci', null, 1n), 'federated identity repo:acme/ci'],
    [actor('federated_actor', '', null, 1n), 'a federated identity'],
    [actor('api_actor', 'apikey_01', null, 1n), 'API key apikey_01 (no principal)'],
    [actor(null, '', null, 1n), 'no actor named'],
  ])('%#: %o is "%s"', (a, name) => {
    expect(actorName(a)).toBe(name);
  });
});

describe('leadingActor', () => {
  it.each([
    ['nothing billed', [], null],
    ['only zero rows', [actor('user_actor', 'u', 'a@x', 0n)], null],
    [
      'one actor: no share (it would always be 100%)',
      [actor('user_actor', 'u', 'a@x', 5n)],
      { name: 'a@x', share: null },
    ],
    [
      'the largest of several, with its share',
      [actor('user_actor', 'u', 'a@x', 1n), actor('service_account_actor', 'svac_1', null, 3n)],
      { name: 'service account svac_1', share: 0.75 },
    ],
    [
      'a tie goes to the first name, so the message is stable',
      [actor('user_actor', 'u2', 'b@x', 2n), actor('user_actor', 'u1', 'a@x', 2n)],
      { name: 'a@x', share: 0.5 },
    ],
  ])('%s', (_, actors, expected) => {
    expect(leadingActor(actors as ActorSpend[])).toEqual(expected);
  });
});

describe('rankActors', () => {
  it('orders by billed spend, largest first, without changing its input', () => {
    const input = [actor('user_actor', 'a', 'a@x', 1n), actor('user_actor', 'b', 'b@x', 9n)];
    expect(rankActors(input).map((a) => a.id)).toEqual(['b', 'a']);
    expect(input.map((a) => a.id)).toEqual(['a', 'b']);
  });
});

describe('keywarden spend --by', () => {
  it('refuses a grouping it does not know, naming it, before reading any configuration', async () => {
    await expect(spendCommand.run(['--by', 'model'])).rejects.toThrow(
      '--by: "model" is not a grouping keywarden knows (only "actor")',
    );
    await expect(spendCommand.run(['--by', 'model'])).rejects.toBeInstanceOf(UsageError);
  });
});
