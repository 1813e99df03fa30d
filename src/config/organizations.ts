import { readFileSync } from 'node:fs';
import { mergePriceOverrides, PRICE_TABLE, type PriceTable } from '../usage/core/prices.ts';
import { describeIssue } from './describe-issue.ts';
import { checkBaseUrl, type EnvConfig, type InsecureHttpUse, readSecret } from './env.ts';
import { type OrganizationEntry, OVERRIDABLE_SECTIONS, type Policy, policySchema } from './policy.ts';
import { type Receivers, resolveReceivers } from './receivers.ts';
import { Secret } from './secret.ts';

/**
 * One organization the deployment watches: its own policy (the file's sections with the entry's replacing theirs),
 * admin key, Admin API base URL and Postgres schema. A file with `organization:` alone gives one, `default`, whose
 * rows stay in `public` and whose key and base URL come from ANTHROPIC_ADMIN_KEY and ANTHROPIC_BASE_URL.
 */
export interface OrgConfig {
  readonly id: string;
  readonly name: string;
  /** The Postgres schema its rows live in: `kw_<id>`, or `public` (a single-organization file, or said so). */
  readonly schema: string;
  readonly policy: Policy;
  readonly prices: PriceTable;
  readonly receivers: Receivers;
  /** Null only for a single-organization file without ANTHROPIC_ADMIN_KEY (commands that call the API refuse). */
  readonly adminKey: Secret | null;
  readonly baseUrl: string;
}

/** The id of the one organization a file with `organization:` (or neither key) describes. */
export const DEFAULT_ORGANIZATION_ID = 'default';

/**
 * The schema to put alone on an organization's connections, or undefined to leave them as they are: the one
 * organization of a file with `organization:` reads what its connections always read (public, or whatever search_path
 * the deployment gave its role), so nothing changes for it.
 */
export function connectionSchema(org: Pick<OrgConfig, 'id' | 'schema'>): string | undefined {
  return org.id === DEFAULT_ORGANIZATION_ID ? undefined : org.schema;
}

/** The schema of an entry: `public` where it says so (an existing database's rows), else `kw_<id>`. */
function schemaOf(entry: Pick<OrganizationEntry, 'id' | 'database_schema'>): string {
  return entry.database_schema ?? `kw_${entry.id}`;
}

/**
 * An entry's policy: the file's sections, each section the entry names replacing the file's (not merged into it:
 * what an organization's `spend:` says is all of its spend section), and `organization` from the entry's name and
 * timezone. The file's own sections passed their checks, so what fails here is the entry's doing.
 */
function entryPolicy(
  raw: Record<string, unknown>,
  entry: OrganizationEntry,
  where: string,
  problems: string[],
  checks: (policy: Policy) => string[],
): Policy | null {
  const { organizations: _list, organization: _one, ...shared } = raw;
  const merged: Record<string, unknown> = { ...shared };
  for (const section of OVERRIDABLE_SECTIONS) {
    if (entry[section] !== undefined) merged[section] = entry[section];
  }
  merged.organization = { name: entry.name, timezone: entry.timezone };
  const found: string[] = [];
  const result = policySchema.safeParse(merged, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) found.push(describeIssue(issue));
  } else {
    found.push(...checks(result.data));
  }
  for (const p of found) problems.push(`${where}.${p}`);
  return result.success && found.length === 0 ? result.data : null;
}

/**
 * The entry's admin key: from the variable `admin_key_env` names (or its `_FILE`), or the file `admin_key_file`
 * names; exactly one. Problems name the entry's field, never the value.
 */
