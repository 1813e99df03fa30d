/**
 * The dated price table: what a million tokens of each kind cost, per model, from a date on. Shared by the
 * emulator's cost report and keywarden's own pricing of usage (the cost report has no per-key breakdown, so
 * per-key cost is priced from usage with this table). Source: the Anthropic pricing page as of 2026-04
 * (reference section 8). Prices change: add a dated entry rather than editing one, so past usage keeps its price.
 */

export type ModelFamily = 'opus' | 'sonnet' | 'haiku';

/**
 * USD per million tokens, as decimal strings. At most 6 decimal places, so every rate is a whole number of
 * picodollars per token and pricing stays exact.
 */
export interface TokenRates {
  input: string;
  cache_write_5m: string;
  cache_write_1h: string;
  cache_read: string;
  output: string;
}

export interface PriceEntry {
  /** The model id without a snapshot date: `claude-sonnet-4-5` also prices `claude-sonnet-4-5-20250929`. */
  model: string;
  /** Other ids of the same model (`claude-opus-4-0` for `claude-opus-4`). */
  aliases?: readonly string[];
  /** As the cost report's descriptions name the model. */
  display_name: string;
  family: ModelFamily | null;
  /**
   * First UTC day (YYYY-MM-DD) these rates apply. A model's first entry is dated from its first snapshot (or,
   * when its ids carry no date, from the price snapshot the table was taken from); usage dated before a model's
   * first entry is priced with that entry, since it can only come from a skewed clock.
   */
  effective_from: string;
  rates: TokenRates;
  /**
   * Rates for the whole request when its input exceeds 200k tokens (`context_window: "200k-1M"`), for the models
   * whose 1M context is a premium (Sonnet 4 and 4.5). Absent: long context costs the standard rates.
   */
  long_context?: TokenRates;
}

export interface PriceTable {
  entries: readonly PriceEntry[];
  /** USD per 1,000 server-side web search requests. */
  web_search_per_1k: string;
}

/** Cache writes cost 1.25× (5 minutes) or 2× (1 hour) the input rate, cache reads 0.1×: the pricing page's rule. */
function standardRates(input: string, output: string, cacheWrite5m: string, cacheWrite1h: string, cacheRead: string) {
  return { input, cache_write_5m: cacheWrite5m, cache_write_1h: cacheWrite1h, cache_read: cacheRead, output };
}

const OPUS_45 = standardRates('5', '25', '6.25', '10', '0.5');
const OPUS_4 = standardRates('15', '75', '18.75', '30', '1.5');
const SONNET = standardRates('3', '15', '3.75', '6', '0.3');
/** Sonnet 4 / 4.5 beyond 200k input tokens: $6 in, $22.50 out, cache multipliers on the $6. */
const SONNET_LONG = standardRates('6', '22.5', '7.5', '12', '0.6');
const HAIKU_45 = standardRates('1', '5', '1.25', '2', '0.1');
const HAIKU_35 = standardRates('0.8', '4', '1', '1.6', '0.08');
const HAIKU_3 = standardRates('0.25', '1.25', '0.3', '0.5', '0.03');

export const PRICE_TABLE: PriceTable = {
  web_search_per_1k: '10',
  entries: [
    {
      model: 'claude-opus-4-7',
      display_name: 'Claude Opus 4.7',
      family: 'opus',
      effective_from: '2026-04-01',
      rates: OPUS_45,
    },
    {
      model: 'claude-opus-4-6',
      display_name: 'Claude Opus 4.6',
      family: 'opus',
      effective_from: '2026-04-01',
      rates: OPUS_45,
    },
    {
      model: 'claude-opus-4-5',
      display_name: 'Claude Opus 4.5',
      family: 'opus',
      effective_from: '2025-11-01',
      rates: OPUS_45,
    },
    {
      model: 'claude-opus-4-1',
      display_name: 'Claude Opus 4.1',
      family: 'opus',
      effective_from: '2025-08-05',
      rates: OPUS_4,
    },
    {
      model: 'claude-opus-4',
      aliases: ['claude-opus-4-0'],
      display_name: 'Claude Opus 4',
      family: 'opus',
      effective_from: '2025-05-14',
      rates: OPUS_4,
    },
    {
      model: 'claude-3-opus',
      display_name: 'Claude Opus 3',
      family: 'opus',
      effective_from: '2024-02-29',
      rates: OPUS_4,
    },
    {
      model: 'claude-sonnet-4-6',
      display_name: 'Claude Sonnet 4.6',
      family: 'sonnet',
      effective_from: '2026-04-01',
      rates: SONNET,
    },
    {
      model: 'claude-sonnet-4-5',
      display_name: 'Claude Sonnet 4.5',
      family: 'sonnet',
      effective_from: '2025-09-29',
      rates: SONNET,
      long_context: SONNET_LONG,
    },
    {
      model: 'claude-sonnet-4',
      aliases: ['claude-sonnet-4-0'],
      display_name: 'Claude Sonnet 4',
      family: 'sonnet',
      effective_from: '2025-05-14',
      rates: SONNET,
      long_context: SONNET_LONG,
    },
    {
      model: 'claude-3-7-sonnet',
      display_name: 'Claude Sonnet 3.7',
      family: 'sonnet',
      effective_from: '2025-02-19',
      rates: SONNET,
    },
    {
      model: 'claude-haiku-4-5',
      display_name: 'Claude Haiku 4.5',
      family: 'haiku',
      effective_from: '2025-10-01',
      rates: HAIKU_45,
    },
    {
      model: 'claude-3-5-haiku',
      display_name: 'Claude Haiku 3.5',
      family: 'haiku',
      effective_from: '2024-10-22',
      rates: HAIKU_35,
    },
    {
      model: 'claude-3-haiku',
      display_name: 'Claude Haiku 3',
      family: 'haiku',
      effective_from: '2024-03-07',
      rates: HAIKU_3,
    },
  ],
};

