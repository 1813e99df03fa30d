import type { AlertObservation } from '../alerts/core/lifecycle.ts';
import { AdminApiError, AdminKeyRejectedError } from '../anthropic/errors.ts';
import type { SpendLimit } from '../anthropic/spend-limits.ts';
import type { Context } from '../context.ts';
import { DEFAULT_WORKSPACE_SCOPE_ID } from '../default-workspace.ts';
import { limitChangeObservations, type SeenLimit } from './core/limit-changes.ts';
import { type ApiLimitSet, apiLimitSet } from './core/limits.ts';

/** What one run knows of the Spend Limits API. */
export interface LimitsRead {
  /** The API's limits that apply (null: the policy file's alone). */
  api: ApiLimitSet | null;
  /** Limits created, changed or deleted since the last read (`spend.limit_changed`); null: not read this run. */
  changes: AlertObservation[] | null;
  /** Stores this read as the one to compare the next with; after the changes are raised, so none is lost. */
  save: () => Promise<void>;
}

type LimitsContext = Pick<Context, 'repos' | 'admin' | 'log' | 'config' | 'clock'>;

const nothingToSave = async () => {};

/**
 * The limits from the Spend Limits API (`spend.limits_from_api`), where the organization has it. `fresh: false`
 * (the check after each poll) uses the limits read last rather than asking the API every minute.
 *
 * A refusal (403: no early access; 400: an Enterprise organization; 404) means the policy file's limits alone: said
 * once in the log when it starts (spend_limits_source remembers it, /metrics shows it), never as an alert. A failure
 * that may pass (timeout, 5xx) keeps the limits read last. A refused admin key is not swallowed: keywarden.blind
 * says it.
 */
export async function readSpendLimits(ctx: LimitsContext, opts: { fresh: boolean }): Promise<LimitsRead> {
  const now = ctx.clock.now();
  if (!ctx.config.policy.spend.limits_from_api) {
    await usePolicy(ctx, 'spend.limits_from_api is false in the policy file', now);
    return { api: null, changes: null, save: nothingToSave };
  }
  const stored = await ctx.repos.spend.seenLimits();
  const lastRead = stored.source?.source === 'api' ? apiLimitSet(stored.limits) : null;
  if (!opts.fresh) return { api: lastRead, changes: null, save: nothingToSave };

  let limits: SpendLimit[];
  try {
    limits = await ctx.admin.listSpendLimits().toArray();
  } catch (err) {
    if (!(err instanceof AdminApiError) || err instanceof AdminKeyRejectedError) throw err;
    if (err.status === 400 || err.status === 403 || err.status === 404) {
      const reason = `the Spend Limits API answered ${err.status} ${err.errorCode ?? err.errorType}`;
      await usePolicy(ctx, reason, now);
      return { api: null, changes: null, save: nothingToSave };
    }
    ctx.log.warn(
      { err, endpoint: err.endpoint, limitsReadAt: stored.source?.readAt ?? null },
      'could not read the Spend Limits API; spend is judged against the limits read last',
    );
    return { api: lastRead, changes: null, save: nothingToSave };
  }

  const seen = await asSeen(ctx, limits);
  if (stored.source?.source !== 'api') {
    ctx.log.info({ limits: seen.length }, 'spend limits come from the Spend Limits API (and the policy file)');
  }
  // the first read is where keywarden starts counting, not a change made in the Console
  const changes =
    stored.source?.readAt == null
      ? []
      : limitChangeObservations(stored.limits, seen, await ctx.repos.keys.workspaceNames());
  return { api: apiLimitSet(seen), changes, save: () => ctx.repos.spend.saveLimitRead(seen, now) };
}

async function usePolicy(ctx: LimitsContext, reason: string, now: Date): Promise<void> {
  const before = (await ctx.repos.spend.seenLimits()).source;
  await ctx.repos.spend.usePolicyLimits(reason, now);
  if (before?.source !== 'policy' || before.reason !== reason) {
    ctx.log.warn({ reason }, 'spend limits come from the policy file alone');
  }
}

/**
 * The API's limits as keywarden keeps them: the Default Workspace by its scope id `default` (the API names it by its
 * real id, which keywarden's usage rows never carry).
 */
async function asSeen(ctx: LimitsContext, limits: readonly SpendLimit[]): Promise<SeenLimit[]> {
  const known = await ctx.repos.keys.workspaceNames();
  const unknownWorkspace = limits.some((l) => l.scope.type === 'workspace' && !known.has(l.scope.workspaceId));
  let defaultId: string | null = null;
  if (unknownWorkspace) {
    try {
      defaultId = await ctx.admin.defaultWorkspaceId();
    } catch (err) {
      ctx.log.warn({ err }, 'could not learn the Default Workspace id; its spend limit is shown by id');
    }
  }
  return limits.map((l) => {
    const workspaceId = l.scope.type === 'workspace' ? l.scope.workspaceId : null;
    return {
      id: l.id,
      scopeType: l.scope.type === 'other' ? l.scope.scopeType : l.scope.type,
      workspaceId: workspaceId !== null && workspaceId === defaultId ? DEFAULT_WORKSPACE_SCOPE_ID : workspaceId,
      period: l.period,
      amountMinor: l.amountMinor,
      currency: l.currency,
      isEnabled: l.isEnabled,
      updatedAt: l.updatedAt,
    };
  });
}