function entryAdminKey(entry: OrganizationEntry, where: string, env: NodeJS.ProcessEnv, problems: string[]) {
  const byEnv = entry.admin_key_env;
  const byFile = entry.admin_key_file;
  if ((byEnv === undefined) === (byFile === undefined)) {
    problems.push(
      `${where}: give exactly one of admin_key_env (the variable holding organization ${entry.id}'s admin key) or admin_key_file (a file holding it)`,
    );
    return null;
  }
  let key: Secret | null = null;
  let field: string;
  if (byEnv !== undefined) {
    field = `${where}.admin_key_env`;
    const found: string[] = [];
    key = readSecret(env, byEnv, found);
    for (const p of found) problems.push(`${field}: ${p}`);
    if (key === null && found.length === 0) {
      problems.push(`${field}: ${byEnv} is not set: export ${byEnv} (or ${byEnv}_FILE naming a file that holds it)`);
    }
  } else {
    field = `${where}.admin_key_file`;
    try {
      const value = readFileSync(byFile!, 'utf8').replace(/[\r\n]+$/, '');
      if (value) key = new Secret(value);
      else problems.push(`${field}: ${byFile} is empty`);
    } catch (err) {
      problems.push(`${field}: cannot read ${byFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (key && !key.reveal().startsWith('sk-ant-admin')) {
    problems.push(`${field}: ${key.hint} is not an admin key (they start with sk-ant-admin)`);
    return null;
  }
  return key;
}

/**
 * The organizations of a file with an `organizations:` list: each entry's policy, price table, receivers, admin
 * key, base URL and schema. Problems are pushed as `<source>: organizations[i]...`; ids and schemas are unique.
 */
export function resolveOrganizations(
  raw: Record<string, unknown>,
  entries: readonly OrganizationEntry[],
  checks: (policy: Policy) => string[],
  env: NodeJS.ProcessEnv,
  envConfig: EnvConfig,
  source: string,
  problems: string[],
): { organizations: OrgConfig[]; insecureHttp: InsecureHttpUse[] } {
  const organizations: OrgConfig[] = [];
  const insecureHttp: InsecureHttpUse[] = [];
  const found: string[] = [];
  const firstWith = { id: new Map<string, number>(), schema: new Map<string, number>() };
  entries.forEach((entry, i) => {
    const where = `organizations[${i}]`;
    const schema = schemaOf(entry);
    const sameId = firstWith.id.get(entry.id);
    // `default` keeps its connections' own search_path (connectionSchema): in a list it would read public beside
    // the entry that takes public over
    if (entry.id === DEFAULT_ORGANIZATION_ID) {
      found.push(
        `${where}.id: "${DEFAULT_ORGANIZATION_ID}" is the id of a file with organization: alone; give this organization another`,
      );
    }
    if (sameId !== undefined) {
      found.push(
        `${where}.id: "${entry.id}" is already organizations[${sameId}]'s id: each organization's id is its own`,
      );
    } else firstWith.id.set(entry.id, i);
    const sameSchema = firstWith.schema.get(schema);
    if (sameSchema !== undefined && sameId === undefined) {
      found.push(
        `${where}.database_schema: schema ${schema} is already organizations[${sameSchema}]'s: two organizations may not share a schema (only one entry takes over the rows in public)`,
      );
    } else firstWith.schema.set(schema, i);
    const policy = entryPolicy(raw, entry, where, found, checks);
    const adminKey = entryAdminKey(entry, where, env, found);
    const baseUrl = entry.base_url ?? envConfig.anthropicBaseUrl;
    if (entry.base_url !== undefined) {
      checkBaseUrl(`${where}.base_url`, entry.base_url, envConfig.allowInsecureHttp, found, insecureHttp);
    }
    if (!policy) return;
    const prices = mergePriceOverrides(PRICE_TABLE, policy.pricing, `${where}.pricing`);
    // sections the entry does not replace are the file's, whose problems are said once already
    if (entry.pricing !== undefined) found.push(...prices.problems);
    const receiverProblems: string[] = [];
    const receivers = resolveReceivers(
      policy.receivers,
      env,
      { allowInsecureHttp: envConfig.allowInsecureHttp },
      receiverProblems,
    );
    if (entry.receivers !== undefined) for (const p of receiverProblems) found.push(`${where}.${p}`);
    organizations.push({
      id: entry.id,
      name: entry.name,
      schema,
      policy,
      prices: prices.table,
      receivers,
      adminKey,
      baseUrl,
    });
  });
  for (const p of found) problems.push(`${source}: ${p}`);
  return { organizations, insecureHttp };
}
