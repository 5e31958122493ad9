/**
 * The tokenize step (`deno task data tokenize`): a JSONL corpus → a Megatron indexed dataset
 * `{outputPrefix}_{key}_document.{bin,idx}`, as Megatron's `tools/preprocess_data.py` does.
 *
 * Streaming with bounded memory: the input is read in chunks (plain or `.gz`), lines are parsed on the main
 * thread (so errors name `file:line`), batches of texts go to a pool of Deno workers running
 * `tokenizer_worker.ts`, and results are written in input order as they complete, with at most two batches in
 * flight per worker. Only the per-document sizes stay in memory. Outputs appear atomically.
 *
 * @example
 * ```ts
 * import { tokenizeJsonl } from "./tokenize_job.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/c.jsonl`, '{"text": "Aspirin inhibits COX-1."}\n');
 * const report = await tokenizeJsonl({ input: `${dir}/c.jsonl`, outputPrefix: `${dir}/c`, workers: 1 });
 * console.log(report.prefix, report.documents); // …/c_text_document 1
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Tokenizer } from "./tokenizer.ts";
import type { EncodeOptions, Llama2Options } from "./tokenizer.ts";
import type { TokenizerWorkerInit, TokenizerWorkerResult } from "./tokenizer_worker.ts";
import { refuseOverwritingInputs, splitLines } from "./clean/jsonl.ts";
import { documentPrefix, IndexedDatasetWriter, optimalDtype, type TokenDtype } from "./indexed_dataset.ts";

/**
 * Options of {@linkcode tokenizeJsonl}.
 *
 * @example
 * ```ts
 * import type { TokenizeOptions } from "./tokenize_job.ts";
 * const options: TokenizeOptions = { input: "corpus.jsonl", outputPrefix: "out/gap", workers: 4, appendEod: true };
 * ```
 */
export interface TokenizeOptions {
  /** JSONL input (`.jsonl` or `.jsonl.gz`), one JSON object per line; several are written in order. */
  input: string | readonly string[];
  /** Output prefix; files are `{outputPrefix}_{jsonKey}_document.{bin,idx}`. */
  outputPrefix: string;
  /** Tokenizer workers (default: the number of cores, at most 8). */
  workers?: number;
  /** Field holding the text (default `text`). */
  jsonKey?: string;
  /** Prepend `<s>` to every document (default true). */
  addBos?: boolean;
  /** Append the end-of-document token `</s>` to every document (default false, as Megatron). */
  appendEod?: boolean;
  /** Add Meditron's 12 bracket tokens (`[bib_ref]` …) to the Llama-2 vocabulary. */
  bracketTokens?: boolean;
  /** An HF `tokenizer.json` to use instead of Llama-2's. */
  tokenizerJson?: string;
  /** UTF-8 bytes of text per worker batch (default 1 MiB). */
  batchBytes?: number;
  /** Called after each written batch. */
  onProgress?: (progress: TokenizeProgress) => void;
}

/**
 * Progress of a running tokenize job.
 *
 * @example
 * ```ts
 * import type { TokenizeProgress } from "./tokenize_job.ts";
 * const p: TokenizeProgress = { bytes: 1e6, totalBytes: 4e6, documents: 120, tokens: 250000, seconds: 0.5 };
 * ```
 */
export interface TokenizeProgress {
  /** Input bytes (as stored on disk, all inputs) whose documents are written. */
  bytes: number;
  /** Size of the input files. */
  totalBytes: number;
  /** Documents written. */
  documents: number;
  /** Tokens written. */
  tokens: number;
  /** Seconds since the start. */
  seconds: number;
}

/**
 * Outcome of {@linkcode tokenizeJsonl}.
 *
 * @example
 * ```ts
 * import type { TokenizeReport } from "./tokenize_job.ts";
 * const r: TokenizeReport = {
 *   inputs: ["c.jsonl"], documentsPerInput: [1], prefix: "out/c_text_document", dtype: "uint16",
 *   vocabSize: 32000, documents: 1, tokens: 9, skippedEmpty: 0, invalidUtf8Lines: 0,
 *   bytes: 40, seconds: 0.2, mbPerSecond: 0.0002, workers: 1,
 * };
 * ```
 */
