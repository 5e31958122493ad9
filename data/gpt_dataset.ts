/**
 * GPT training samples as Megatron builds them: packed `seq + 1`-token windows over the concatenation of
 * documents, with a seeded document order per epoch (doc index), window boundaries (sample index) and a
 * seeded sample order (shuffle index). Sample `i` is a pure function of (documents, seed, seq, i), so a run
 * resumes exactly from its count of consumed samples.
 *
 * @module
 */

/** Random access to tokenized documents (in memory or an indexed dataset on disk). */
export interface TokenDocuments {
  /** Number of documents. */
  readonly count: number;
  /** Token count of document `i`. */
  length(i: number): number;
  /** Tokens `[start, end)` of document `i`. */
  slice(i: number, start: number, end: number): ArrayLike<number>;
}

/** Documents held in memory. */
export class InMemoryDocuments implements TokenDocuments {
  readonly #docs: ArrayLike<number>[];
  /** Wraps token arrays. */
  constructor(docs: ArrayLike<number>[]) {
    this.#docs = docs;
  }
  /** Number of documents. */
  get count(): number {
    return this.#docs.length;
  }
  /** Token count of document `i`. */
  length(i: number): number {
    return this.#docs[i].length;
  }
  /** Tokens `[start, end)` of document `i`. */
  slice(i: number, start: number, end: number): ArrayLike<number> {
    const d = this.#docs[i];
    return Array.prototype.slice.call(d, start, end) as number[];
  }
}

/**
 * mulberry32: a small, fast, seeded 32-bit PRNG (uniform in [0, 1)).
 *
 * @example
 * ```ts
 * import { mulberry32 } from "./gpt_dataset.ts";
 * const rand = mulberry32(42);
 * console.log(rand() < 1); // true
 * ```
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle in place with a seeded generator. */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(a: T, seed: number): T {
  const rand = mulberry32(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** Options of {@linkcode GptSamples}. */
export interface GptSamplesOptions {
  /** Tokens per training sequence (a sample holds seq + 1 tokens: inputs and shifted targets). */
  seq: number;
  /** Seed of the document and sample orders. */
  seed: number;
  /** Samples needed; epochs are added until the documents cover them. */
  numSamples: number;
  /** Documents to use (a split); default all. */
  docIds?: Int32Array;
}

/**
 * The sample index over a document collection.
 *
 * @example
 * ```ts
 * import { GptSamples, InMemoryDocuments } from "./gpt_dataset.ts";
 * const docs = new InMemoryDocuments([[1, 5, 6, 2], [1, 7, 8, 9, 2]]);
 * const s = new GptSamples(docs, { seq: 3, seed: 1, numSamples: 4 });
 * console.log(s.sample(0).length); // 4
 * ```
 */
export class GptSamples {
  readonly #docs: TokenDocuments;
  /** Tokens per sequence. */
  readonly seq: number;
  /** Number of samples available (≥ the requested count). */
  readonly numSamples: number;
  /** Epochs over the documents needed to provide numSamples. */
  readonly epochs: number;
  /** Document order over all epochs. */
  readonly docIndex: Int32Array;
  /** Sample i (before shuffling) starts at docIndex[sampleDoc[i]], offset sampleOffset[i]. */
  readonly sampleDoc: Int32Array;
  /** See {@linkcode GptSamples.sampleDoc}. */
  readonly sampleOffset: Int32Array;
  /** Sample order. */
  readonly shuffleIndex: Int32Array;

  /** Builds the three indices. */
  constructor(docs: TokenDocuments, opts: GptSamplesOptions) {
    const { seq, seed } = opts;
    if (!Number.isInteger(seq) || seq < 1) throw new Error(`seq must be a positive integer (got ${seq})`);
    this.#docs = docs;
    this.seq = seq;
    const ids = opts.docIds ?? Int32Array.from({ length: docs.count }, (_, i) => i);
    let tokensPerEpoch = 0;
    for (const id of ids) tokensPerEpoch += docs.length(id);
    const perEpoch = Math.floor((tokensPerEpoch - 1) / seq);
    if (perEpoch < 1) {
      throw new Error(
        `the documents hold ${tokensPerEpoch} tokens: not enough for one sample of ${seq + 1} tokens`,
      );
    }
    this.epochs = Math.max(1, Math.ceil(opts.numSamples / perEpoch));
    // Doc index: each epoch a fresh seeded permutation of the split's documents.
    this.docIndex = new Int32Array(ids.length * this.epochs);
    for (let e = 0; e < this.epochs; e++) {
      const perm = shuffleInPlace(Int32Array.from(ids), seed * 1000003 + e);
      this.docIndex.set(perm, e * ids.length);
    }
    // Sample index: walk the concatenation in steps of seq tokens (windows overlap by one token).
    const total = Math.floor((tokensPerEpoch * this.epochs - 1) / seq);
    this.numSamples = total;
    this.sampleDoc = new Int32Array(total + 1);
    this.sampleOffset = new Int32Array(total + 1);
    let di = 0, off = 0;
    for (let s = 0; s <= total; s++) {
      this.sampleDoc[s] = di;
      this.sampleOffset[s] = off;
      let remaining = seq;
      while (remaining > 0 && di < this.docIndex.length) {
        const left = docs.length(this.docIndex[di]) - off;
        if (left > remaining) {
          off += remaining;
          remaining = 0;
        } else {
          remaining -= left;
          di++;
          off = 0;
        }
      }
    }
    this.shuffleIndex = shuffleInPlace(Int32Array.from({ length: total }, (_, i) => i), seed * 7919 + 17);
  }

  /** The `seq + 1` tokens of sample `i` (i taken modulo numSamples). */
  sample(i: number): Int32Array {
    const s = this.shuffleIndex[((i % this.numSamples) + this.numSamples) % this.numSamples];
    const out = new Int32Array(this.seq + 1);
    let di = this.sampleDoc[s], off = this.sampleOffset[s], n = 0;
    while (n < out.length) {
      const doc = this.docIndex[di];
      const take = Math.min(this.#docs.length(doc) - off, out.length - n);
      out.set(this.#docs.slice(doc, off, off + take), n);
      n += take;
      di++;
      off = 0;
    }
    return out;
  }
}

/** A `[rows, seq]` batch of inputs and targets cut from consecutive samples. */
export interface TokenBatch {
  /** Inputs. */
  tokens: Int32Array;
  /** Next-token targets. */
  targets: Int32Array;
  /** Loss weights (all 1 for pretraining). */
  lossMask: Float32Array;
}

/**
 * Batch of samples `first … first + rows − 1`: tokens are each sample's first seq tokens, targets the
 * last seq.
 */
export function batchOf(samples: GptSamples, first: number, rows: number): TokenBatch {
  const seq = samples.seq;
  const tokens = new Int32Array(rows * seq), targets = new Int32Array(rows * seq);
  for (let r = 0; r < rows; r++) {
    const s = samples.sample(first + r);
    tokens.set(s.subarray(0, seq), r * seq);
    targets.set(s.subarray(1), r * seq);
  }
  return { tokens, targets, lossMask: new Float32Array(rows * seq).fill(1) };
}
