/**
 * Amounts: base units as `bigint`, TIME as decimal strings (docs/state.md#amounts).
 *
 * Owns: the unit (1 TIME = 10^8 base units), the u128 bound, and parsing and formatting of the
 * decimal and base-unit forms.
 * Must never: go through a floating-point number, round silently, or accept a value outside
 * [0, 2^128).
 */

export const DECIMALS = 8;
export const UNITS_PER_TIME = 10n ** BigInt(DECIMALS);
/** Balances and amounts are u128. */
export const MAX_AMOUNT = (1n << 128n) - 1n;
/** Longest accepted input: 2^128 has 39 digits, plus a point and 8 decimals. */
const MAX_AMOUNT_CHARS = 50;

/** Parses "12.5" (TIME, at most 8 decimals) into base units. Throws `RangeError` with why. */
export function parseAmount(text: string): bigint {
  if (typeof text !== "string" || text.length === 0 || text.length > MAX_AMOUNT_CHARS) {
    throw new RangeError(`invalid amount ${JSON.stringify(text)}`);
  }
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) throw new RangeError(`invalid amount ${JSON.stringify(text)}: expected e.g. 12.5`);
  const decimals = m[2] ?? "";
  if (decimals.length > DECIMALS) {
    throw new RangeError(`amount ${text} has more than ${DECIMALS} decimals`);
  }
  const units = BigInt(m[1]) * UNITS_PER_TIME + BigInt(decimals.padEnd(DECIMALS, "0") || "0");
  if (units > MAX_AMOUNT) throw new RangeError(`amount ${text} is too large`);
  return units;
}

/** Parses a base-unit string ("1250000000") into a bigint within u128. */
export function parseUnits(text: string): bigint {
  if (typeof text !== "string" || !/^\d{1,39}$/.test(text)) {
    throw new RangeError(`invalid base-unit amount ${JSON.stringify(text)}`);
  }
  const units = BigInt(text);
  if (units > MAX_AMOUNT) throw new RangeError(`amount ${text} is too large`);
  return units;
}

/** Base units as TIME: "12.5", "0.00000001", "3" (no trailing zeros, no exponent). */
export function formatAmount(units: bigint): string {
  if (units < 0n) throw new RangeError("negative amount");
  const whole = units / UNITS_PER_TIME;
  const frac = (units % UNITS_PER_TIME).toString().padStart(DECIMALS, "0").replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : whole.toString();
}
