/**
 * `deno task data prepare`: the GAP-Replay pipeline end to end, from a YAML config — clean every source
 * (`data/clean`), combine them with a seeded train/validation split, and tokenize the result into one
 * Megatron indexed dataset `{output}/{name}_text_document.{bin,idx}` holding the training documents followed by
 * the validation documents. The report `{output}/{name}.prepare.json` records every step and the
 * `data.valid_fraction` that makes pretraining validate on exactly the validation documents.
 *
 * Config (YAML; unknown keys are errors naming the file and key; relative paths are relative to the working
 * directory):
 * ```yaml
 * name: gap-replay            # dataset name
 * output: runs/data/gap-replay
 * seed: 1234                  # replay draws, MinHash, validation split
 * workers: 2                  # tokenizer workers
 * skip_bad: false             # count malformed lines instead of failing
 * split: { guidelines: 0.05, papers: 0.03, abstracts: 0.03, replay: 0 }   # validation fraction per subset
 * sources:
 *   - kind: guidelines        # guidelines | abstracts | papers | replay
 *     input: raw/guidelines.jsonl
 *     options: { min_words: 30 }
 *   - kind: replay
 *     input: raw/redpajama.jsonl
 *     options: { keep_rate: 0.0004 }
 * tokenize: { append_eod: true, add_bos: true, bracket_tokens: true }
 * ```
 *
 * @example
 * ```ts
 * import { loadPrepareConfig, prepare } from "./prepare.ts";
 * const config = await loadPrepareConfig("configs/gap-replay.yaml");
 * const report = await prepare({ ...config, output: await Deno.makeTempDir() });
 * console.log(report.dataset.prefix, report.dataset.valid_fraction);
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseYamlMapping, readConfigText } from "../models/config.ts";
import {
  CLEAN_SOURCES,
  cleanFile,
  type CleanFileOptions,
  type CleanReport,
  type CleanSource,
  combineFiles,
  type CombineReport,
  type MinHashOptions,
} from "./clean/mod.ts";
import { writeFileAtomic } from "./indexed_dataset.ts";
import { tokenizeJsonl, type TokenizeProgress, type TokenizeReport } from "./tokenize_job.ts";

/**
 * Cleaning options of one source (YAML `sources[i].options`, snake_case there).
 *
 * @example
 * ```ts
 * import type { SourceOptions } from "./prepare.ts";
 * const o: SourceOptions = { keep_rate: 0.0004, lang: "en" };
 * ```
 */
export interface SourceOptions {
  /** Language to keep (ISO 639-1) or `none` (default: en; replay: none). */
  lang?: string;
  /** Minimum language score in [0, 1]. */
  lang_threshold?: number;
  /** Minimum words (defaults per source). */
  min_words?: number;
  /** Characters of the exact-dedup key (0: off). */
  dedup_chars?: number;
  /** MinHash near-dedup Jaccard threshold in (0, 1] (off when absent). */
  near_dedup?: number;
  /** MinHash functions. */
  minhash_perm?: number;
  /** Words per shingle. */
  shingle?: number;
  /** LSH bands. */
  lsh_bands?: number;
  /** Guidelines: truncation rules of this source key for every record. */
  guideline_source?: string;
  /** Abstracts: drop abstracts whose paper is in the papers source (default: true when there is one). */
  exclude_papers?: boolean;
  /** Papers: words kept of cited titles and captions in references. */
  max_ref_words?: number;
  /** Replay: probability of keeping each record (required for replay). */
  keep_rate?: number;
}

/**
 * One source of the corpus.
 *
 * @example
 * ```ts
 * import type { SourceConfig } from "./prepare.ts";
 * const s: SourceConfig = { kind: "papers", input: "raw/s2orc.jsonl", subset: "papers", options: {} };
 * ```
 */
export interface SourceConfig {
  /** Which cleaner. */
  kind: CleanSource;
  /** Raw JSONL input. */
  input: string;
  /** Subset name in the combined corpus (default: the kind). */
  subset: string;
  /** Cleaning options. */
  options: SourceOptions;
}

