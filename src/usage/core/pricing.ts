import type { Pico } from '../../money.ts';
import { canonicalModelId, familyOf, type PriceEntry, type PriceTable, type TokenRates } from './prices.ts';

/**
 * Pricing of usage rows with the dated price table. Exact: rates are whole picodollars per token (a rate in USD per
 * million tokens with at most 6 decimals, × 10^6), so a cost is tokens × rate in bigint. Batch halves the token
 * cost; with the table's rates (all even picodollar amounts) that is exact too, and a rate from an override with an
 * odd picodollar amount rounds the half picodollar up.
 */

/** A count as the API (number), Postgres (string from a bigint column) or a sum (bigint) carries it. */
export type TokenCount = number | bigint | string;

/** One usage row, flat as keywarden stores it. `model: null` is usage reported without a model. */
export interface UsageToPrice {
  model: string | null;
  service_tier?: string | null;
  context_window?: string | null;
  uncached_input_tokens: TokenCount;
  cache_read_input_tokens: TokenCount;
  cache_creation_5m_input_tokens: TokenCount;
  cache_creation_1h_input_tokens: TokenCount;
  output_tokens: TokenCount;
  web_search_requests?: TokenCount;
}

/**
 * How a row was priced. An unknown model is priced at the most expensive rates of its family, or of all models
 * when the id names no family: keywarden's policy is to over- rather than under-estimate, and to say so
 * (`pricing.unknown_model`).
 */
export type PricedBy = 'table' | 'family_max' | 'global_max';

export interface CostParts {
  uncached_input: Pico;
  cache_read: Pico;
  cache_write_5m: Pico;
  cache_write_1h: Pico;
  output: Pico;
  web_search: Pico;
}

export interface PricedUsage {
  cost: Pico;
  pricedBy: PricedBy;
  /** The table entry's model id when priced from the table; null for family or global maxima. */
  priceModel: string | null;
  parts: CostParts;
}

/** Picodollars per token, per token kind. */
interface PicoRates {
  input: bigint;
  cache_write_5m: bigint;
  cache_write_1h: bigint;
  cache_read: bigint;
  output: bigint;
}

interface CompiledEntry {
  entry: PriceEntry;
  /** effective_from as epoch ms of the UTC day. */
  from: number;
  rates: PicoRates;
  longContext: PicoRates | null;
}

interface CompiledTable {
  /** Per id (canonical model and aliases), entries sorted by effective_from. */
  byId: Map<string, CompiledEntry[]>;
  /** Per distinct model, entries sorted by effective_from: the candidates for family and global maxima. */
  models: CompiledEntry[][];
  webSearchPerRequest: bigint;
}

const compiled = new WeakMap<PriceTable, CompiledTable>();

/** USD per million tokens → picodollars per token. Throws when the rate is not a whole picodollar per token. */
function picoPerToken(rate: string, where: string): bigint {
  const m = /^(\d+)(?:\.(\d{1,6}))?$/.exec(rate);
  if (!m) throw new Error(`price table: ${where}: "${rate}" is not a decimal with at most 6 places`);
  return BigInt(m[1]!) * 1_000_000n + BigInt((m[2] ?? '').padEnd(6, '0'));
}

function compileRates(rates: TokenRates, where: string): PicoRates {
  return {
    input: picoPerToken(rates.input, `${where}.input`),
    cache_write_5m: picoPerToken(rates.cache_write_5m, `${where}.cache_write_5m`),
    cache_write_1h: picoPerToken(rates.cache_write_1h, `${where}.cache_write_1h`),
    cache_read: picoPerToken(rates.cache_read, `${where}.cache_read`),
    output: picoPerToken(rates.output, `${where}.output`),
  };
}

function compileTable(table: PriceTable): CompiledTable {
  const cached = compiled.get(table);
  if (cached) return cached;
  const byModel = new Map<string, CompiledEntry[]>();
  for (const entry of table.entries) {
    const from = Date.parse(`${entry.effective_from}T00:00:00Z`);
    if (Number.isNaN(from)) {
      throw new Error(
        `price table: ${entry.model}.effective_from: "${entry.effective_from}" is not a date (YYYY-MM-DD)`,
      );
    }
    const item: CompiledEntry = {
      entry,
      from,
      rates: compileRates(entry.rates, entry.model),
      longContext: entry.long_context ? compileRates(entry.long_context, `${entry.model}.long_context`) : null,
    };
    const list = byModel.get(entry.model) ?? [];
    list.push(item);
    byModel.set(entry.model, list);
  }
  const byId = new Map<string, CompiledEntry[]>();
  for (const list of byModel.values()) {
    list.sort((a, b) => a.from - b.from);
    for (const item of list) {
      for (const id of [item.entry.model, ...(item.entry.aliases ?? [])]) byId.set(id, list);
    }
  }
  const webSearchPerRequest = picoPerToken(table.web_search_per_1k, 'web_search_per_1k') * 1_000n;
  const result = { byId, models: [...byModel.values()], webSearchPerRequest };
  compiled.set(table, result);
  return result;
}

