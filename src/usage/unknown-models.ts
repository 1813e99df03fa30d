import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import type { Context } from '../context.ts';
import { unknownModelObservations } from './core/unknown-models.ts';

/**
 * Raises the notices from `pricing_unknown_models` (written in the same transaction as the usage it priced), not
 * from what one poll saw: a poll killed between its commit and this call leaves the model recorded, and the next
 * poll raises its notice. The lifecycle makes it once per model (a one-shot kind never repeats).
 */
export async function raiseUnknownModelAlerts(
  ctx: Pick<Context, 'repos' | 'config' | 'clock'>,
): Promise<RaiseAlertsResult> {
  const now = ctx.clock.now();
  const recorded = await ctx.repos.usage.unknownModels();
  return raiseAlerts(
    ctx,
    { kinds: ['pricing.unknown_model'], observations: unknownModelObservations(recorded, ctx.config.prices, now) },
    ctx.config.policy.routes,
    now,
  );
}