/**
 * Tokenize options (YAML `tokenize`).
 *
 * @example
 * ```ts
 * import type { PrepareTokenizeConfig } from "./prepare.ts";
 * const t: PrepareTokenizeConfig = { append_eod: true, add_bos: true, bracket_tokens: true };
 * ```
 */
export interface PrepareTokenizeConfig {
  /** Append `</s>` to every document (default true). */
  append_eod: boolean;
  /** Prepend `<s>` to every document (default true). */
  add_bos: boolean;
  /** Add Meditron's bracket tokens to the vocabulary (default true). */
  bracket_tokens: boolean;
  /** An HF tokenizer.json instead of Llama-2's. */
  tokenizer?: string;
}

/**
 * A prepare config.
 *
 * @example
 * ```ts
 * import type { PrepareConfig } from "./prepare.ts";
 * const c: PrepareConfig = {
 *   file: "inline", name: "gap", output: "out", seed: 1, workers: 1, skip_bad: false, split: {},
 *   sources: [{ kind: "replay", input: "r.jsonl", subset: "replay", options: { keep_rate: 1 } }],
 *   tokenize: { append_eod: true, add_bos: true, bracket_tokens: true },
 * };
 * ```
 */
export interface PrepareConfig {
  /** Where the config came from (for messages). */
  file: string;
  /** Dataset name. */
  name: string;
  /** Output directory. */
  output: string;
  /** Seed of replay draws, MinHash and the validation split. */
  seed: number;
  /** Tokenizer workers. */
  workers: number;
  /** Count malformed lines and missing fields instead of failing. */
  skip_bad: boolean;
  /** Validation fraction per subset (over Meditron's defaults). */
  split: Record<string, number>;
  /** The sources, in corpus order. */
  sources: SourceConfig[];
  /** Tokenization. */
  tokenize: PrepareTokenizeConfig;
}

type Raw = Record<string, unknown>;

/** Reads a YAML mapping with known keys; everything it reports names `file` and the key path. */
class Fields {
  readonly #obj: Raw;
  readonly #file: string;
  readonly #path: string;
  constructor(value: unknown, file: string, path: string, known: readonly string[]) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Error(`${file}: ${path || "the config"} must be a mapping`);
    }
    this.#obj = value as Raw;
    this.#file = file;
    this.#path = path;
    for (const key of Object.keys(this.#obj)) {
      if (!known.includes(key)) {
        throw new Error(`${file}: unknown key '${this.#key(key)}' (known: ${known.join(", ")})`);
      }
    }
  }
  #key(key: string): string {
    return this.#path ? `${this.#path}.${key}` : key;
  }
  has(key: string): boolean {
    return this.#obj[key] !== undefined && this.#obj[key] !== null;
  }
  raw(key: string): unknown {
    return this.#obj[key];
  }
  fail(key: string, why: string): never {
    throw new Error(`${this.#file}: ${this.#key(key)} ${why}`);
  }
  string(key: string, fallback?: string): string {
    const v = this.#obj[key] ?? fallback;
    if (typeof v !== "string" || v.trim() === "") return this.fail(key, "must be a non-empty string");
    return v;
  }
  optionalString(key: string): string | undefined {
    return this.has(key) ? this.string(key) : undefined;
  }
  number(
    key: string,
    range: { min?: number; max?: number; integer?: boolean; fallback?: number } = {},
  ): number {
    const v = this.#obj[key] ?? range.fallback;
    const ok = typeof v === "number" && Number.isFinite(v) && (!range.integer || Number.isInteger(v)) &&
      (range.min === undefined || v >= range.min) && (range.max === undefined || v <= range.max);
    if (!ok) {
      const kind = range.integer ? "an integer" : "a number";
      return this.fail(
        key,
        `must be ${kind} in [${range.min ?? "-∞"}, ${range.max ?? "∞"}] (got ${JSON.stringify(v)})`,
      );
    }
    return v as number;
  }
  optionalNumber(
    key: string,
    range: { min?: number; max?: number; integer?: boolean } = {},
  ): number | undefined {
    return this.has(key) ? this.number(key, range) : undefined;
  }
  boolean(key: string, fallback: boolean): boolean {
    const v = this.#obj[key] ?? fallback;
    if (typeof v !== "boolean") return this.fail(key, "must be true or false");
    return v;
  }
}