export interface TokenizeReport {
  /** The input files. */
  inputs: string[];
  /** Documents written from each input. */
  documentsPerInput: number[];
  /** Prefix of the written dataset. */
  prefix: string;
  /** Token dtype of the `.bin`. */
  dtype: TokenDtype;
  /** Size of the tokenizer's vocabulary (the smallest `model.vocab_size` that can train on the data). */
  vocabSize: number;
  /** Documents written. */
  documents: number;
  /** Tokens written. */
  tokens: number;
  /** Lines whose text was empty or whitespace (not written). */
  skippedEmpty: number;
  /** Lines that were not valid UTF-8: tokenized with U+FFFD in place of the invalid bytes. */
  invalidUtf8Lines: number;
  /** Input bytes. */
  bytes: number;
  /** Wall time. */
  seconds: number;
  /** Input megabytes (10^6 bytes) per second. */
  mbPerSecond: number;
  /** Workers used. */
  workers: number;
}

/** One pending request of a worker. */
interface Pending {
  resolve: (result: TokenizerWorkerResult) => void;
  reject: (error: Error) => void;
}

/**
 * A pool of `tokenizer_worker.ts` workers; each answers its requests in order, so a FIFO per worker pairs
 * replies with requests.
 *
 * @example
 * ```ts
 * import { TokenizerPool } from "./tokenize_job.ts";
 * const pool = await TokenizerPool.start(2, { llama2: {} });
 * const { ids, lengths } = await pool.encode(["Hello world"], { addBos: true });
 * pool.terminate();
 * console.log(ids, lengths); // Int32Array [1, 15043, 3186] Int32Array [3]
 * ```
 */
export class TokenizerPool {
  readonly #workers: Worker[];
  readonly #queues: Pending[][];
  #failure: Error | undefined;

  private constructor(workers: Worker[]) {
    this.#workers = workers;
    this.#queues = workers.map(() => []);
  }

  /**
   * Starts `count` workers and waits until each has built its tokenizer.
   *
   * @example
   * ```ts
   * import { TokenizerPool } from "./tokenize_job.ts";
   * const pool = await TokenizerPool.start(1, { llama2: { bracketTokens: true } });
   * pool.terminate();
   * ```
   */
  static async start(count: number, init: TokenizerWorkerInit): Promise<TokenizerPool> {
    const url = new URL("./tokenizer_worker.ts", import.meta.url);
    const workers = Array.from({ length: count }, () => new Worker(url, { type: "module" }));
    const pool = new TokenizerPool(workers);
    try {
      await Promise.all(workers.map((worker, w) =>
        new Promise<void>((resolve, reject) => {
          worker.onerror = (e: ErrorEvent) => {
            e.preventDefault();
            reject(new Error(`tokenizer worker failed to start: ${e.message}`));
          };
          worker.onmessage = () => {
            pool.#listen(worker, w);
            resolve();
          };
          worker.postMessage(init);
        })
      ));
    } catch (e) {
      pool.terminate();
      throw e;
    }
    return pool;
  }

