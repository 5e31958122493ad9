/**
 * GPT training samples over Megatron indexed datasets: split strings (`"969,30,1"` → train/valid/test
 * document ranges), per-split sample indices cached next to the data, and blends of several datasets by
 * weight (`"0.3 data/guidelines 0.7 data/pubmed"`).
 *
 * Samples are packed `seq + 1`-token windows over the concatenation of epochs; epoch `e` lists the split's
 * documents in a seeded order. Window `w` starts at token `w·seq` of that stream (windows overlap by one
 * token), so one epoch's windows use every token once as an input. Sample order is a seeded permutation
 * within consecutive blocks of one epoch's worth of windows. Every index is extended on demand, so sample `i`
 * is a pure function of (files, seed, seq, split, i) — independent of how many samples a run asks for, and
 * resume is exact given consumed samples. Blends pick for sample `i` the dataset with the largest error
 * `w_d·max(i, 1) − count_d` (Megatron's `build_blending_indices`).
 *
 * @example
 * ```ts
 * import { BlendedSamples } from "./blend.ts";
 * import { writeIndexedDataset } from "./indexed_dataset.ts";
 * const dir = Deno.makeTempDirSync();
 * await writeIndexedDataset(`${dir}/a`, [[1, 5, 6, 7, 2], [1, 8, 9, 2]], "uint16");
 * using samples = await BlendedSamples.open(`${dir}/a`, { seq: 3, seed: 1, numSamples: 4 });
 * console.log(samples.sample(0).length); // 4
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { IndexedDataset, resolvePrefix, writeFileAtomic } from "./indexed_dataset.ts";
import { shuffleInPlace, type TokenBatch, type TokenDocuments } from "./gpt_dataset.ts";

/**
 * A part of a split: training, validation or test.
 *
 * @example
 * ```ts
 * import type { SplitPart } from "./blend.ts";
 * const part: SplitPart = "valid";
 * ```
 */
export type SplitPart = "train" | "valid" | "test";

const PARTS: readonly SplitPart[] = ["train", "valid", "test"];

/**
 * Parses a Megatron split string (`"969,30,1"`, `"98/2/0"`, `"0.9,0.1"`) into normalised fractions
 * train, valid, test (missing parts are 0).
 *
 * @example
 * ```ts
 * import { parseSplit } from "./blend.ts";
 * console.log(parseSplit("969,30,1")); // [0.969, 0.03, 0.001]
 * ```
 */
export function parseSplit(split: string): [number, number, number] {
  const parts = split.split(/[,/]/).map((s) => s.trim());
  const values = parts.map(Number);
  if (parts.length > 3 || parts.some((s) => s === "") || values.some((v) => !Number.isFinite(v) || v < 0)) {
    throw new Error(`split '${split}': expected up to three non-negative numbers like "969,30,1"`);
  }
  while (values.length < 3) values.push(0);
  const sum = values[0] + values[1] + values[2];
  if (sum <= 0) throw new Error(`split '${split}': the parts sum to 0`);
  return [values[0] / sum, values[1] / sum, values[2] / sum];
}

/** Python's `round` (half to even), which Megatron's split arithmetic uses. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Document ranges `[start, end)` of each part of a split over `count` documents, with Megatron's
 * arithmetic (`_get_split_indices`): boundaries at cumulative `round(fraction · count)`, shifted so that
 * the last is `count`.
 *
 * @example
 * ```ts
 * import { splitRanges } from "./blend.ts";
 * console.log(splitRanges("969,30,1", 1000)); // { train: [0, 969], valid: [969, 999], test: [999, 1000] }
 * ```
 */
export function splitRanges(split: string, count: number): Record<SplitPart, [number, number]> {
  const fractions = parseSplit(split);
  const bounds = [0];
  for (const f of fractions) bounds.push(bounds[bounds.length - 1] + roundHalfEven(f * count));
  const diff = bounds[3] - count;
  for (let i = 1; i < 4; i++) bounds[i] = Math.max(0, bounds[i] - diff);
  return { train: [bounds[0], bounds[1]], valid: [bounds[1], bounds[2]], test: [bounds[2], bounds[3]] };
}

/**
 * The split string that gives validation the fraction `validFraction` of the documents and no test part.
 *
 * @example
 * ```ts
 * import { splitFromValidFraction } from "./blend.ts";
 * console.log(splitFromValidFraction(0.05)); // "0.95,0.05,0"
 * ```
 */
export function splitFromValidFraction(validFraction: number): string {
  if (!(validFraction >= 0 && validFraction < 1)) {
    throw new Error(`valid fraction ${validFraction} not in [0, 1)`);
  }
  return `${+(1 - validFraction).toPrecision(12)},${validFraction},0`;
}

