import type { AlertObservation } from '../../alerts/core/lifecycle.ts';
import { familyOf, type PriceTable } from './prices.ts';
import { findPriceEntry } from './pricing.ts';

/**
 * `pricing.unknown_model`: one notice per model the price table lacks. Usage of such a model is priced at the most
 * expensive rates of its family (or of all models), so finance sees costs and projections that may be overstated
 * and should be told once, with the fix.
 */

export interface UnknownModel {
  model: string;
  pricedBy: 'family_max' | 'global_max';
  firstSeenAt: Date;
}

/**
 * The models recorded as unknown that the price table (with the policy's overrides) still lacks. Pure. A model
 * given a price since it was recorded is no longer observed, so its notice resolves (silently: it is one-shot).
 */
export function unknownModelObservations(
  recorded: readonly UnknownModel[],
  table: PriceTable,
  now: Date,
): AlertObservation[] {
  return recorded
    .filter((m) => m.model === '' || findPriceEntry(table, m.model, now) === null)
    .map((m) => {
      const name = m.model === '' ? '(usage reported without a model)' : m.model;
      const family = familyOf(m.model);
      const pricedAt =
        m.pricedBy === 'family_max' && family !== null
          ? `the most expensive ${family} rates`
          : 'the most expensive rates of any model';
      return {
        kind: 'pricing.unknown_model',
        severity: 'warning',
        scopeType: 'model',
        scopeId: m.model,
        workspaceId: null,
        period: '',
        title: `Model ${name} is not in the price table`,
        summary:
          `Usage of ${name} is priced at ${pricedAt}, so its cost, spend alerts and projections may be overstated. ` +
          'Give it its rates under `pricing` in the policy file (USD per million tokens) to price it exactly.',
        details: { model: m.model, pricedBy: m.pricedBy, firstSeenAt: m.firstSeenAt.toISOString() },
        fields: [
          { label: 'Model', value: name },
          { label: 'Priced at', value: pricedAt },
          { label: 'First seen', value: m.firstSeenAt.toISOString().slice(0, 16).replace('T', ' ') },
        ],
      };
    });
}
