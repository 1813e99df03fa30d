/**
 * Money in keywarden is exact: amounts are bigint picodollars (1e-12 USD) in code and `numeric(30,12)` USD in
 * Postgres. Why picodollars: the cheapest token kind costs $0.03 per million tokens (3e-8 USD a token), and batch
 * and regional multipliers add two more decimal places, so a smaller unit would round single-bucket costs; a
 * bigint of picodollars still holds 9.2 million USD, and sums are done in bigint (unbounded) or in SQL numeric.
 */

export type Pico = bigint;

const SCALE = 12;
const PICO_PER_USD = 10n ** BigInt(SCALE);
const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/** Parses a decimal string scaled by 10^-shift (shift 0 for USD, 2 for cents) into picodollars, exactly. */
function parseScaled(text: string, shift: number, what: string): Pico {
  const m = DECIMAL.exec(text.trim());
  if (!m) throw new Error(`${what}: "${text}" is not a decimal number`);
  const [, sign, whole, frac = ''] = m;
  const digits = SCALE - shift;
  if (frac.length > digits && /[^0]/.test(frac.slice(digits))) {
    throw new Error(`${what}: "${text}" has more precision than a picodollar`);
  }
  const value = BigInt(whole!) * 10n ** BigInt(digits) + BigInt((frac.slice(0, digits) || '0').padEnd(digits, '0'));
  return sign ? -value : value;
}

/** "12.345" USD → picodollars. Also accepts what pg returns for numeric columns. */
export function usdToPico(text: string, what = 'amount'): Pico {
  return parseScaled(text, 0, what);
}

/** The cost report's `amount`, a decimal string in cents ("123.45" = $1.2345) → picodollars. */
export function centsToPico(text: string, what = 'amount'): Pico {
  return parseScaled(text, 2, what);
}

/** Picodollars → a decimal USD string with all 12 places, as stored in numeric(30,12). */
export function picoToUsd(value: Pico): string {
  const neg = value < 0n;
  const abs = neg ? -value : value;
  const whole = abs / PICO_PER_USD;
  const frac = (abs % PICO_PER_USD).toString().padStart(SCALE, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

/** Picodollars → cents as a decimal string, trailing zeros trimmed (the cost report's format). */
export function picoToCents(value: Pico): string {
  const neg = value < 0n;
  const abs = neg ? -value : value;
  const unit = 10n ** 10n; // picodollars per cent
  const frac = (abs % unit).toString().padStart(10, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${abs / unit}${frac ? `.${frac}` : ''}`;
}

/** Rounds to whole cents, half away from zero. */
export function roundToCents(value: Pico): Pico {
  const unit = 10n ** 10n;
  const half = unit / 2n;
  const neg = value < 0n;
  const abs = neg ? -value : value;
  const rounded = ((abs + half) / unit) * unit;
  return neg ? -rounded : rounded;
}

/** For people: "$1,234.57". Never used for sums or storage. */
export function formatUsd(value: Pico, fractionDigits = 2): string {
  const cents = roundToCents(value);
  const usd = Number(cents / 10n ** 10n) / 100;
  return usd.toLocaleString('en-US', {
    style: 'currency',
    currency: 'USD',
    minimumFractionDigits: fractionDigits,
    maximumFractionDigits: fractionDigits,
  });
}

/** For statistics (forecasts, anomaly scores), where a float is the right tool and the result is not money. */
export function picoToNumberUsd(value: Pico): number {
  return Number(value) / 1e12;
}

/** A float USD estimate (a forecast) back to picodollars, rounded to the picodollar. */
export function numberUsdToPico(usd: number): Pico {
  if (!Number.isFinite(usd)) throw new Error(`not a finite amount: ${usd}`);
  return BigInt(Math.round(usd * 1e6)) * 1_000_000n;
}

export function sumPico(values: Iterable<Pico>): Pico {
  let total = 0n;
  for (const v of values) total += v;
  return total;
}