const TOP_KEYS = ["name", "output", "seed", "workers", "skip_bad", "split", "sources", "tokenize"] as const;
const SOURCE_KEYS = ["kind", "input", "subset", "options"] as const;
const OPTION_KEYS: Record<CleanSource, readonly string[]> = (() => {
  const common = [
    "lang",
    "lang_threshold",
    "min_words",
    "dedup_chars",
    "near_dedup",
    "minhash_perm",
    "shingle",
    "lsh_bands",
  ];
  return {
    guidelines: [...common, "guideline_source"],
    abstracts: [...common, "exclude_papers"],
    papers: [...common, "max_ref_words"],
    replay: [...common, "keep_rate"],
  };
})();
const TOKENIZE_KEYS = ["append_eod", "add_bos", "bracket_tokens", "tokenizer"] as const;

function parseSourceOptions(f: Fields, kind: CleanSource): SourceOptions {
  const o: SourceOptions = {};
  const lang = f.optionalString("lang");
  if (lang !== undefined && lang !== "none" && !/^[a-z]{2,3}$/.test(lang)) {
    f.fail("lang", `must be an ISO 639-1 code or 'none' (got '${lang}')`);
  }
  o.lang = lang;
  o.lang_threshold = f.optionalNumber("lang_threshold", { min: 0, max: 1 });
  o.min_words = f.optionalNumber("min_words", { min: 0, integer: true });
  o.dedup_chars = f.optionalNumber("dedup_chars", { min: 0, integer: true });
  o.near_dedup = f.optionalNumber("near_dedup", { min: 1e-9, max: 1 });
  o.minhash_perm = f.optionalNumber("minhash_perm", { min: 2, max: 4096, integer: true });
  o.shingle = f.optionalNumber("shingle", { min: 1, max: 64, integer: true });
  o.lsh_bands = f.optionalNumber("lsh_bands", { min: 1, integer: true });
  if (kind === "guidelines") o.guideline_source = f.optionalString("guideline_source");
  if (kind === "abstracts" && f.has("exclude_papers")) o.exclude_papers = f.boolean("exclude_papers", true);
  if (kind === "papers") o.max_ref_words = f.optionalNumber("max_ref_words", { min: 1, integer: true });
  if (kind === "replay") o.keep_rate = f.number("keep_rate", { min: 0, max: 1 });
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as SourceOptions;
}

/**
 * Validates a parsed YAML document as a {@linkcode PrepareConfig}; errors name `file` and the key.
 *
 * @example
 * ```ts
 * import { parsePrepareConfig } from "./prepare.ts";
 * const c = parsePrepareConfig({ sources: [{ kind: "replay", input: "r.jsonl", options: { keep_rate: 1 } }] }, "x.yaml");
 * console.log(c.name, c.tokenize.append_eod); // gap-replay true
 * ```
 */