/**
 * One dataset of a blend.
 *
 * @example
 * ```ts
 * import type { DataSpecEntry } from "./blend.ts";
 * const entry: DataSpecEntry = { weight: 0.3, prefix: "data/guidelines_text_document" };
 * ```
 */
export interface DataSpecEntry {
  /** Normalised weight (the weights of a spec sum to 1). */
  weight: number;
  /** Dataset prefix as written (resolved when opened). */
  prefix: string;
}

/**
 * Parses a data spec: a single prefix, prefixes with weights (`"0.3 data/a 0.7 data/b"`, Megatron's
 * `--data-path`), or several prefixes without weights (equal weights). Weights are normalised.
 *
 * @example
 * ```ts
 * import { parseDataSpec } from "./blend.ts";
 * console.log(parseDataSpec("3 data/a 1 data/b")); // [{ weight: 0.75, prefix: "data/a" }, { weight: 0.25, … }]
 * ```
 */
export function parseDataSpec(spec: string): DataSpecEntry[] {
  const words = spec.trim().split(/\s+/).filter((w) => w.length > 0);
  const isNumber = (w: string) => /^[+]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(w);
  if (words.length === 0) throw new Error("data spec is empty");
  let entries: DataSpecEntry[];
  if (words.every((w) => !isNumber(w))) {
    entries = words.map((prefix) => ({ weight: 1, prefix }));
  } else {
    if (words.length % 2 !== 0 || words.some((w, i) => isNumber(w) !== (i % 2 === 0))) {
      throw new Error(`data spec '${spec}': expected PREFIX or 'WEIGHT PREFIX WEIGHT PREFIX …'`);
    }
    entries = [];
    for (let i = 0; i < words.length; i += 2) {
      entries.push({ weight: Number(words[i]), prefix: words[i + 1] });
    }
  }
  const sum = entries.reduce((a, e) => a + e.weight, 0);
  if (!(sum > 0) || entries.some((e) => !(e.weight > 0))) {
    throw new Error(`data spec '${spec}': weights must be positive`);
  }
  return entries.map((e) => ({ weight: e.weight / sum, prefix: e.prefix }));
}

/**
 * Whether a data source names indexed data (rather than a JSONL file or `embedded`): a blend of several
 * words, a `.idx`/`.bin` path, or a prefix whose `.idx` exists.
 *
 * @example
 * ```ts
 * import { isIndexedSpec } from "./blend.ts";
 * console.log(isIndexedSpec("embedded"), isIndexedSpec("0.5 a 0.5 b")); // false true
 * ```
 */
export function isIndexedSpec(source: string): boolean {
  const s = source.trim();
  if (/\s/.test(s) || /\.(idx|bin)$/.test(s)) return true;
  return resolvePrefix(s) !== undefined;
}

// ---------------------------------------------------------------------------------------------------------
// One split of one dataset

