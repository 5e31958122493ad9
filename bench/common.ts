/**
 * What every benchmark shares: its help (what it measures, against which peer, every option with its default)
 * and its option parsing, so that `deno task bench NAME --help` and `deno run -A bench/NAME.ts --help` print
 * the usage without starting any work, and an unknown or malformed option is one `error:` line (cli/common.ts's
 * {@linkcode runMain} convention) before any work starts.
 *
 * A benchmark module exports `bench = defineBench({ … })`; bench/main.ts and the module's own
 * `if (import.meta.main) await benchMain(bench)` both run it through {@linkcode runBench}.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runMain, UsageError } from "../cli/common.ts";

/** What every option declares. */
interface OptionBase {
  /** One line for the help (the default is appended). */
  help: string;
  /** The value's placeholder in the help (`N`, `PATH`…); defaults by type. */
  arg?: string;
}

/** An integer `>= min`. */
export interface IntOption extends OptionBase {
  /** Kind. */
  type: "int";
  /** Value when the option is absent. */
  default: number;
  /** Smallest accepted value. */
  min: number;
}

/** A number `>= min` (and `<= max` when given). */
export interface NumberOption extends OptionBase {
  /** Kind. */
  type: "number";
  /** Value when the option is absent. */
  default: number;
  /** Smallest accepted value. */
  min: number;
  /** Largest accepted value (none when absent). */
  max?: number;
}

/** A comma-separated list of integers, each `>= min`. */
export interface IntListOption extends OptionBase {
  /** Kind. */
  type: "ints";
  /** Value when the option is absent. */
  default: readonly number[];
  /** Smallest accepted element. */
  min: number;
}

/** A comma-separated list of names, each one of `choices`. */
export interface ChoiceListOption extends OptionBase {
  /** Kind. */
  type: "choices";
  /** Value when the option is absent. */
  default: readonly string[];
  /** The accepted names. */
  choices: readonly string[];
}

/** Free text (a path, a name); without a default the help line says what its absence means. */
export interface StringOption extends OptionBase {
  /** Kind. */
  type: "string";
  /** Value when the option is absent. */
  default?: string;
}

/** A flag without a value (false when absent). */
export interface FlagOption extends OptionBase {
  /** Kind. */
  type: "boolean";
}

/** One option of a benchmark. */
export type BenchOption =
  | IntOption
  | NumberOption
  | IntListOption
  | ChoiceListOption
  | StringOption
  | FlagOption;

/** A benchmark's options by flag name (`"max-tokens"` is `--max-tokens`). */
export type BenchOptions = Record<string, BenchOption>;

/** The parsed value of an option. */
export type OptionValue<T extends BenchOption> = T extends IntOption | NumberOption ? number
  : T extends IntListOption ? number[]
  : T extends ChoiceListOption ? string[]
  : T extends FlagOption ? boolean
  : T extends { default: string } ? string
  : string | undefined;

/** The parsed values of a benchmark's options, by flag name. */
export type OptionValues<O extends BenchOptions> = { [K in keyof O]: OptionValue<O[K]> };

/** A benchmark: its help and the work, which gets the options parsed and checked. */
export interface Bench<O extends BenchOptions> {
  /** The name under `deno task bench`. */
  name: string;
  /** What it measures (lines of at most 110 characters). */
  measures: string;
  /** What its figures are set against, measured in the same run. */
  peer: string;
  /** Its options. */
  options: O;
  /** Runs the benchmark. */
  run(values: OptionValues<O>): Promise<void>;
}

/**
 * Declares a benchmark (the `const` type parameter keeps each option's kind, so `run` gets typed values).
 *
 * @example
 * ```ts
 * import { defineBench } from "./common.ts";
 * export const bench = defineBench({
 *   name: "noop",
 *   measures: "nothing",
 *   peer: "none",
 *   options: { steps: { type: "int", default: 5, min: 1, help: "steps" } },
 *   run: (v) => Promise.resolve(console.log(v.steps + 1)),
 * });
 * ```
 */
export function defineBench<const O extends BenchOptions>(bench: Bench<O>): Bench<O> {
  return bench;
}

/** The first line of every benchmark's help (also what a usage error points to). */
export function usageLine(name: string): string {
  return `Usage: deno task bench ${name} [options]`;
}

const PLACEHOLDER: Record<BenchOption["type"], string> = {
  int: "N",
  number: "X",
  ints: "N,N",
  choices: "A,B",
  string: "VALUE",
  boolean: "",
};