export function parsePrepareConfig(doc: unknown, file: string): PrepareConfig {
  const top = new Fields(doc, file, "", TOP_KEYS);
  const name = top.string("name", "gap-replay");
  if (!/^[\w.-]+$/.test(name)) top.fail("name", "may hold only letters, digits, '_', '-' and '.'");
  const split: Record<string, number> = {};
  if (top.has("split")) {
    const raw = top.raw("split");
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      top.fail("split", "must map subsets to fractions");
    }
    const f = new Fields(raw, file, "split", Object.keys(raw as Raw));
    for (const subset of Object.keys(raw as Raw)) split[subset] = f.number(subset, { min: 0, max: 1 });
  }
  const rawSources = top.raw("sources");
  if (!Array.isArray(rawSources) || rawSources.length === 0) top.fail("sources", "must be a non-empty list");
  const sources = (rawSources as unknown[]).map((value, i): SourceConfig => {
    const f = new Fields(value, file, `sources[${i}]`, SOURCE_KEYS);
    const kind = f.string("kind") as CleanSource;
    if (!CLEAN_SOURCES.includes(kind)) {
      f.fail("kind", `must be one of ${CLEAN_SOURCES.join(", ")} (got '${kind}')`);
    }
    const options = new Fields(f.raw("options") ?? {}, file, `sources[${i}].options`, OPTION_KEYS[kind]);
    return {
      kind,
      input: f.string("input"),
      subset: f.string("subset", kind),
      options: parseSourceOptions(options, kind),
    };
  });
  const seen = new Set<string>();
  sources.forEach((s, i) => {
    if (seen.has(s.subset)) {
      throw new Error(
        `${file}: sources[${i}]: subset '${s.subset}' given twice (set 'subset' to tell them apart)`,
      );
    }
    seen.add(s.subset);
  });
  for (const subset of Object.keys(split)) {
    if (!seen.has(subset)) throw new Error(`${file}: split.${subset}: no source has subset '${subset}'`);
  }
  const papers = sources.filter((s) => s.kind === "papers");
  for (const [i, s] of sources.entries()) {
    if (s.kind === "abstracts" && s.options.exclude_papers && papers.length === 0) {
      throw new Error(`${file}: sources[${i}].options.exclude_papers: there is no papers source`);
    }
  }
  const tok = new Fields(top.raw("tokenize") ?? {}, file, "tokenize", TOKENIZE_KEYS);
  return {
    file,
    name,
    output: top.string("output", join("runs", "data", name)),
    seed: top.number("seed", { min: 0, integer: true, fallback: 1234 }),
    workers: top.number("workers", {
      min: 1,
      max: 256,
      integer: true,
      fallback: Math.max(1, Math.min(8, navigator.hardwareConcurrency)),
    }),
    skip_bad: top.boolean("skip_bad", false),
    split,
    sources,
    tokenize: {
      append_eod: tok.boolean("append_eod", true),
      add_bos: tok.boolean("add_bos", true),
      bracket_tokens: tok.boolean("bracket_tokens", true),
      tokenizer: tok.optionalString("tokenizer"),
    },
  };
}

/**
 * Reads and validates a prepare config file.
 *
 * @example
 * ```ts
 * import { loadPrepareConfig } from "./prepare.ts";
 * const config = await loadPrepareConfig("configs/gap-replay.yaml");
 * console.log(config.sources.map((s) => s.kind));
 * ```
 */
export async function loadPrepareConfig(path: string): Promise<PrepareConfig> {
  return parsePrepareConfig(parseYamlMapping(await readConfigText(path), path), path);
}

/** The data/clean options of a source. */
function cleanOptions(s: SourceConfig, seed: number): NonNullable<CleanFileOptions["options"]> {
  const o = s.options;
  const nearDedup: MinHashOptions | undefined = o.near_dedup === undefined ? undefined : {
    threshold: o.near_dedup,
    numPerm: o.minhash_perm,
    shingleSize: o.shingle,
    bands: o.lsh_bands,
    seed,
  };
  return {
    source: o.guideline_source,
    keepRate: o.keep_rate,
    seed,
    language: o.lang === undefined ? undefined : o.lang === "none" ? null : o.lang,
    languageThreshold: o.lang_threshold,
    minWords: o.min_words,
    dedupChars: o.dedup_chars,
    nearDedup,
    maxRefWords: o.max_ref_words,
  };
}

/**
 * Options of {@linkcode prepare} besides the config.
 *
 * @example
 * ```ts
 * import type { PrepareHooks } from "./prepare.ts";
 * const hooks: PrepareHooks = { log: (line) => console.error(line) };
 * ```
 */
export interface PrepareHooks {
  /** One line per finished step. */
  log?: (line: string) => void;
  /** Progress of the tokenize step. */
  onTokenizeProgress?: (progress: TokenizeProgress) => void;
}

/**
 * What `data prepare` did; also written to `{output}/{name}.prepare.json`.
 *
 * @example
 * ```ts
 * import type { PrepareReport } from "./prepare.ts";
 * const show = (r: PrepareReport) => console.log(r.dataset.prefix, r.dataset.train_documents);
 * ```
 */