/** What the policy file may say about a model's price (USD per million tokens). */
export interface PriceOverride {
  input?: string | number;
  output?: string | number;
  cache_read?: string | number;
  cache_write_5m?: string | number;
  cache_write_1h?: string | number;
}

const RATE_TEXT = /^\d+(\.\d{1,6})?$/;

/**
 * The table with overrides merged in. An override replaces the model's every dated entry with one that applies
 * from `effectiveFrom` on (all time by default): the override's word is final for that model. Fields it leaves out
 * keep the table's latest rates; for a model the table does not know, `input` and `output` are required and the
 * cache rates follow the standard multipliers of the input rate. Every problem is returned, each named
 * `<section>.<model>.<field>` as the file that holds the overrides spells it (`pricing` in the policy file).
 */
export function mergePriceOverrides(
  table: PriceTable,
  overrides: Readonly<Record<string, PriceOverride>>,
  section: string,
  effectiveFrom = '1970-01-01',
): { table: PriceTable; problems: string[] } {
  const problems: string[] = [];
  let entries = [...table.entries];
  // which override priced each model: a snapshot id or an alias beside its model id would silently replace it
  const pricedBy = new Map<string, string>();
  for (const [model, override] of Object.entries(overrides)) {
    const id = canonicalModelId(model);
    const existing = entries
      .filter((e) => e.model === id || e.aliases?.includes(id))
      .sort((a, b) => a.effective_from.localeCompare(b.effective_from));
    const latest = existing.at(-1);
    const priced = latest?.model ?? id;
    const where = (field?: string) => `${section}.${model}${field ? `.${field}` : ''}`;
    const earlier = pricedBy.get(priced);
    if (earlier !== undefined) {
      problems.push(`${where()}: prices the same model as ${section}.${earlier} (${priced}): keep one`);
      continue;
    }
    pricedBy.set(priced, model);
    const given = (field: keyof PriceOverride) => {
      const value = override[field];
      if (value === undefined) return undefined;
      const text = typeof value === 'number' ? String(value) : value.trim();
      if (RATE_TEXT.test(text)) return text;
      problems.push(
        `${where(field)}: "${value}" is not a price in USD per million tokens (a decimal with at most 6 places)`,
      );
      return null;
    };
    const input = given('input') ?? latest?.rates.input;
    const output = given('output') ?? latest?.rates.output;
    const cacheWrite5m = given('cache_write_5m');
    const cacheWrite1h = given('cache_write_1h');
    const cacheRead = given('cache_read');
    if (input === undefined) problems.push(`${where('input')}: required for a model the price table does not know`);
    if (output === undefined) problems.push(`${where('output')}: required for a model the price table does not know`);
    if (!input || !output || cacheWrite5m === null || cacheWrite1h === null || cacheRead === null) continue;
    const rates: TokenRates = {
      input,
      output,
      cache_write_5m: cacheWrite5m ?? latest?.rates.cache_write_5m ?? scaleRate(input, 5n, 4n),
      cache_write_1h: cacheWrite1h ?? latest?.rates.cache_write_1h ?? scaleRate(input, 2n, 1n),
      cache_read: cacheRead ?? latest?.rates.cache_read ?? scaleRate(input, 1n, 10n),
    };
    entries = entries.filter((e) => !existing.includes(e));
    entries.push({
      model: priced,
      ...(latest?.aliases ? { aliases: latest.aliases } : {}),
      display_name: latest?.display_name ?? id,
      family: latest?.family ?? familyOf(id),
      effective_from: effectiveFrom,
      rates,
      ...(latest?.long_context ? { long_context: latest.long_context } : {}),
    });
  }
  return { table: { ...table, entries }, problems };
}

/** Multiplies a decimal rate by a small exact factor (1.25, 2, 0.1) for the cache rates an override leaves out. */
function scaleRate(rate: string, numerator: bigint, denominator: bigint): string {
  const [whole, frac = ''] = rate.split('.');
  const micros = BigInt(whole!) * 1_000_000n + BigInt(frac.padEnd(6, '0'));
  const scaled = (micros * numerator) / denominator;
  const text = `${scaled / 1_000_000n}.${(scaled % 1_000_000n).toString().padStart(6, '0')}`;
  return text.replace(/\.?0+$/, '');
}

/** `mergePriceOverrides` for an emulator scenario's `prices`: throws naming every problem. */
export function withPriceOverrides(
  table: PriceTable,
  overrides: Readonly<Record<string, PriceOverride>>,
  effectiveFrom = '1970-01-01',
): PriceTable {
  const merged = mergePriceOverrides(table, overrides, 'prices', effectiveFrom);
  if (merged.problems.length > 0) throw new Error(merged.problems.join('; '));
  return merged.table;
}

/**
 * A model id without its snapshot suffix: `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`, also the Vertex
 * form `@20250929` and `-latest`. Only a date is stripped, so `claude-opus-4-8` stays unknown rather than being
 * mistaken for Opus 4.
 */
export function canonicalModelId(model: string): string {
  return model
    .trim()
    .toLowerCase()
    .replace(/(?:-\d{8}|@\d{8}|-latest)$/, '');
}

/** The family a model id names, for pricing a model the table does not know. */
export function familyOf(model: string): ModelFamily | null {
  const id = model.toLowerCase();
  if (id.includes('opus')) return 'opus';
  if (id.includes('sonnet')) return 'sonnet';
  if (id.includes('haiku')) return 'haiku';
  return null;
}
