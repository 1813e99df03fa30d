import { DAY_MS, MINUTE_MS } from '../time.ts';
import { PRICE_TABLE, type PriceTable, withPriceOverrides } from '../usage/core/prices.ts';
import { base62From, hashString } from './random/hash.ts';
import { type RateLimitGroup, resolveTraffic, type Scenario } from './scenario.ts';
import { SimSpendLimits } from './spend-limits.ts';
import { compileTraffic, type KeyLife, type SettableStatus, statusAt, type TrafficKey } from './traffic.ts';

/**
 * The simulated organization: the scenario turned into entities with absolute times, in the order the lists
 * return them (by creation time). Everything time-dependent is asked with an explicit `now`, so the same org
 * answers a fixed clock and the system clock alike. The only changes after start are the ones the API makes
 * (key name and status), recorded with their time.
 */

export interface SimWorkspace {
  index: number;
  id: string;
  name: string;
  displayColor: string;
  createdAt: number;
  archivedAt: number | null;
  rateLimits: RateLimitGroup[];
}

export interface SimUser {
  index: number;
  id: string;
  email: string;
  name: string;
  role: string;
  addedAt: number;
  removedAt: number | null;
  /** Workspace index → workspace role, as listed in the scenario. */
  workspaceRoles: Map<number, string>;
}

export interface SimKey extends TrafficKey {
  index: number;
  id: string;
  name: string;
  workspace: SimWorkspace | null;
  createdBy: SimUser | null;
  /** A service account creator (`svac_…`), when the scenario names one instead of a user. */
  createdByServiceAccount: string | null;
  /** Who the key acts as (2026 shapes): a user, a service account id, or nobody. */
  principal: { user: SimUser } | { serviceAccountId: string } | null;
  scope: 'workspace' | 'organization';
  partialKeyHint: string;
}

/** A federated workload: traffic on short-lived tokens, without an API key (scenario `federated`). */
export interface SimFederated extends TrafficKey {
  index: number;
  subject: string;
  workspace: SimWorkspace | null;
}

export interface SimInvite {
  id: string;
  email: string;
  role: string;
  status: 'pending' | 'accepted' | 'expired';
  invitedAt: number;
  expiresAt: number;
  acceptedAt: number | null;
}

export type KeyStatus = SettableStatus | 'expired';

/** `wrkspc_01` + 22 base62 characters, stable for a (seed, kind, name). */
function makeId(prefix: string, seed: number, name: string): string {
  return `${prefix}_01${base62From(`${seed}:${prefix}:${name}`, 22)}`;
}