export interface PrepareReport {
  /** Always `prepare`. */
  command: "prepare";
  /** The config file. */
  config: string;
  /** Output directory. */
  output: string;
  /** Cleaning reports, by subset. */
  clean: Record<string, CleanReport>;
  /** The combine report. */
  combine: CombineReport;
  /** The tokenize report. */
  tokenize: TokenizeReport;
  /** The dataset and how to train on it. */
  dataset: {
    /** Prefix of the `.bin`/`.idx` pair. */
    prefix: string;
    /** Training documents (first in the dataset). */
    train_documents: number;
    /** Validation documents (last). */
    validation_documents: number;
    /** Tokens. */
    tokens: number;
    /** `data.valid_fraction` for pretraining: splits the dataset exactly at the validation documents. */
    valid_fraction: number;
    /** The tokenizer's vocabulary size: the smallest `model.vocab_size` that trains on the dataset. */
    vocab_size: number;
    /** The pretraining command line. */
    pretrain: string;
  };
  /** Raw input bytes of all sources. */
  input_bytes: number;
  /** Wall time of the whole pipeline. */
  seconds: number;
  /** Raw input MB (10⁶ bytes) per second, end to end. */
  mb_per_second: number;
}

/**
 * Runs the pipeline (sources → clean → combine → tokenize) of a config. Every output is atomic; a
 * failing step leaves the outputs of the steps before it.
 *
 * @example
 * ```ts
 * import { loadPrepareConfig, prepare } from "./prepare.ts";
 * const config = await loadPrepareConfig("configs/gap-replay.yaml");
 * const report = await prepare({ ...config, output: await Deno.makeTempDir() }, { log: console.error });
 * console.log(report.dataset.pretrain);
 * ```
 */
export async function prepare(config: PrepareConfig, hooks: PrepareHooks = {}): Promise<PrepareReport> {
  const t0 = performance.now();
  const log = hooks.log ?? (() => {});
  const out = config.output;
  let inputBytes = 0;
  for (const s of config.sources) {
    try {
      const info = await Deno.stat(s.input);
      if (!info.isFile) throw new Error("not a file");
      (await Deno.open(s.input, { read: true })).close();
      inputBytes += info.size;
    } catch (e) {
      throw new Error(
        `${config.file}: source '${s.subset}': cannot read ${s.input} (${(e as Error).message})`,
      );
    }
  }
  await Deno.mkdir(join(out, "clean"), { recursive: true });
  const papers = config.sources.find((s) => s.kind === "papers");
  const clean: Record<string, CleanReport> = {};
  for (const s of config.sources) {
    const exclude = s.kind === "abstracts" && (s.options.exclude_papers ?? papers !== undefined);
    const report = await cleanFile({
      source: s.kind,
      input: s.input,
      output: join(out, "clean", `${s.subset}.jsonl`),
      papers: exclude ? papers!.input : undefined,
      skipBad: config.skip_bad,
      options: cleanOptions(s, config.seed),
    });
    clean[s.subset] = report;
    const dropped = Object.entries(report.dropped).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
    log(
      `clean ${s.subset}: kept ${report.kept} of ${report.read} (dropped: ${dropped}) in ${
        report.seconds.toFixed(1)
      }s${
        report.invalidUtf8Lines
          ? `; ${report.invalidUtf8Lines} lines had invalid UTF-8, replaced with U+FFFD`
          : ""
      }`,
    );
  }
  const combine = await combineFiles({
    inputs: config.sources.map((s) => ({ subset: s.subset, path: clean[s.subset].output })),
    output: join(out, `${config.name}.jsonl`),
    validation: join(out, `${config.name}.validation.jsonl`),
    validFractions: config.split,
    seed: config.seed,
    skipBad: config.skip_bad,
  });
  log(`combine: ${combine.train} train + ${combine.validationDocs} validation documents`);
  const tokenize = await tokenizeJsonl({
    input: [combine.output, combine.validation],
    outputPrefix: join(out, config.name),
    workers: config.workers,
    appendEod: config.tokenize.append_eod,
    addBos: config.tokenize.add_bos,
    bracketTokens: config.tokenize.bracket_tokens,
    tokenizerJson: config.tokenize.tokenizer,
    onProgress: hooks.onTokenizeProgress,
  });
  const [train, validation] = tokenize.documentsPerInput;
  log(
    `tokenize: ${tokenize.documents} documents, ${tokenize.tokens} tokens (${tokenize.dtype}) in ` +
      `${tokenize.seconds.toFixed(1)}s (${
        tokenize.mbPerSecond.toFixed(2)
      } MB/s, ${tokenize.workers} workers)`,
  );
  const validFraction = validation / (train + validation);
  const seconds = (performance.now() - t0) / 1000;
  const report: PrepareReport = {
    command: "prepare",
    config: config.file,
    output: out,
    clean,
    combine,
    tokenize,
    dataset: {
      prefix: tokenize.prefix,
      train_documents: train,
      validation_documents: validation,
      tokens: tokenize.tokens,
      valid_fraction: validFraction,
      vocab_size: tokenize.vocabSize,
      pretrain: `deno task pretrain --data ${tokenize.prefix} --set data.valid_fraction=${validFraction}` +
        (tokenize.vocabSize > 32000 ? ` --set model.vocab_size=${tokenize.vocabSize}` : ""),
    },
    input_bytes: inputBytes,
    seconds,
    mb_per_second: inputBytes / 1e6 / seconds,
  };
  await writeFileAtomic(
    join(out, `${config.name}.prepare.json`),
    new TextEncoder().encode(JSON.stringify(report, null, 2) + "\n"),
  );
  return report;
}

