import type { AlertObservation } from '../alerts/core/lifecycle.ts';
import { raiseAlerts } from '../alerts/store.ts';
import type { AdminKeyRejectedError } from '../anthropic/errors.ts';
import type { AdminKeyVerdict } from '../anthropic/transport.ts';
import { DEFAULT_REPEAT_EVERY_MS, type Route } from '../config/policy.ts';
import { CONSOLE_ADMIN_KEYS_URL } from '../console.ts';
import type { Context } from '../context.ts';
import type { AlertKind } from '../kinds.ts';
import { scrubSecrets } from '../log.ts';
import { routeAlert } from '../notify/routing.ts';

/**
 * `keywarden.blind`: the Admin API refuses the admin key, so no usage is polled, no inventory synced, no key
 * retired, and no spend or runaway alert can fire. The worker keeps running (the key may come back); this alert
 * is the one thing it can still say. It follows the client's key verdict: fired (and repeated per the route's
 * `repeat_every`) while the last answer about the key was a credential failure (a 401, or a 403 without an
 * `error_code`: a 403 with one, such as `api_key_requester_unconfirmed`, refuses one request, not the key),
 * resolved at the first 2xx after that.
 */

export const BLIND_KIND = 'keywarden.blind';

/**
 * The alert for a rejected admin key. Pure. Carries the key's hint at most (the error never holds the key).
 * `organization`: the organization's name, where the deployment watches several (each has its own key).
 */
export function blindObservation(
  rejection: AdminKeyRejectedError,
  organization: string | null = null,
): AlertObservation {
  const answer = `${rejection.status} ${rejection.errorType}`;
  return {
    kind: BLIND_KIND,
    severity: 'critical',
    // one admin key per organization, so one blind alert per organization (each in its own schema)
    scopeType: 'organization',
    scopeId: '',
    workspaceId: null,
    period: '',
    title:
      organization === null
        ? 'keywarden is blind: the Admin API rejects the admin key'
        : `keywarden is blind to ${organization}: the Admin API rejects its admin key`,
    summary: scrubSecrets(
      `${rejection.message}.\n` +
        // the client's message names ANTHROPIC_ADMIN_KEY; an organization of a list reads its key elsewhere
        (organization === null
          ? ''
          : `${organization}'s key is the one its entry under organizations: names (admin_key_env or admin_key_file).\n`) +
        `Until a valid key is set, keywarden polls no usage${organization === null ? '' : ` of ${organization}`}, syncs no keys, retires no key and ` +
        'cannot raise spend or runaway alerts. It keeps trying and says so here when the key works again.',
    ),
    fields: [
      { label: 'Admin key', value: rejection.keyHint },
      { label: 'Answer', value: answer },
      { label: 'Endpoint', value: rejection.endpoint },
      ...(organization === null ? [] : [{ label: 'Organization', value: organization }]),
      ...(rejection.requestId ? [{ label: 'Request id', value: rejection.requestId }] : []),
      ...(rejection.workspaceId ? [{ label: 'Workspace id', value: rejection.workspaceId }] : []),
    ],
    links: [{ label: 'Admin keys in the Console', url: CONSOLE_ADMIN_KEYS_URL }],
    details: {
      status: rejection.status,
      errorType: rejection.errorType,
      endpoint: rejection.endpoint,
      requestId: rejection.requestId,
      workspaceId: rejection.workspaceId,
      keyHint: rejection.keyHint,
    },
  };
}

/**
 * The routes the blind alert is raised with. A policy route that matches `keywarden.blind` wins as for any kind.
 * Without one, the alert goes to every Slack channel and address the routes name: a blind keywarden silences
 * every other alert, so everyone who expects alerts from it must hear that it stopped. No routes: nowhere. `kind`:
 * the same for another alert that means keywarden stopped watching (keywarden.job_failing).
 */
export function blindRoutes(routes: readonly Route[], kind: AlertKind = BLIND_KIND): readonly Route[] {
  const probe = { kind, severity: 'critical' as const, workspaceId: null, workspaceName: null };
  if (routeAlert({ ...probe, keyOwnerEmail: null }, routes).targets.length > 0) return routes;
  const slack = [...new Set(routes.flatMap((r) => r.slack))];
  const email = [...new Set(routes.flatMap((r) => r.email).filter((e) => e !== 'key_owner'))];
  const pagerduty = [...new Set(routes.flatMap((r) => r.pagerduty))];
  const webhook = [...new Set(routes.flatMap((r) => r.webhook))];
  const teams = [...new Set(routes.flatMap((r) => r.teams))];
  if (slack.length + email.length + pagerduty.length + webhook.length + teams.length === 0) return routes;
  const receivers = { pagerduty, webhook, teams };
  return [{ match: { kind }, slack, email, ...receivers, repeat_every: DEFAULT_REPEAT_EVERY_MS, continue: false }];
}

/** The organization's name for messages, where the deployment watches several; null where it watches one. */
export function organizationInMessages(ctx: Pick<Context, 'config'>): string | null {
  const { organization, organizations } = ctx.config;
  return organizations.length > 1 && organization ? organization.name : null;
}

interface BlindWatch {
  /** Compares the client's key verdict with what was last raised, and raises or resolves. Never throws. */
  check(): Promise<void>;
}

/**
 * Called by the worker after every job. A rejection is raised every time it is seen (the lifecycle only notifies
 * on the first and on each `repeat_every`); acceptance resolves once, the first time it is seen after start or
 * after a rejection (a blind alert left by an earlier process is resolved by this one's first good answer).
 * Checks run one at a time, so their writes follow the order of the verdicts.
 */
export function watchAdminKey(
  ctx: Pick<Context, 'repos' | 'admin' | 'clock' | 'log' | 'config'>,
  onNotifications: () => Promise<unknown>,
): BlindWatch {
  let raised: AdminKeyVerdict['state'] = 'unknown';
  let queue: Promise<void> = Promise.resolve();
  const update = async () => {
    const verdict = ctx.admin.keyVerdict;
    if (verdict.state === 'unknown' || (verdict.state === 'accepted' && raised === 'accepted')) return;
    const observations =
      verdict.state === 'rejected' ? [blindObservation(verdict.rejection, organizationInMessages(ctx))] : [];
    const result = await raiseAlerts(
      ctx,
      { kinds: [BLIND_KIND], observations },
      blindRoutes(ctx.config.policy.routes),
      ctx.clock.now(),
    );
    const changed = raised !== verdict.state;
    raised = verdict.state;
    if (verdict.state === 'rejected') {
      // said when it starts and at each repeat, not after every job while blind
      if (changed || result.notifications > 0) {
        ctx.log.error(
          { err: verdict.rejection, alert: BLIND_KIND },
          'the Admin API rejects the admin key: keywarden is blind',
        );
      }
    } else if (result.resolved > 0) {
      ctx.log.info({ alert: BLIND_KIND }, 'the Admin API accepts the admin key again');
    }
    if (result.notifications > 0) await onNotifications();
  };
  return {
    check() {
      queue = queue.then(update).catch((err: unknown) => {
        // Postgres down, say: the next job's check tries again.
        ctx.log.warn({ err, alert: BLIND_KIND }, 'could not record the admin key state');
      });
      return queue;
    },
  };
}
