/**
 * Small argument helpers shared by the `data clean` and `data combine` commands: validated numbers and
 * `name=value` pairs, with errors that point to `--help`.
 *
 * @module
 */

/**
 * Parses a numeric flag value; `undefined` stays `undefined`. Errors name the flag.
 *
 * @example
 * ```ts
 * import { numberFlag } from "./args.ts";
 * console.log(numberFlag("--keep-rate", "0.0004", { min: 0, max: 1 })); // 0.0004
 * ```
 */
export function numberFlag(
  flag: string,
  value: string | undefined,
  range: { min?: number; max?: number; integer?: boolean } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const bad = value.trim() === "" || !Number.isFinite(n) || (range.integer && !Number.isInteger(n)) ||
    (range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max);
  if (bad) {
    const kind = range.integer ? "an integer" : "a number";
    const lo = range.min ?? "-∞", hi = range.max ?? "∞";
    throw new Error(`${flag} must be ${kind} in [${lo}, ${hi}], got '${value}' (see --help)`);
  }
  return n;
}

/**
 * Splits `name=value`; errors name the flag.
 *
 * @example
 * ```ts
 * import { pairFlag } from "./args.ts";
 * console.log(pairFlag("--input", "papers=out/papers.jsonl")); // ["papers", "out/papers.jsonl"]
 * ```
 */
export function pairFlag(flag: string, value: string): [string, string] {
  const eq = value.indexOf("=");
  if (eq <= 0 || eq === value.length - 1) {
    throw new Error(`${flag} expects NAME=VALUE, got '${value}' (see --help)`);
  }
  return [value.slice(0, eq).trim(), value.slice(eq + 1).trim()];
}
