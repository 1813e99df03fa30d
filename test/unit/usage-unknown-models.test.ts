import { describe, expect, it } from 'vitest';
import { PRICE_TABLE, withPriceOverrides } from '../../src/usage/core/prices.ts';
import { type UnknownModel, unknownModelObservations } from '../../src/usage/core/unknown-models.ts';

const NOW = new Date('2026-11-29T12:00:00Z');
const seen = (model: string, pricedBy: UnknownModel['pricedBy']): UnknownModel => ({
  model,
  pricedBy,
  firstSeenAt: new Date('2026-11-28T09:15:00Z'),
});

describe('pricing.unknown_model observations', () => {
  it('one notice per recorded model, saying what it is priced at and how to fix it', () => {
    const obs = unknownModelObservations(
      [seen('claude-haiku-9-preview', 'family_max'), seen('mystery-model-1', 'global_max')],
      PRICE_TABLE,
      NOW,
    );
    expect(obs.map((o) => [o.kind, o.scopeType, o.scopeId, o.period])).toEqual([
      ['pricing.unknown_model', 'model', 'claude-haiku-9-preview', ''],
      ['pricing.unknown_model', 'model', 'mystery-model-1', ''],
    ]);
    expect(obs[0]!.title).toBe('Model claude-haiku-9-preview is not in the price table');
    expect(obs[0]!.summary).toContain('the most expensive haiku rates');
    expect(obs[0]!.summary).toContain('`pricing` in the policy file');
    expect(obs[1]!.summary).toContain('the most expensive rates of any model');
  });

  it('a model given its price in the policy file is no longer observed (its notice resolves)', () => {
    const table = withPriceOverrides(PRICE_TABLE, { 'claude-haiku-9-preview': { input: '1', output: '5' } });
    const obs = unknownModelObservations(
      [seen('claude-haiku-9-preview', 'family_max'), seen('mystery-model-1', 'global_max')],
      table,
      NOW,
    );
    expect(obs.map((o) => o.scopeId)).toEqual(['mystery-model-1']);
  });

  it('usage reported without a model is named as such', () => {
    const [o] = unknownModelObservations([seen('', 'global_max')], PRICE_TABLE, NOW);
    expect(o!.title).toBe('Model (usage reported without a model) is not in the price table');
  });
});
