import { seededRandom } from '../random/hash.ts';

/**
 * The `large` scenario: 5,000 keys in 100 workspaces, generated from a seed because nobody wants to read 5,000
 * YAML entries. Shaped like a big organization: about a third of the keys idle (forgotten CI keys, old
 * prototypes), the rest log-uniform in volume (200 to 100k tokens a minute) and in burstiness (active in 2% to
 * 100% of minutes), a few inactive, archived or expiring, creators who left, and three runaways and a migration
 * shortly after start. It exists for benchmarks: one 1m usage report over 15 minutes, grouped by key and model,
 * carries roughly 15k rows.
 */

const MODEL_MIXES: Array<Record<string, number>> = [
  { 'claude-sonnet-4-5': 1 },
  { 'claude-haiku-4-5': 1 },
  { 'claude-sonnet-4-5': 0.7, 'claude-haiku-4-5': 0.3 },
  { 'claude-opus-4-5': 0.6, 'claude-sonnet-4-5': 0.4 },
  { 'claude-sonnet-4-6': 1 },
  { 'claude-3-5-haiku': 1 },
];

export function buildLargeScenario(): Record<string, unknown> {
  const random = seededRandom(5000);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const logUniform = (low: number, high: number) => low * (high / low) ** random();
  const round = (x: number, places: number) => Math.round(x * 10 ** places) / 10 ** places;

  const workspaces = Array.from({ length: 100 }, (_, i) => ({
    name: `team-${String(i + 1).padStart(3, '0')}`,
    age_days: Math.floor(30 + random() * 700),
  }));
  const users = Array.from({ length: 400 }, (_, i) => {
    const memberOf: Record<string, string> = {};
    for (let j = 0; j < 1 + Math.floor(random() * 3); j++) memberOf[pick(workspaces).name] = 'workspace_developer';
    return {
      name: `User ${i + 1}`,
      email: `user${String(i + 1).padStart(3, '0')}@large.example`,
      role: i < 8 ? 'admin' : pick(['developer', 'developer', 'user', 'billing']),
      age_days: Math.floor(random() * 900),
      workspaces: memberOf,
    };
  });
  const keys = Array.from({ length: 5000 }, (_, i) => {
    const workspace = workspaces[i % workspaces.length]!.name;
    const roll = random();
    const idle = random() < 0.35;
    const createdBy = random() < 0.05 ? null : pick(users).email;
    return {
      name: `${workspace}-svc-${String(Math.floor(i / workspaces.length) + 1).padStart(2, '0')}`,
      workspace,
      created_by: createdBy,
      // who is behind the key, from its index and creator only: another draw of `random` would move every figure
      // after it; half on service accounts, a fifth on their creator, the rest legacy workspace keys
      principal: i % 10 < 5 ? `svac_01Large${String(i % 50).padStart(2, '0')}` : i % 10 < 7 ? createdBy : null,
      age_days: round(random() * 400, 2),
      status: roll < 0.03 ? 'inactive' : roll < 0.04 ? 'archived' : 'active',
      expires_in_days: random() < 0.1 ? round(-30 + random() * 210, 2) : null,
      traffic: idle
        ? { tokens_per_minute: 0 }
        : {
            tokens_per_minute: Math.round(logUniform(200, 100_000)),
            models: pick(MODEL_MIXES),
            active_share: round(logUniform(0.02, 1), 3),
            batch_share: random() < 0.1 ? 0.5 : 0,
            peak_hour_utc: Math.floor(12 + random() * 9),
          },
    };
  });
  const userRemovals = Array.from({ length: 20 }, (_, i) => ({
    type: 'user_removed',
    user: users[20 + i * 17]!.email,
    at_minutes: -Math.floor(1 + random() * 120) * 1440,
  }));
  const busy = keys.filter((k) => k.status === 'active' && k.expires_in_days === null && k.traffic.tokens_per_minute);
  return {
    name: 'large',
    description: '5,000 keys in 100 workspaces, for benchmarks',
    seed: 5000,
    organization: { name: 'Large Org' },
    admin_keys: ['sk-ant-admin01-keywarden-large-not-a-secret-0001'],
    freshness_delay_minutes: 5,
    workspaces,
    users,
    keys,
    events: [
      { type: 'runaway', key: busy[10]!.name, at_minutes: 2, factor: 12, duration_minutes: 45 },
      { type: 'runaway', key: busy[500]!.name, at_minutes: 30, factor: 30, duration_minutes: 20 },
      { type: 'runaway', key: busy[1500]!.name, at_minutes: 90, factor: 8, duration_minutes: 120 },
      { type: 'migration', from: busy[20]!.name, to: busy[21]!.name, at_minutes: 0, ramp_minutes: 180 },
      ...userRemovals,
    ],
  };
}