/** The entry in force at `at`: the latest one dated on or before it, else the model's first. */
function entryAt(list: CompiledEntry[], at: number): CompiledEntry {
  let chosen = list[0]!;
  for (const item of list) if (item.from <= at) chosen = item;
  return chosen;
}

function ratesFor(item: CompiledEntry, longContext: boolean): PicoRates {
  return longContext && item.longContext ? item.longContext : item.rates;
}

function maxRates(candidates: PicoRates[]): PicoRates {
  const max = (pick: (r: PicoRates) => bigint) => {
    let highest = 0n;
    for (const r of candidates) if (pick(r) > highest) highest = pick(r);
    return highest;
  };
  return {
    input: max((r) => r.input),
    cache_write_5m: max((r) => r.cache_write_5m),
    cache_write_1h: max((r) => r.cache_write_1h),
    cache_read: max((r) => r.cache_read),
    output: max((r) => r.output),
  };
}

function count(value: TokenCount | undefined, field: string): bigint {
  if (value === undefined) return 0n;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && !Number.isSafeInteger(value))
    throw new Error(`${field}: ${value} is not a token count`);
  try {
    return BigInt(value);
  } catch {
    throw new Error(`${field}: "${value}" is not a token count`);
  }
}

/** Resolves the rates a row is priced at, and how. */
function resolve(table: CompiledTable, model: string | null, at: number, longContext: boolean) {
  const list = model === null ? undefined : table.byId.get(canonicalModelId(model));
  if (list) {
    const item = entryAt(list, at);
    return { rates: ratesFor(item, longContext), pricedBy: 'table' as const, priceModel: item.entry.model };
  }
  const family = model === null ? null : familyOf(model);
  const inForce = table.models.map((l) => entryAt(l, at));
  const sameFamily = family === null ? [] : inForce.filter((i) => i.entry.family === family);
  const pool = sameFamily.length > 0 ? sameFamily : inForce;
  return {
    rates: maxRates(pool.map((i) => ratesFor(i, longContext))),
    pricedBy: sameFamily.length > 0 ? ('family_max' as const) : ('global_max' as const),
    priceModel: null,
  };
}

/** The exact cost of one usage row at `at` (the row's time: prices are dated), and how it was priced. */
export function priceUsage(row: UsageToPrice, table: PriceTable, at: Date): PricedUsage {
  const t = compileTable(table);
  const { rates, pricedBy, priceModel } = resolve(t, row.model, at.getTime(), row.context_window === '200k-1M');
  const batch = row.service_tier === 'batch';
  // Batch is half price on every token kind (it stacks with the cache multipliers); web search is not discounted.
  const tokens = (n: bigint, rate: bigint) => (batch ? (n * rate + 1n) / 2n : n * rate);
  const parts: CostParts = {
    uncached_input: tokens(count(row.uncached_input_tokens, 'uncached_input_tokens'), rates.input),
    cache_read: tokens(count(row.cache_read_input_tokens, 'cache_read_input_tokens'), rates.cache_read),
    cache_write_5m: tokens(
      count(row.cache_creation_5m_input_tokens, 'cache_creation_5m_input_tokens'),
      rates.cache_write_5m,
    ),
    cache_write_1h: tokens(
      count(row.cache_creation_1h_input_tokens, 'cache_creation_1h_input_tokens'),
      rates.cache_write_1h,
    ),
    output: tokens(count(row.output_tokens, 'output_tokens'), rates.output),
    web_search: count(row.web_search_requests, 'web_search_requests') * t.webSearchPerRequest,
  };
  const cost =
    parts.uncached_input +
    parts.cache_read +
    parts.cache_write_5m +
    parts.cache_write_1h +
    parts.output +
    parts.web_search;
  return { cost, pricedBy, priceModel, parts };
}

/** The table entry that prices `model` at `at`, or null when the model is unknown (priced at a maximum). */
export function findPriceEntry(table: PriceTable, model: string, at: Date): PriceEntry | null {
  const list = compileTable(table).byId.get(canonicalModelId(model));
  return list ? entryAt(list, at.getTime()).entry : null;
}