/** `--flag ARG   help (default D)` lines, aligned. */
function optionLines(options: BenchOptions): string[] {
  const rows: [string, string][] = Object.entries(options).map(([name, o]) => {
    const def = o.type === "boolean" || o.default === undefined ? "" : ` (default ${o.default})`;
    const choices = o.type === "choices" ? `; one or more of ${o.choices.join(", ")}` : "";
    return [`--${name} ${o.arg ?? PLACEHOLDER[o.type]}`.trimEnd(), `${o.help}${choices}${def}`];
  });
  rows.push(["--debug", "show stack traces on errors"], ["-h, --help", "this help"]);
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`);
}

/** The help of a benchmark: usage, what it measures, its peer, every option with its default. */
export function benchHelp(bench: Bench<BenchOptions>): string {
  return [
    usageLine(bench.name),
    "",
    bench.measures,
    "",
    `Peer: ${bench.peer}`,
    "",
    "Options:",
    ...optionLines(bench.options),
  ].join("\n");
}

/** `text` as a number of `option`'s range, or a usage error naming `flag`. */
function toNumber(flag: string, text: string, o: IntOption | NumberOption | IntListOption): number {
  const n = text.trim() === "" ? NaN : Number(text);
  const integer = o.type !== "number";
  const max = (o.type === "number" ? o.max : undefined) ?? Infinity;
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < o.min || n > max) {
    const range = max === Infinity ? `>= ${o.min}` : `in [${o.min}, ${max}]`;
    throw new UsageError(`${flag} must be ${integer ? "an integer" : "a number"} ${range} (got '${text}')`);
  }
  return n;
}

/** One option's value from its raw text (undefined: absent). */
function optionValue(name: string, o: BenchOption, raw: string | boolean | undefined): unknown {
  const flag = `--${name}`;
  if (o.type === "boolean") return raw === true;
  if (typeof raw !== "string") return o.type === "ints" || o.type === "choices" ? [...o.default] : o.default;
  if (o.type === "string") return raw;
  if (o.type === "int" || o.type === "number") return toNumber(flag, raw, o);
  const items = raw.split(",");
  if (o.type === "ints") return items.map((x) => toNumber(flag, x, o));
  const bad = items.find((x) => !o.choices.includes(x));
  if (bad !== undefined) {
    throw new UsageError(`${flag}: unknown '${bad}' (choices: ${o.choices.join(", ")})`);
  }
  return items;
}

/**
 * Parses `args` against `options`: every option checked (kind, range, choices), defaults filled in. An unknown
 * option, a missing value, a positional argument or a value out of range is a {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import { parseBenchArgs } from "./common.ts";
 * const v = parseBenchArgs({ steps: { type: "int", default: 5, min: 1, help: "steps" } }, ["--steps", "3"]);
 * console.log(v.steps); // 3
 * ```
 */
export function parseBenchArgs<const O extends BenchOptions>(options: O, args: string[]): OptionValues<O> {
  let raw: Record<string, string | boolean | undefined>;
  try {
    raw = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(
        Object.entries(options).map(([k, o]) => [k, { type: o.type === "boolean" ? "boolean" : "string" }]),
      ) as Record<string, { type: "string" | "boolean" }>,
    }).values;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS")) throw e;
    const known = Object.keys(options).map((k) => `--${k}`).join(", ") || "none";
    const hint = code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" ? ` (options: ${known})` : "";
    throw new UsageError(`${(e as Error).message.split("\n")[0]}${hint}`);
  }
  return Object.fromEntries(
    Object.entries(options).map(([k, o]) => [k, optionValue(k, o, raw[k])]),
  ) as OptionValues<O>;
}

/** Whether `args` ask for the help. */
export function wantsHelp(args: string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

/**
 * Runs a benchmark on its arguments: `-h`/`--help` prints {@linkcode benchHelp} and does nothing else;
 * otherwise the options are parsed (a usage error before any work) and the work runs. `--debug` (read by
 * {@linkcode runMain}) is dropped.
 */
export async function runBench(bench: Bench<BenchOptions>, args: string[]): Promise<void> {
  const rest = args.filter((a) => a !== "--debug");
  if (wantsHelp(rest)) {
    console.log(benchHelp(bench));
    return;
  }
  await bench.run(parseBenchArgs(bench.options, rest));
}

/** `deno run -A bench/NAME.ts [options]`: {@linkcode runBench} on `Deno.args` with the CLIs' error handling. */
export async function benchMain(bench: Bench<BenchOptions>): Promise<void> {
  await runMain((args) => runBench(bench, args), usageLine(bench.name));
}
