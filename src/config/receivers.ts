import { LOOPBACK_HOSTS, readSecret } from './env.ts';
import type { Policy, ReceiverKind, ReceiversPolicy } from './policy.ts';
import { RECEIVER_KINDS } from './policy.ts';
import { maskUrl, Secret } from './secret.ts';

/**
 * The policy's named receivers with their secrets read from the environment. The policy file names the variable
 * (`routing_key_env`, `secret_env`, `url_env`); the value comes from that variable or from the file its `*_FILE`
 * names, like every other secret, so a policy file can be committed and shared.
 */
export interface Receivers {
  pagerduty: Readonly<Record<string, { routingKey: Secret }>>;
  /** `secrets`: one, or several while a secret is being rotated (every delivery is signed with each). */
  webhook: Readonly<Record<string, { url: string; secrets: readonly Secret[] }>>;
  teams: Readonly<Record<string, { url: Secret }>>;
}

/** Standard Webhooks secrets: `whsec_` and the base64 of 24 to 64 random bytes. */
const WEBHOOK_SECRET = /^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/;

/**
 * Each route's and digest's receiver names that `receivers:` does not define, as problems naming the field and the
 * fix. Pure (no environment): part of parsing the policy.
 */
export function unknownReceiverReferences(policy: Policy): string[] {
  const problems: string[] = [];
  const check = (where: string, kind: ReceiverKind, names: readonly string[]) => {
    names.forEach((name, i) => {
      const known = Object.keys(policy.receivers[kind]);
      if (known.includes(name)) return;
      const fix =
        known.length > 0
          ? `receivers.${kind} has ${known.join(', ')}`
          : `define it under receivers.${kind} (see the README's section on ${kind})`;
      problems.push(`${where}.${kind}[${i}]: "${name}" is not a ${kind} receiver: ${fix}`);
    });
  };
  policy.routes.forEach((route, r) => {
    for (const kind of RECEIVER_KINDS) check(`routes[${r}]`, kind, route[kind]);
  });
  for (const [name, digest] of Object.entries(policy.digests)) {
    if (digest) check(`digests.${name}`, 'webhook', digest.webhook);
  }
  return problems;
}

interface ReceiverEnvOptions {
  allowInsecureHttp: boolean;
}

/**
 * Reads each receiver's secret from the environment. An unset variable, a webhook secret that is not `whsec_…` and a
 * URL that would send a secret in clear text are problems naming the field; the values are never quoted.
 */
export function resolveReceivers(
  policy: ReceiversPolicy,
  env: NodeJS.ProcessEnv,
  opts: ReceiverEnvOptions,
  problems: string[],
): Receivers {
  const variable = (field: string, name: string): Secret | null => {
    const found: string[] = [];
    const secret = readSecret(env, name, found);
    for (const p of found) problems.push(`${field}: ${p}`);
    if (secret === null && found.length === 0) {
      problems.push(`${field}: ${name} is not set: export ${name} (or ${name}_FILE naming a file that holds it)`);
    }
    return secret;
  };
  const out: { pagerduty: Receivers['pagerduty']; webhook: Receivers['webhook']; teams: Receivers['teams'] } = {
    pagerduty: {},
    webhook: {},
    teams: {},
  };
  for (const [name, r] of Object.entries(policy.pagerduty)) {
    const field = `receivers.pagerduty.${name}.routing_key_env`;
    const key = variable(field, r.routing_key_env);
    if (key === null) continue;
    // an integration key of the Events API v2 is 32 characters; anything else is a copy of the wrong key
    if (!/^[A-Za-z0-9]{32}$/.test(key.reveal())) {
      problems.push(
        `${field}: ${r.routing_key_env} (${key.hint}) is not an Events API v2 integration key (32 letters and digits): copy it from the service's Integrations tab in PagerDuty`,
      );
      continue;
    }
    out.pagerduty = { ...out.pagerduty, [name]: { routingKey: key } };
  }
  for (const [name, r] of Object.entries(policy.webhook)) {
    const field = `receivers.webhook.${name}`;
    if (!urlAllowed(`${field}.url`, r.url, opts, problems)) continue;
    const value = variable(`${field}.secret_env`, r.secret_env);
    if (value === null) continue;
    // during a rotation the variable holds the new and the old secret, separated by spaces: both sign
    const parts = value.reveal().trim().split(/\s+/);
    if (!parts.every((p) => WEBHOOK_SECRET.test(p))) {
      problems.push(
        `${field}.secret_env: ${r.secret_env} is not a Standard Webhooks secret (whsec_ and base64, e.g. from \`openssl rand -base64 32\` with whsec_ in front; two separated by a space while rotating)`,
      );
      continue;
    }
    out.webhook = { ...out.webhook, [name]: { url: r.url, secrets: parts.map((p) => new Secret(p)) } };
  }
  for (const [name, r] of Object.entries(policy.teams)) {
    const field = `receivers.teams.${name}.url_env`;
    const url = variable(field, r.url_env);
    if (url === null || !urlAllowed(field, url.reveal(), opts, problems, r.url_env)) continue;
    out.teams = { ...out.teams, [name]: { url } };
  }
  return out;
}

/**
 * https:// everywhere; plain http:// only to this machine (the stand-ins) or with KEYWARDEN_ALLOW_INSECURE_HTTP=1.
 * `variable`: the URL is itself a secret held there, so the message names the variable instead of quoting the URL.
 */
function urlAllowed(
  field: string,
  text: string,
  opts: ReceiverEnvOptions,
  problems: string[],
  variable?: string,
): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.push(`${field}: ${variable ?? 'the value'} is not a URL`);
    return false;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    problems.push(`${field}: must start with https:// (got ${url.protocol}//)`);
    return false;
  }
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.test(url.hostname) && !opts.allowInsecureHttp) {
    problems.push(
      `${field}: plain http:// to ${url.hostname} sends alerts in clear text: use https://, or set KEYWARDEN_ALLOW_INSECURE_HTTP=1 for a network you trust`,
    );
    return false;
  }
  return true;
}

/** What check-config prints of the receivers: each name, where it delivers (masked) and which variable it reads. */
export function describeReceivers(policy: ReceiversPolicy, receivers: Receivers): Record<string, unknown> {
  return {
    pagerduty: Object.fromEntries(
      Object.entries(policy.pagerduty).map(([name, r]) => [
        name,
        { routing_key_env: r.routing_key_env, routing_key: receivers.pagerduty[name]?.routingKey.hint ?? null },
      ]),
    ),
    webhook: Object.fromEntries(
      Object.entries(policy.webhook).map(([name, r]) => [
        name,
        {
          url: maskUrl(r.url),
          secret_env: r.secret_env,
          secrets: receivers.webhook[name]?.secrets.map((s) => s.hint) ?? [],
        },
      ]),
    ),
    teams: Object.fromEntries(
      Object.entries(policy.teams).map(([name, r]) => [
        name,
        { url_env: r.url_env, url: receivers.teams[name] ? originOnly(receivers.teams[name].url.reveal()) : null },
      ]),
    ),
  };
}

/** A Workflows URL is a credential from path to signature: only where it goes is shown. */
function originOnly(url: string): string {
  try {
    return `${new URL(url).origin}/****`;
  } catch {
    return '****';
  }
}