/** A 32-bit hash of integers (murmur3 finaliser per word), for seeding. */
function mix(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    let k = Math.imul(w | 0, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
    h ^= Math.floor(w / 4294967296) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const SALT_EPOCH = 0x0d0c, SALT_SHUFFLE = 0x5a5a;

function grow(a: Int32Array, need: number): Int32Array {
  if (need <= a.length) return a;
  const out = new Int32Array(Math.max(need, a.length * 2, 16));
  out.set(a);
  return out;
}

/**
 * Options of {@linkcode SplitSamples}.
 *
 * @example
 * ```ts
 * import type { SplitSamplesOptions } from "./blend.ts";
 * const options: SplitSamplesOptions = { seq: 2048, seed: 1234, first: 0, end: 969 };
 * ```
 */
export interface SplitSamplesOptions {
  /** Tokens per training sequence (a sample holds seq + 1). */
  seq: number;
  /** Seed of the document and sample orders. */
  seed: number;
  /** First document of the split. */
  first: number;
  /** One past the last document of the split. */
  end: number;
  /** Name used in errors (default "documents"). */
  name?: string;
}

/**
 * The arrays of a sample index, Megatron-style: `docIdx` (documents in epoch order), `sampleIdx` (pairs
 * `[position in docIdx, token offset]` where each window starts, one more than the windows), `shuffleIdx`
 * (window of each sample).
 *
 * @example
 * ```ts
 * import type { SampleIndexArrays } from "./blend.ts";
 * const a: SampleIndexArrays = { docIdx: Int32Array.of(1, 0), sampleIdx: Int32Array.of(0, 0, 0, 3), shuffleIdx: Int32Array.of(0) };
 * ```
 */
export interface SampleIndexArrays {
  /** Document ids, epoch after epoch. */
  docIdx: Int32Array;
  /** `[docIdx position, offset]` of each window start. */
  sampleIdx: Int32Array;
  /** Window of each sample. */
  shuffleIdx: Int32Array;
}

/**
 * GPT samples of one split (a document range) of one token collection. Indices grow on demand; sample `k`
 * depends only on (documents, seed, seq, range, k).
 *
 * @example
 * ```ts
 * import { SplitSamples } from "./blend.ts";
 * import { InMemoryDocuments } from "./gpt_dataset.ts";
 * const docs = new InMemoryDocuments([[1, 5, 6, 2], [1, 7, 8, 9, 2]]);
 * const s = new SplitSamples(docs, { seq: 3, seed: 1, first: 0, end: 2 });
 * console.log(s.samplesPerEpoch, s.sample(0).length); // 3 4
 * ```
 */
export class SplitSamples {
  /** Tokens per sequence. */
  readonly seq: number;
  /** First document of the split. */
  readonly first: number;
  /** One past the last document. */
  readonly end: number;
  /** Tokens in one epoch (all documents of the range). */
  readonly tokensPerEpoch: number;
  /** Windows per shuffle block: `max(1, floor(tokensPerEpoch / seq))`, one epoch's worth. */
  readonly samplesPerEpoch: number;
  readonly #docs: TokenDocuments;
  readonly #seed: number;
  #docIdx: Int32Array;
  #docLen: number;
  #starts: Int32Array;
  #windows: number; // window starts known: #windows + 1 pairs are valid
  #shuffle: Int32Array;
  #shuffled: number;

  /** Builds an empty index (or adopts `cached`, a prefix of the same index) over `docs`. */
  constructor(docs: TokenDocuments, options: SplitSamplesOptions, cached?: SampleIndexArrays) {
    const { seq, seed, first, end } = options;
    if (!Number.isInteger(seq) || seq < 1) throw new Error(`seq must be a positive integer (got ${seq})`);
    if (
      !(Number.isInteger(first) && Number.isInteger(end) && 0 <= first && first <= end && end <= docs.count)
    ) {
      throw new RangeError(`document range [${first}, ${end}) outside [0, ${docs.count})`);
    }
    this.seq = seq;
    this.first = first;
    this.end = end;
    this.#docs = docs;
    this.#seed = seed;
    let tokens = 0;
    for (let d = first; d < end; d++) tokens += docs.length(d);
    if (tokens < seq + 1) {
      const name = options.name ?? "documents", count = end - first;
      throw new Error(
        `${name}: ${count} documents hold ${tokens} tokens: not enough for one sample of ${seq + 1} tokens`,
      );
    }
    this.tokensPerEpoch = tokens;
    this.samplesPerEpoch = Math.max(1, Math.floor(tokens / seq));
    if (cached) {
      const n = end - first;
      const windows = cached.sampleIdx.length / 2 - 1;
      if (
        cached.docIdx.length % n !== 0 || !Number.isInteger(windows) || windows < 0 ||
        cached.shuffleIdx.length % this.samplesPerEpoch !== 0 || cached.shuffleIdx.length !== windows ||
        cached.sampleIdx[2 * windows] >= cached.docIdx.length
      ) {
        throw new Error(`${options.name ?? "documents"}: cached sample index is inconsistent`);
      }
      this.#docIdx = cached.docIdx;
      this.#docLen = cached.docIdx.length;
      this.#starts = cached.sampleIdx;
      this.#windows = windows;
      this.#shuffle = cached.shuffleIdx;
      this.#shuffled = cached.shuffleIdx.length;
    } else {
      this.#docIdx = new Int32Array(0);
      this.#docLen = 0;
      this.#starts = new Int32Array(2);
      this.#windows = 0;
      this.#shuffle = new Int32Array(0);
      this.#shuffled = 0;
      const [pos, off] = this.#advance(0, 0, 0);
      this.#starts[0] = pos;
      this.#starts[1] = off;
    }
  }

  /** Epochs of the document order built so far. */
  get epochs(): number {
    return this.#docLen / (this.end - this.first);
  }

  /** Samples whose index is built (a multiple of {@linkcode samplesPerEpoch}). */
  get built(): number {
    return this.#shuffled;
  }

  /** Appends epochs until the document order has `need` entries. */
  #ensureDocs(need: number): void {
    const n = this.end - this.first;
    while (this.#docLen < need) {
      const perm = Int32Array.from({ length: n }, (_, i) => this.first + i);
      shuffleInPlace(perm, mix(this.#seed, this.epochs, SALT_EPOCH));
      if (this.#docLen + n > 0x7fffffff) throw new RangeError("sample index exceeds 2^31 document entries");
      this.#docIdx = grow(this.#docIdx, this.#docLen + n);
      this.#docIdx.set(perm, this.#docLen);
      this.#docLen += n;
    }
  }

  /** The position `n` tokens after `(pos, off)`, skipping empty documents. */
  #advance(pos: number, off: number, n: number): [number, number] {
    let remaining = n;
    while (true) {
      this.#ensureDocs(pos + 1);
      const left = this.#docs.length(this.#docIdx[pos]) - off;
      if (left > remaining) return [pos, off + remaining];
      remaining -= left;
      pos++;
      off = 0;
    }
  }

  /**
   * Builds the index for samples `[0, count)` (whole blocks of {@linkcode samplesPerEpoch}).
   *
   * @example
   * ```ts
   * import { SplitSamples } from "./blend.ts";
   * import { InMemoryDocuments } from "./gpt_dataset.ts";
   * const s = new SplitSamples(new InMemoryDocuments([[1, 2, 3, 4, 5]]), { seq: 2, seed: 0, first: 0, end: 1 });
   * s.ensure(5);
   * console.log(s.built); // 6
   * ```
   */
  ensure(count: number): void {
    const block = this.samplesPerEpoch;
    const blocks = Math.ceil(count / block);
    const windows = blocks * block;
    if (windows <= this.#shuffled) return;
    this.#starts = grow(this.#starts, 2 * (windows + 1));
    for (let w = this.#windows; w < windows; w++) {
      const [pos, off] = this.#advance(this.#starts[2 * w], this.#starts[2 * w + 1], this.seq);
      this.#starts[2 * w + 2] = pos;
      this.#starts[2 * w + 3] = off;
    }
    this.#windows = Math.max(this.#windows, windows);
    this.#shuffle = grow(this.#shuffle, windows);
    for (let c = this.#shuffled / block; c < blocks; c++) {
      const perm = Int32Array.from({ length: block }, (_, j) => c * block + j);
      this.#shuffle.set(shuffleInPlace(perm, mix(this.#seed, c, SALT_SHUFFLE)), c * block);
    }
    this.#shuffled = windows;
  }

  /**
   * The window index of sample `k` (before reading tokens).
   *
   * @example
   * ```ts
   * import { SplitSamples } from "./blend.ts";
   * import { InMemoryDocuments } from "./gpt_dataset.ts";
   * const s = new SplitSamples(new InMemoryDocuments([[1, 2, 3, 4, 5]]), { seq: 2, seed: 0, first: 0, end: 1 });
   * console.log(s.windowOf(0) < 2); // true
   * ```
   */
  windowOf(k: number): number {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`sample ${k} is not a non-negative integer`);
    this.ensure(k + 1);
    return this.#shuffle[k];
  }

  /**
   * The `seq + 1` tokens of window `w` (windows in stream order, before shuffling).
   *
   * @example
   * ```ts
   * import { SplitSamples } from "./blend.ts";
   * import { InMemoryDocuments } from "./gpt_dataset.ts";
   * const s = new SplitSamples(new InMemoryDocuments([[1, 2, 3, 4, 5]]), { seq: 2, seed: 0, first: 0, end: 1 });
   * console.log(s.window(1)); // Int32Array [3, 4, 5]
   * ```
   */
  window(w: number): Int32Array {
    if (!Number.isInteger(w) || w < 0) throw new RangeError(`window ${w} is not a non-negative integer`);
    if (w >= this.#windows) this.ensure(w + 1);
    const out = new Int32Array(this.seq + 1);
    let pos = this.#starts[2 * w], off = this.#starts[2 * w + 1], n = 0;
    while (n < out.length) {
      const doc = this.#docIdx[pos];
      const take = Math.min(this.#docs.length(doc) - off, out.length - n);
      if (take > 0) out.set(this.#docs.slice(doc, off, off + take), n);
      n += take;
      pos++;
      off = 0;
    }
    return out;
  }

  /**
   * The `seq + 1` tokens of sample `k` (any `k ≥ 0`).
   *
   * @example
   * ```ts
   * import { SplitSamples } from "./blend.ts";
   * import { InMemoryDocuments } from "./gpt_dataset.ts";
   * const s = new SplitSamples(new InMemoryDocuments([[1, 2, 3, 4, 5]]), { seq: 2, seed: 0, first: 0, end: 1 });
   * console.log(s.sample(7).length); // 3
   * ```
   */
  sample(k: number): Int32Array {
    return this.window(this.windowOf(k));
  }

  /**
   * The built index arrays (views; copy before mutating).
   *
   * @example
   * ```ts
   * import { SplitSamples } from "./blend.ts";
   * import { InMemoryDocuments } from "./gpt_dataset.ts";
   * const s = new SplitSamples(new InMemoryDocuments([[1, 2, 3, 4, 5]]), { seq: 2, seed: 0, first: 0, end: 1 });
   * s.ensure(2);
   * console.log(s.arrays().shuffleIdx.length); // 2
   * ```
   */
  arrays(): SampleIndexArrays {
    return {
      docIdx: this.#docIdx.subarray(0, this.#docLen),
      sampleIdx: this.#starts.subarray(0, 2 * (this.#shuffled + 1)),
      shuffleIdx: this.#shuffle.subarray(0, this.#shuffled),
    };
  }
}

// ---------------------------------------------------------------------------------------------------------
// The on-disk cache of a split's index

/**
 * How {@linkcode openSplitSamples} obtained an index: read from the cache, built and cached, or built
 * without caching.
 *
 * @example
 * ```ts
 * import type { CacheOutcome } from "./blend.ts";
 * const outcome: CacheOutcome = "hit";
 * ```
 */
export type CacheOutcome = "hit" | "built" | "uncached";

/**
 * Options of {@linkcode openSplitSamples}.
 *
 * @example
 * ```ts
 * import type { OpenSplitOptions } from "./blend.ts";
 * const o: OpenSplitOptions = { seq: 2048, seed: 1, first: 0, end: 100, numSamples: 1000, cache: true };
 * ```
 */
export interface OpenSplitOptions extends SplitSamplesOptions {
  /** Samples that will be read (the index is built for at least these). */
  numSamples: number;
  /** Read/write the index files next to the data (default true). */
  cache?: boolean;
}

/** The cache files of an index: `{prefix}_{key}_{doc,sample,shuffle}_idx.bin` and `{prefix}_{key}_index.json`. */
function cacheFiles(prefix: string, key: string) {
  const base = `${prefix}_${key}`;
  return {
    doc: `${base}_doc_idx.bin`,
    sample: `${base}_sample_idx.bin`,
    shuffle: `${base}_shuffle_idx.bin`,
    description: `${base}_index.json`,
  };
}

/** The cache key: hash of the index parameters and of the split's document sizes. */
function cacheKey(
  ds: IndexedDataset,
  o: SplitSamplesOptions,
): { key: string; description: Record<string, unknown> } {
  let fingerprint = 0x811c9dc5;
  for (let d = o.first; d < o.end; d++) fingerprint = Math.imul(fingerprint ^ ds.sizes[d], 0x01000193) >>> 0;
  const description = {
    format: "meditron-gpt-sample-index-1",
    seed: o.seed,
    seq: o.seq,
    first: o.first,
    end: o.end,
    documents: ds.count,
    tokens: ds.tokens,
    sizes_fnv1a: fingerprint,
  };
  const key = createHash("sha256").update(JSON.stringify(description)).digest("hex").slice(0, 16);
  return { key, description };
}

function asInt32(bytes: Uint8Array): Int32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Int32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >> 2);
}

async function readCache(files: ReturnType<typeof cacheFiles>): Promise<SampleIndexArrays | undefined> {
  try {
    const meta = JSON.parse(await Deno.readTextFile(files.description)) as Record<string, number>;
    const [doc, sample, shuffle] = await Promise.all(
      [files.doc, files.sample, files.shuffle].map((f) => Deno.readFile(f)),
    );
    if (
      doc.byteLength !== 4 * meta.doc_entries || sample.byteLength !== 8 * (meta.samples + 1) ||
      shuffle.byteLength !== 4 * meta.samples
    ) return undefined;
    return { docIdx: asInt32(doc), sampleIdx: asInt32(sample), shuffleIdx: asInt32(shuffle) };
  } catch {
    return undefined; // missing or unreadable: rebuild
  }
}

async function writeCache(
  files: ReturnType<typeof cacheFiles>,
  arrays: SampleIndexArrays,
  description: Record<string, unknown>,
): Promise<void> {
  const bytes = (a: Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  await writeFileAtomic(files.doc, bytes(arrays.docIdx));
  await writeFileAtomic(files.sample, bytes(arrays.sampleIdx));
  await writeFileAtomic(files.shuffle, bytes(arrays.shuffleIdx));
  const meta = { ...description, doc_entries: arrays.docIdx.length, samples: arrays.shuffleIdx.length };
  await writeFileAtomic(files.description, new TextEncoder().encode(JSON.stringify(meta, null, 2) + "\n"));
}

/**
 * The samples of a split of an indexed dataset, with the index read from (or written to) the cache files
 * `{prefix}_{key}_doc_idx.bin`, `…_sample_idx.bin`, `…_shuffle_idx.bin` and `…_index.json` next to the
 * data; `key` hashes seed, seq, document range and the split's sizes. A cache covering fewer samples than
 * asked is extended and rewritten (atomically, description last).
 *
 * @example
 * ```ts
 * import { openSplitSamples } from "./blend.ts";
 * import { IndexedDataset, writeIndexedDataset } from "./indexed_dataset.ts";
 * const prefix = `${Deno.makeTempDirSync()}/x`;
 * await writeIndexedDataset(prefix, [[1, 5, 6, 7, 8, 2]], "uint16");
 * using ds = IndexedDataset.open(prefix);
 * const { samples, outcome } = await openSplitSamples(ds, { seq: 2, seed: 1, first: 0, end: 1, numSamples: 3 });
 * console.log(outcome, samples.built); // built 3
 * ```
 */
export async function openSplitSamples(
  ds: IndexedDataset,
  options: OpenSplitOptions,
): Promise<{ samples: SplitSamples; outcome: CacheOutcome }> {
  const named = { ...options, name: options.name ?? ds.prefix };
  if (options.cache === false) {
    const samples = new SplitSamples(ds, named);
    samples.ensure(options.numSamples);
    return { samples, outcome: "uncached" };
  }
  const { key, description } = cacheKey(ds, options);
  const files = cacheFiles(ds.prefix, key);
  const cached = await readCache(files);
  if (cached) {
    try {
      const samples = new SplitSamples(ds, named, cached);
      if (samples.built >= options.numSamples) return { samples, outcome: "hit" };
    } catch {
      // inconsistent cache: rebuild below
    }
  }
  const samples = new SplitSamples(ds, named);
  samples.ensure(options.numSamples);
  await writeCache(files, samples.arrays(), description);
  return { samples, outcome: "built" };
}

// ---------------------------------------------------------------------------------------------------------
// Blends

/**
 * Options of {@linkcode BlendedSamples.open}.
 *
 * @example
 * ```ts
 * import type { BlendOptions } from "./blend.ts";
 * const o: BlendOptions = { seq: 2048, seed: 1234, numSamples: 100000, split: "969,30,1", part: "train" };
 * ```
 */
export interface BlendOptions {
  /** Tokens per sequence. */
  seq: number;
  /** Seed of the orders (the same for every dataset, as Megatron). */
  seed: number;
  /** Samples the run will read (sizes the cached indices; more can be read). */
  numSamples: number;
  /** Split string applied to each dataset (default "1,0,0": everything is training). */
  split?: string;
  /** Which part of the split (default "train"). */
  part?: SplitPart;
  /** Cache indices next to the data (default true). */
  cache?: boolean;
}

/**
 * One dataset in a blend: its weight and samples.
 *
 * @example
 * ```ts
 * import { SplitSamples, type BlendPart } from "./blend.ts";
 * import { InMemoryDocuments } from "./gpt_dataset.ts";
 * const samples = new SplitSamples(new InMemoryDocuments([[1, 2, 3]]), { seq: 2, seed: 0, first: 0, end: 1 });
 * const part: BlendPart = { name: "a", weight: 1, samples };
 * ```
 */
export interface BlendPart {
  /** Dataset name (its prefix). */
  name: string;
  /** Normalised weight. */
  weight: number;
  /** The dataset's samples. */
  samples: SplitSamples;
}

/**
 * Megatron's blending index (`build_blending_indices`): for each sample `i < size`, the dataset `d`
 * maximising `weights[d]·max(i, 1) − count_d` (ties: the first) and the sample of that dataset it takes
 * (`count_d` before the increment).
 *
 * @example
 * ```ts
 * import { buildBlendingIndex } from "./blend.ts";
 * console.log(buildBlendingIndex([0.75, 0.25], 4).datasetIndex); // Int32Array [0, 1, 0, 0]
 * ```
 */
export function buildBlendingIndex(
  weights: readonly number[],
  size: number,
): { datasetIndex: Int32Array; sampleIndex: Float64Array; counts: Float64Array } {
  const datasetIndex = new Int32Array(size), sampleIndex = new Float64Array(size);
  const counts = new Float64Array(weights.length);
  for (let i = 0; i < size; i++) {
    const x = Math.max(i, 1);
    let best = 0, bestError = weights[0] * x - counts[0];
    for (let d = 1; d < weights.length; d++) {
      const error = weights[d] * x - counts[d];
      if (error > bestError) {
        bestError = error;
        best = d;
      }
    }
    datasetIndex[i] = best;
    sampleIndex[i] = counts[best]++;
  }
  return { datasetIndex, sampleIndex, counts };
}

/**
 * Samples drawn from several datasets by weight ({@linkcode buildBlendingIndex}): sample `i` is sample
 * `sampleIndex[i]` of dataset `datasetIndex[i]`. The blending index grows on demand, so sample `i` does not
 * depend on how many samples were asked for.
 *
 * @example
 * ```ts
 * import { BlendedSamples, SplitSamples } from "./blend.ts";
 * import { InMemoryDocuments } from "./gpt_dataset.ts";
 * const a = new SplitSamples(new InMemoryDocuments([[1, 2, 3, 4]]), { seq: 2, seed: 0, first: 0, end: 1 });
 * const b = new SplitSamples(new InMemoryDocuments([[5, 6, 7, 8]]), { seq: 2, seed: 0, first: 0, end: 1 });
 * const blend = BlendedSamples.of([{ name: "a", weight: 0.75, samples: a }, { name: "b", weight: 0.25, samples: b }]);
 * console.log([0, 1, 2, 3].map((i) => blend.datasetOf(i))); // [0, 1, 0, 0]
 * ```
 */
export class BlendedSamples implements Disposable {
  /** Tokens per sequence. */
  readonly seq: number;
  /** The datasets. */
  readonly parts: readonly BlendPart[];
  readonly #opened: IndexedDataset[];
  #datasetIndex: Int32Array = new Int32Array(0);
  #sampleIndex: Float64Array = new Float64Array(0);

  private constructor(parts: BlendPart[], opened: IndexedDataset[]) {
    if (parts.length === 0) throw new Error("a blend needs at least one dataset");
    const seq = parts[0].samples.seq;
    if (parts.some((p) => p.samples.seq !== seq)) throw new Error("blended datasets must share seq");
    this.seq = seq;
    this.parts = parts;
    this.#opened = opened;
  }

  /**
   * A blend of already built samples (weights are used as given).
   *
   * @example
   * ```ts
   * import { BlendedSamples, SplitSamples } from "./blend.ts";
   * import { InMemoryDocuments } from "./gpt_dataset.ts";
   * const a = new SplitSamples(new InMemoryDocuments([[1, 2, 3]]), { seq: 2, seed: 0, first: 0, end: 1 });
   * console.log(BlendedSamples.of([{ name: "a", weight: 1, samples: a }]).sample(0)); // Int32Array [1, 2, 3]
   * ```
   */
  static of(parts: BlendPart[]): BlendedSamples {
    return new BlendedSamples(parts, []);
  }

  /**
   * Opens the datasets of a data spec (see {@linkcode parseDataSpec}) and loads or builds (and caches)
   * their indices for the chosen part of the split, sized for `numSamples` blended samples.
   *
   * @example
   * ```ts
   * import { BlendedSamples } from "./blend.ts";
   * import { writeIndexedDataset } from "./indexed_dataset.ts";
   * const dir = Deno.makeTempDirSync();
   * await writeIndexedDataset(`${dir}/a`, [[1, 5, 6, 7, 2], [1, 8, 9, 2]], "uint16");
   * await writeIndexedDataset(`${dir}/b`, [[1, 3, 4, 2], [1, 10, 11, 2]], "uint16");
   * using blend = await BlendedSamples.open(`0.7 ${dir}/a 0.3 ${dir}/b`, { seq: 3, seed: 1, numSamples: 10 });
   * console.log(blend.parts.length); // 2
   * ```
   */
  static async open(spec: string | DataSpecEntry[], options: BlendOptions): Promise<BlendedSamples> {
    const entries = typeof spec === "string" ? parseDataSpec(spec) : spec;
    const part = options.part ?? "train";
    if (!PARTS.includes(part)) throw new Error(`unknown split part '${part}'`);
    const { counts } = buildBlendingIndex(entries.map((e) => e.weight), options.numSamples);
    const opened: IndexedDataset[] = [];
    try {
      for (const e of entries) opened.push(IndexedDataset.open(e.prefix));
      const parts: BlendPart[] = [];
      for (let d = 0; d < opened.length; d++) {
        const ds = opened[d];
        const [first, end] = splitRanges(options.split ?? "1,0,0", ds.count)[part];
        const { samples } = await openSplitSamples(ds, {
          seq: options.seq,
          seed: options.seed,
          first,
          end,
          numSamples: Math.max(1, counts[d]),
          cache: options.cache,
          name: `${ds.prefix} (${part} documents [${first}, ${end}))`,
        });
        parts.push({ name: ds.prefix, weight: entries[d].weight, samples });
      }
      return new BlendedSamples(parts, opened);
    } catch (e) {
      for (const ds of opened) ds.close();
      throw e;
    }
  }

  /**
   * Which dataset sample `i` comes from.
   *
   * @example
   * ```ts
   * import { BlendedSamples, SplitSamples } from "./blend.ts";
   * import { InMemoryDocuments } from "./gpt_dataset.ts";
   * const a = new SplitSamples(new InMemoryDocuments([[1, 2, 3]]), { seq: 2, seed: 0, first: 0, end: 1 });
   * console.log(BlendedSamples.of([{ name: "a", weight: 1, samples: a }]).datasetOf(5)); // 0
   * ```
   */
  datasetOf(i: number): number {
    if (!Number.isInteger(i) || i < 0) throw new RangeError(`sample ${i} is not a non-negative integer`);
    if (i >= this.#datasetIndex.length) {
      const size = Math.max(i + 1, 2 * this.#datasetIndex.length, 1024);
      const index = buildBlendingIndex(this.parts.map((p) => p.weight), size);
      this.#datasetIndex = index.datasetIndex;
      this.#sampleIndex = index.sampleIndex;
    }
    return this.#datasetIndex[i];
  }

  /**
   * The `seq + 1` tokens of sample `i` (any `i ≥ 0`).
   *
   * @example
   * ```ts
   * import { BlendedSamples, SplitSamples } from "./blend.ts";
   * import { InMemoryDocuments } from "./gpt_dataset.ts";
   * const a = new SplitSamples(new InMemoryDocuments([[1, 2, 3]]), { seq: 2, seed: 0, first: 0, end: 1 });
   * console.log(BlendedSamples.of([{ name: "a", weight: 1, samples: a }]).sample(1)); // Int32Array [3, 1, 2]
   * ```
   */
  sample(i: number): Int32Array {
    const d = this.datasetOf(i);
    return this.parts[d].samples.sample(this.#sampleIndex[i]);
  }

  /**
   * Samples of about one epoch of every dataset (the sum of their {@linkcode SplitSamples.samplesPerEpoch}).
   *
   * @example
   * ```ts
   * import { BlendedSamples, SplitSamples } from "./blend.ts";
   * import { InMemoryDocuments } from "./gpt_dataset.ts";
   * const a = new SplitSamples(new InMemoryDocuments([[1, 2, 3, 4, 5]]), { seq: 2, seed: 0, first: 0, end: 1 });
   * console.log(BlendedSamples.of([{ name: "a", weight: 1, samples: a }]).samplesPerEpoch); // 2
   * ```
   */
  get samplesPerEpoch(): number {
    return this.parts.reduce((a, p) => a + p.samples.samplesPerEpoch, 0);
  }

  /**
   * A `[rows, seq]` batch of samples `first … first + rows − 1`: inputs are each sample's first `seq`
   * tokens, targets its last `seq`.
   *
   * @example
   * ```ts
   * import { BlendedSamples, SplitSamples } from "./blend.ts";
   * import { InMemoryDocuments } from "./gpt_dataset.ts";
   * const a = new SplitSamples(new InMemoryDocuments([[1, 2, 3]]), { seq: 2, seed: 0, first: 0, end: 1 });
   * const b = BlendedSamples.of([{ name: "a", weight: 1, samples: a }]).batch(0, 1);
   * console.log(b.tokens, b.targets); // Int32Array [1, 2] Int32Array [2, 3]
   * ```
   */
  batch(first: number, rows: number): TokenBatch {
    const seq = this.seq;
    const tokens = new Int32Array(rows * seq), targets = new Int32Array(rows * seq);
    for (let r = 0; r < rows; r++) {
      const s = this.sample(first + r);
      tokens.set(s.subarray(0, seq), r * seq);
      targets.set(s.subarray(1), r * seq);
    }
    return { tokens, targets, lossMask: new Float32Array(rows * seq).fill(1) };
  }

  /**
   * Closes the datasets opened by {@linkcode BlendedSamples.open}.
   *
   * @example
   * ```ts
   * import { BlendedSamples, SplitSamples } from "./blend.ts";
   * import { InMemoryDocuments } from "./gpt_dataset.ts";
   * const a = new SplitSamples(new InMemoryDocuments([[1, 2, 3]]), { seq: 2, seed: 0, first: 0, end: 1 });
   * BlendedSamples.of([{ name: "a", weight: 1, samples: a }]).close();
   * ```
   */
  close(): void {
    for (const ds of this.#opened) ds.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