/**
 * `--help` of `deno task data prepare`.
 *
 * @example
 * ```ts
 * import { HELP_PREPARE } from "./prepare.ts";
 * console.log(HELP_PREPARE.split("\n")[0]); // Usage: deno task data prepare …
 * ```
 */
export const HELP_PREPARE = `Usage: deno task data prepare [--config FILE] [options]

Runs the GAP-Replay pipeline of a YAML config end to end: cleans every source (guidelines, abstracts,
papers, replay), combines them with a seeded train/validation split, and tokenizes the result into one
Megatron indexed dataset OUTPUT/NAME_text_document.{bin,idx} (training documents first, then validation).
The report OUTPUT/NAME.prepare.json gives the data.valid_fraction that validates on exactly the
validation documents. The default config runs on the bundled fixture corpora.

Options:
  --config FILE    YAML config (default: configs/gap-replay.yaml)
  --output DIR     output directory (overrides 'output')
  --workers N      tokenizer workers (overrides 'workers')
  --seed N         seed (overrides 'seed')
  --debug          show stack traces on errors
  -h, --help       this help

Examples:
  deno task data prepare
  deno task data prepare --config configs/gap-replay.yaml --output /scratch/gap-replay --workers 16
  deno task pretrain --data runs/data/gap-replay/gap-replay --set data.valid_fraction=0.03125 \\
      --set model.vocab_size=32012
`;

/**
 * Parses `deno task data prepare` arguments and loads the config they name.
 *
 * @example
 * ```ts
 * import { prepareConfigFromArgs } from "./prepare.ts";
 * const config = await prepareConfigFromArgs(["--output", "/tmp/gap"]);
 * console.log(config.output); // /tmp/gap
 * ```
 */
export async function prepareConfigFromArgs(args: string[]): Promise<PrepareConfig> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      output: { type: "string" },
      workers: { type: "string" },
      seed: { type: "string" },
      debug: { type: "boolean" },
    },
  });
  const config = await loadPrepareConfig(
    values.config ?? new URL("../configs/gap-replay.yaml", import.meta.url).pathname,
  );
  const int = (flag: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`--${flag} must be an integer ≥ ${min} (got '${v}')`);
    }
    return n;
  };
  if (values.output !== undefined) config.output = values.output;
  if (values.workers !== undefined) config.workers = int("workers", values.workers, 1);
  if (values.seed !== undefined) config.seed = int("seed", values.seed, 0);
  return config;
}