  #listen(worker: Worker, w: number): void {
    worker.onmessage = (e: MessageEvent<TokenizerWorkerResult>) => this.#queues[w].shift()?.resolve(e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#failure = new Error(`tokenizer worker ${w} failed: ${e.message}`);
      for (const queue of this.#queues) for (const p of queue.splice(0)) p.reject(this.#failure);
    };
  }

  /** Number of workers. */
  get size(): number {
    return this.#workers.length;
  }

  /**
   * Encodes a batch on the least-busy worker.
   *
   * @example
   * ```ts
   * import { TokenizerPool } from "./tokenize_job.ts";
   * const pool = await TokenizerPool.start(1, { llama2: {} });
   * console.log((await pool.encode(["a", "b"], { addBos: false })).lengths); // Int32Array [1, 1]
   * pool.terminate();
   * ```
   */
  encode(texts: string[], options: EncodeOptions): Promise<TokenizerWorkerResult> {
    if (this.#failure) return Promise.reject(this.#failure);
    let w = 0;
    for (let i = 1; i < this.#queues.length; i++) if (this.#queues[i].length < this.#queues[w].length) w = i;
    return new Promise((resolve, reject) => {
      this.#queues[w].push({ resolve, reject });
      this.#workers[w].postMessage({ texts, options });
    });
  }

  /**
   * Stops every worker.
   *
   * @example
   * ```ts
   * import { TokenizerPool } from "./tokenize_job.ts";
   * (await TokenizerPool.start(1, { llama2: {} })).terminate();
   * ```
   */
  terminate(): void {
    for (const worker of this.#workers) worker.terminate();
    const stopped = new Error("tokenizer pool terminated");
    for (const queue of this.#queues) for (const p of queue.splice(0)) p.reject(stopped);
  }
}

/**
 * Yields the lines of a text file (`.gz` decompressed; `\r\n` or `\n` ends a line) with their 1-based numbers,
 * the count of raw bytes read so far and whether the line was invalid UTF-8 (decoded with U+FFFD
 * replacements), reading in chunks (only the current chunk and one partial line are held; each byte is
 * scanned once, see {@linkcode splitLines}).
 *
 * @example
 * ```ts
 * import { readLines } from "./tokenize_job.ts";
 * const path = `${Deno.makeTempDirSync()}/a.txt`;
 * Deno.writeTextFileSync(path, "x\ny\n");
 * for await (const { line, number } of readLines(path)) console.log(number, line); // 1 x, 2 y
 * ```
 */
export async function* readLines(
  path: string,
): AsyncGenerator<{ line: string; number: number; bytesRead: number; invalidUtf8: boolean }> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw new Error(`${path}: cannot open (${(e as Error).message})`);
  }
  let bytesRead = 0;
  let stream: ReadableStream<Uint8Array> = file.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytesRead += chunk.length;
        controller.enqueue(chunk);
      },
    }),
  );
  if (path.endsWith(".gz")) {
    stream = stream.pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    );
  }
  const reader = stream.getReader();
  const chunks = async function* (): AsyncGenerator<Uint8Array> {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      yield value;
    }
  };
  try {
    for await (const { text, line, invalidUtf8 } of splitLines(chunks())) {
      yield { line: text, number: line, bytesRead, invalidUtf8 };
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * The text of one JSONL line, or `undefined` for a blank line; errors name `file:line`.
 *
 * @example
 * ```ts
 * import { textOfLine } from "./tokenize_job.ts";
 * console.log(textOfLine('{"text": "hi", "id": 3}', "text", "c.jsonl", 1)); // hi
 * ```
 */
export function textOfLine(line: string, key: string, file: string, number: number): string | undefined {
  const trimmed = line.trim();
  if (trimmed.length === 0) return undefined;
  let obj: unknown;
  try {
    obj = JSON.parse(trimmed);
  } catch (e) {
    throw new Error(`${file}:${number}: malformed JSON (${(e as Error).message})`);
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
    throw new Error(`${file}:${number}: expected a JSON object`);
  }
  const value = (obj as Record<string, unknown>)[key];
  if (typeof value !== "string") throw new Error(`${file}:${number}: missing string field '${key}'`);
  return value;
}

/** The tokenizer init message and vocabulary size for the options. */
async function tokenizerSetup(
  options: TokenizeOptions,
): Promise<{ init: TokenizerWorkerInit; tok: Tokenizer }> {
  if (options.tokenizerJson !== undefined) {
    const tok = await Tokenizer.fromFile(options.tokenizerJson);
    return { init: { json: JSON.parse(await Deno.readTextFile(options.tokenizerJson)) }, tok };
  }
  const llama2: Llama2Options = { bracketTokens: options.bracketTokens ?? false };
  return { init: { llama2 }, tok: Tokenizer.llama2(llama2) };
}

/**
 * Tokenizes a JSONL corpus into `{outputPrefix}_{jsonKey}_document.{bin,idx}`; document order is the input
 * order whatever the worker count. Nothing is left under the final names if it fails.
 *
 * @example
 * ```ts
 * import { tokenizeJsonl } from "./tokenize_job.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/c.jsonl`, '{"text": "Hello world"}\n');
 * const r = await tokenizeJsonl({ input: `${dir}/c.jsonl`, outputPrefix: `${dir}/c`, workers: 1, appendEod: true });
 * console.log(r.tokens); // 4: <s> ▁Hello ▁world </s>
 * ```
 */
export async function tokenizeJsonl(options: TokenizeOptions): Promise<TokenizeReport> {
  const t0 = performance.now();
  const inputs = typeof options.input === "string" ? [options.input] : [...options.input];
  if (inputs.length === 0) throw new Error("tokenize needs at least one input");
  const key = options.jsonKey ?? "text";
  const workers = options.workers ?? Math.max(1, Math.min(8, navigator.hardwareConcurrency));
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be ≥ 1 (got ${workers})`);
  const batchBytes = options.batchBytes ?? 1 << 20;
  const encodeOptions: EncodeOptions = { addBos: options.addBos ?? true, addEos: options.appendEod ?? false };
  const sizes: number[] = [];
  for (const input of inputs) {
    try {
      sizes.push((await Deno.stat(input)).size);
    } catch (e) {
      throw new Error(`${input}: cannot read input (${(e as Error).message})`);
    }
  }
  const prefix = documentPrefix(options.outputPrefix, key);
  await refuseOverwritingInputs(
    inputs.map((input) => ["--input", input] as const),
    [["--output-prefix", `${prefix}.bin`], ["--output-prefix", `${prefix}.idx`]],
  );
  const totalBytes = sizes.reduce((a, b) => a + b, 0);
  const { init, tok } = await tokenizerSetup(options);
  const dtype = optimalDtype(tok.vocabSize);
  const pool = await TokenizerPool.start(workers, init);
  const writer = await IndexedDatasetWriter.create(prefix, { dtype });
  const inFlight: { result: Promise<TokenizerWorkerResult>; bytes: number }[] = [];
  const documentsPerInput = inputs.map(() => 0);
  let skippedEmpty = 0, invalidUtf8Lines = 0;
  const writeOldest = async () => {
    const { result, bytes } = inFlight.shift()!;
    const { ids, lengths } = await result;
    await writer.addMany(ids, lengths);
    options.onProgress?.({
      bytes,
      totalBytes,
      documents: writer.documents,
      tokens: writer.tokens,
      seconds: (performance.now() - t0) / 1000,
    });
  };
  const submit = async (texts: string[], bytes: number) => {
    const result = pool.encode(texts, encodeOptions);
    result.catch(() => {}); // observed when written; avoids an unhandled rejection meanwhile
    inFlight.push({ result, bytes });
    while (inFlight.length >= 2 * workers) await writeOldest();
  };
  try {
    let batch: string[] = [], size = 0, before = 0, bytes = 0;
    for (let f = 0; f < inputs.length; f++) {
      for await (const { line, number, bytesRead, invalidUtf8 } of readLines(inputs[f])) {
        if (invalidUtf8) invalidUtf8Lines++;
        const text = textOfLine(line, key, inputs[f], number);
        bytes = before + bytesRead;
        if (text === undefined) continue;
        if (text.trim().length === 0) {
          skippedEmpty++;
          continue;
        }
        documentsPerInput[f]++;
        batch.push(text);
        size += text.length;
        if (size >= batchBytes) {
          await submit(batch, bytes);
          batch = [];
          size = 0;
        }
      }
      before += sizes[f];
    }
    if (batch.length > 0) await submit(batch, totalBytes);
    while (inFlight.length > 0) await writeOldest();
  } catch (e) {
    pool.terminate();
    await writer.abort();
    throw e;
  }
  pool.terminate();
  if (writer.documents === 0) {
    await writer.abort();
    throw new Error(`${inputs.join(", ")}: no documents (no line has a non-empty '${key}')`);
  }
  const summary = await writer.close();
  const seconds = (performance.now() - t0) / 1000;
  return {
    inputs,
    documentsPerInput,
    prefix: summary.prefix,
    dtype: summary.dtype,
    vocabSize: tok.vocabSize,
    documents: summary.documents,
    tokens: summary.tokens,
    skippedEmpty,
    invalidUtf8Lines,
    bytes: totalBytes,
    seconds,
    mbPerSecond: totalBytes / 1e6 / seconds,
    workers,
  };
}

/**
 * `--help` of `deno task data tokenize`.
 *
 * @example
 * ```ts
 * import { HELP_TOKENIZE } from "./tokenize_job.ts";
 * console.log(HELP_TOKENIZE.split("\n")[0]); // Usage: deno task data tokenize …
 * ```
 */
export const HELP_TOKENIZE = `Usage: deno task data tokenize --input FILE --output-prefix PREFIX [options]

Tokenizes a JSONL corpus with the Llama-2 tokenizer into a Megatron indexed dataset
PREFIX_text_document.{bin,idx} (uint16 tokens for vocabularies under 65500, else int32). Streams the
input (plain or .gz), tokenizes in parallel workers and keeps the input order.

Options:
  --input FILE          JSONL corpus, one {"text": …} object per line (.jsonl or .jsonl.gz); repeat
                        to write several files into one dataset, in order
  --output-prefix P     output prefix: writes P_<json-key>_document.bin and .idx
  --workers N           tokenizer workers (default: cores, at most 8)
  --json-key KEY        field holding the text (default: text)
  --append-eod          append </s> to every document (Megatron's --append-eod)
  --no-bos              do not prepend <s> to every document
  --bracket-tokens      add Meditron's 12 bracket tokens ([bib_ref] … [/formula]) to the vocabulary
  --tokenizer FILE      an HF tokenizer.json (BPE) instead of Llama-2's
  --batch-bytes N       text bytes per worker batch (default 1048576)
  --debug               show stack traces on errors
  -h, --help            this help

Examples:
  deno task data tokenize --input corpus.jsonl --output-prefix data/gap --append-eod
  deno task data tokenize --input pubmed.jsonl.gz --output-prefix data/pubmed --workers 16 --append-eod \\
      --bracket-tokens
`;

/**
 * Parses `deno task data tokenize` arguments into {@linkcode TokenizeOptions}.
 *
 * @example
 * ```ts
 * import { parseTokenizeArgs } from "./tokenize_job.ts";
 * const o = parseTokenizeArgs(["--input", "c.jsonl", "--output-prefix", "out/c", "--workers", "2"]);
 * console.log(o.workers); // 2
 * ```
 */
export function parseTokenizeArgs(args: string[]): TokenizeOptions {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      input: { type: "string", multiple: true },
      "output-prefix": { type: "string" },
      workers: { type: "string" },
      "json-key": { type: "string" },
      "append-eod": { type: "boolean" },
      "no-bos": { type: "boolean" },
      "bracket-tokens": { type: "boolean" },
      tokenizer: { type: "string" },
      "batch-bytes": { type: "string" },
      debug: { type: "boolean" },
    },
  });
  if (!values.input?.length) throw new Error("tokenize needs --input FILE");
  if (!values["output-prefix"]) throw new Error("tokenize needs --output-prefix PREFIX");
  const int = (name: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`--${name} must be a positive integer (got '${value}')`);
    }
    return n;
  };
  return {
    input: values.input.length === 1 ? values.input[0] : values.input,
    outputPrefix: values["output-prefix"],
    workers: int("workers", values.workers),
    jsonKey: values["json-key"],
    appendEod: values["append-eod"] ?? false,
    addBos: !values["no-bos"],
    bracketTokens: values["bracket-tokens"] ?? false,
    tokenizerJson: values.tokenizer,
    batchBytes: int("batch-bytes", values["batch-bytes"]),
  };
}