/** A version-4-shaped UUID from the seed, for the organization. */
function makeUuid(seed: number, name: string): string {
  let hex = '';
  for (let i = 0; hex.length < 32; i++) hex += hashString(`${seed}:org:${name}:${i}`).toString(16).padStart(8, '0');
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export class SimulatedOrg {
  readonly scenario: Scenario;
  /** The scenario start (ms), on a minute boundary; offsets and ages count from here. */
  readonly startMs: number;
  readonly id: string;
  readonly name: string;
  /** In list order: by creation time. */
  readonly workspaces: SimWorkspace[];
  readonly users: SimUser[];
  readonly keys: SimKey[];
  readonly federated: SimFederated[];
  readonly invites: SimInvite[];
  /** The Default Workspace: never in a plain workspace list, null on classic keys, a real id in 2026 shapes. */
  readonly defaultWorkspace: SimWorkspace;
  /** Every model any key uses; slots refer to models by index here. */
  readonly models: string[] = [];
  readonly priceTable: PriceTable;
  /** The Spend Limits API's state over time. */
  readonly spendLimits: SimSpendLimits;
  readonly #byId = new Map<string, SimWorkspace | SimUser | SimKey>();

  constructor(scenario: Scenario, startAt: Date) {
    this.scenario = scenario;
    this.startMs = Math.floor(startAt.getTime() / MINUTE_MS) * MINUTE_MS;
    const start = this.startMs;
    const seed = scenario.seed;
    this.id = scenario.organization.id ?? makeUuid(seed, scenario.organization.name);
    this.name = scenario.organization.name;
    this.priceTable = withPriceOverrides(PRICE_TABLE, scenario.prices);
    const at = (minutes: number) => start + minutes * MINUTE_MS;

    const byCreation = <T extends { createdAt: number }>(list: T[]) =>
      list.map((item, i) => ({ item, i })).sort((a, b) => a.item.createdAt - b.item.createdAt || a.i - b.i);

    this.workspaces = byCreation(
      scenario.workspaces.map((w) => ({
        index: 0,
        id: w.id ?? makeId('wrkspc', seed, w.name),
        name: w.name,
        displayColor: w.display_color,
        createdAt: start - w.age_days * DAY_MS,
        archivedAt: w.archived_days_ago === null ? null : start - w.archived_days_ago * DAY_MS,
        rateLimits: w.rate_limits,
      })),
    ).map(({ item }, index) => ({ ...item, index }));
    const oldest = Math.min(start, ...this.workspaces.map((w) => w.createdAt));
    this.defaultWorkspace = {
      index: -1,
      id: scenario.default_workspace_id ?? makeId('wrkspc', seed, '(default)'),
      // Not "Default Workspace": keywarden must show its own label whatever the API calls it.
      name: 'Default',
      displayColor: '#6c5bb9',
      createdAt: oldest,
      archivedAt: null,
      rateLimits: [],
    };
    const workspaceRef = new Map<string, SimWorkspace>();
    for (const w of this.workspaces) workspaceRef.set(w.name, w).set(w.id, w);
    this.spendLimits = new SimSpendLimits(scenario.spend_limits, {
      orgId: this.id,
      orgCreatedAt: oldest,
      startMs: start,
      resolve: (ref) => (ref === 'default' ? this.defaultWorkspace : (workspaceRef.get(ref) ?? null)),
    });

    const removals = new Map<string, number>();
    for (const e of scenario.events) if (e.type === 'user_removed') removals.set(e.user, at(e.at_minutes));
    this.users = byCreation(
      scenario.users.map((u) => {
        const id = u.id ?? makeId('user', seed, u.email);
        return {
          index: 0,
          id,
          email: u.email,
          name: u.name,
          role: u.role,
          createdAt: start - u.age_days * DAY_MS,
          removedAt: removals.get(u.email) ?? removals.get(id) ?? null,
          workspaceRoles: new Map(
            Object.entries(u.workspaces).map(([ws, role]) => [workspaceRef.get(ws)!.index, role]),
          ),
        };
      }),
    ).map(({ item: { createdAt, ...u } }, index) => ({ ...u, addedAt: createdAt, index }));
    const userRef = new Map<string, SimUser>();
    for (const u of this.users) userRef.set(u.email, u).set(u.id, u);

    const createdEvents = new Map<string, number>();
    for (const e of scenario.events) if (e.type === 'key_created') createdEvents.set(e.key, at(e.at_minutes));
    const modelIndex = (model: string) => {
      const i = this.models.indexOf(model);
      return i >= 0 ? i : this.models.push(model) - 1;
    };
    this.keys = byCreation(
      scenario.keys.map((k) => {
        const id = k.id ?? makeId('apikey', seed, k.name);
        const workspace = k.workspace === null ? null : workspaceRef.get(k.workspace)!;
        const life: KeyLife = {
          createdAt: createdEvents.get(k.name) ?? createdEvents.get(id) ?? start - k.age_days * DAY_MS,
          expiresAt: k.expires_in_days === null ? null : start + k.expires_in_days * DAY_MS,
          archivedAt: workspace?.archivedAt ?? null,
          statusChanges: [{ at: Number.NEGATIVE_INFINITY, status: k.status }],
        };
        const keySeed = hashString(`${seed}:${id}:${k.traffic?.seed ?? 0}`);
        return {
          index: 0,
          id,
          name: k.name,
          workspace,
          createdBy: k.created_by === null ? null : (userRef.get(k.created_by) ?? null),
          createdByServiceAccount: k.created_by?.startsWith('svac_') ? k.created_by : null,
          principal:
            k.principal === null
              ? null
              : k.principal.startsWith('svac_')
                ? { serviceAccountId: k.principal }
                : { user: userRef.get(k.principal)! },
          scope: k.scope,
          // The API's hint: the first 16 characters of the secret, "...", the last 4. There is no secret here.
          partialKeyHint: `sk-ant-api03-${base62From(`${id}:head`, 3)}...${base62From(`${id}:tail`, 4)}`,
          createdAt: life.createdAt,
          life,
          traffic: compileTraffic(resolveTraffic(scenario, k), keySeed, modelIndex),
        };
      }),
    ).map(({ item: { createdAt: _, ...k } }, index) => ({ ...k, index }));
    this.federated = scenario.federated.map((f, index) => {
      const workspace = f.workspace === null ? null : workspaceRef.get(f.workspace)!;
      const life: KeyLife = {
        createdAt: start - f.age_days * DAY_MS,
        expiresAt: null,
        archivedAt: workspace?.archivedAt ?? null,
        statusChanges: [{ at: Number.NEGATIVE_INFINITY, status: 'active' }],
      };
      const flowSeed = hashString(`${seed}:federated:${f.subject}:${f.traffic?.seed ?? 0}`);
      return {
        index,
        subject: f.subject,
        workspace,
        life,
        traffic: compileTraffic(resolveTraffic(scenario, f), flowSeed, modelIndex),
      };
    });
    const keyRef = new Map<string, SimKey>();
    for (const k of this.keys) keyRef.set(k.name, k).set(k.id, k);

    this.invites = scenario.invites.map((inv) => {
      const invitedAt = start - inv.invited_days_ago * DAY_MS;
      return {
        id: makeId('invite', seed, inv.email),
        email: inv.email,
        role: inv.role,
        status: inv.status,
        invitedAt,
        expiresAt: invitedAt + 21 * DAY_MS,
        acceptedAt: inv.status === 'accepted' ? invitedAt + DAY_MS : null,
      };
    });

    for (const x of [this.defaultWorkspace, ...this.workspaces, ...this.users, ...this.keys]) this.#byId.set(x.id, x);

    const startMinute = start / MINUTE_MS;
    for (const e of scenario.events) {
      if (e.type === 'runaway') {
        const key = keyRef.get(e.key)!;
        const fromMinute = startMinute + e.at_minutes;
        key.traffic.runaways.push({
          fromMinute,
          toMinute: fromMinute + e.duration_minutes,
          factor: e.factor,
          rampMinutes: e.ramp_minutes,
        });
      } else if (e.type === 'key_status') {
        this.#recordStatus(keyRef.get(e.key)!, e.status, at(e.at_minutes));
      } else if (e.type === 'migration') {
        const from = keyRef.get(e.from)!;
        const to = keyRef.get(e.to)!;
        const migration = {
          from: from.index,
          to: to.index,
          startMinute: startMinute + e.at_minutes,
          rampMinutes: e.ramp_minutes,
          share: e.share,
        };
        from.traffic.outgoing.push(migration);
        to.traffic.incoming.push(migration);
      }
    }
  }

  workspace(id: string): SimWorkspace | null {
    const x = this.#byId.get(id);
    return x && 'displayColor' in x ? x : null;
  }

  user(id: string): SimUser | null {
    const x = this.#byId.get(id);
    return x && 'email' in x ? x : null;
  }

  key(id: string): SimKey | null {
    const x = this.#byId.get(id);
    return x && 'life' in x ? x : null;
  }

  /** Exists at `now` (created, and for users not removed). */
  workspaceExists(w: SimWorkspace, now: number): boolean {
    return w.createdAt <= now;
  }

  userExists(u: SimUser, now: number): boolean {
    return u.addedAt <= now && (u.removedAt === null || u.removedAt > now);
  }

  keyExists(k: SimKey, now: number): boolean {
    return k.life.createdAt <= now;
  }

  keyStatus(k: SimKey, now: number): KeyStatus {
    return statusAt(k.life, now);
  }

  /** A status change made through the API at `at`. Traffic stops (or resumes) from the next minute that starts. */
  setKeyStatus(k: SimKey, status: SettableStatus, at: number): void {
    this.#recordStatus(k, status, at);
  }

  #recordStatus(k: SimKey, status: SettableStatus, at: number): void {
    const changes = k.life.statusChanges;
    let i = changes.length;
    while (i > 0 && changes[i - 1]!.at > at) i--;
    changes.splice(i, 0, { at, status });
  }

  /**
   * The members of a workspace at `now`: the users the scenario lists in it, and every organization admin as
   * workspace_admin (admins are members of every workspace automatically).
   */
  members(w: SimWorkspace, now: number): Array<{ user: SimUser; role: string }> {
    const out: Array<{ user: SimUser; role: string }> = [];
    for (const u of this.users) {
      if (!this.userExists(u, now)) continue;
      const role = u.role === 'admin' ? 'workspace_admin' : u.workspaceRoles.get(w.index);
      if (role !== undefined) out.push({ user: u, role });
    }
    return out;
  }
}
