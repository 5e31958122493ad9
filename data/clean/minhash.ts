/**
 * Near-duplicate detection with MinHash and locality-sensitive hashing: documents become sets of word
 * shingles (`shingleSize` consecutive lower-cased words), each set is summarised by `numPerm` minima of
 * seeded hash functions (the fraction of equal minima estimates the Jaccard similarity), and signatures are
 * split into `bands` × `rows` so that only documents sharing a whole band are compared. A candidate is a
 * near-duplicate when its estimated Jaccard similarity reaches the threshold.
 *
 * @module
 */
import { mulberry32 } from "../gpt_dataset.ts";

const WORD = /[\p{L}\p{N}]+/gu;

/** MurmurHash3's 32-bit finaliser: a bijective avalanche mix. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units of a word. */
function wordHash(word: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * The 32-bit hashes of the word shingles of `text` (a text shorter than one shingle gives one shingle of
 * all its words; a text without words gives none).
 *
 * @example
 * ```ts
 * import { shingleHashes } from "./minhash.ts";
 * console.log(shingleHashes("a b c d", 3).length); // 2
 * ```
 */
export function shingleHashes(text: string, shingleSize: number): Uint32Array {
  const words = text.toLowerCase().match(WORD) ?? [];
  if (words.length === 0) return new Uint32Array(0);
  const w = words.map(wordHash);
  const n = Math.max(1, w.length - shingleSize + 1);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let h = 0x9747b28c;
    for (let j = i; j < Math.min(i + shingleSize, w.length); j++) {
      h = Math.imul(h ^ w[j], 0x5bd1e995);
      h ^= h >>> 15;
    }
    out[i] = fmix32(h);
  }
  return out;
}

/**
 * The LSH banding (`bands` × `rows` ≤ `numPerm`) for a Jaccard threshold: among the bandings that make a
 * document at the threshold a candidate with probability ≥ `recall` (default 0.95), the one with the least
 * false-positive mass below the threshold. (Candidates are verified against the threshold on their full
 * signatures, so false positives cost time, not accuracy; false negatives would be missed duplicates.)
 *
 * @example
 * ```ts
 * import { optimalBands } from "./minhash.ts";
 * console.log(optimalBands(0.8, 128)); // { bands: 18, rows: 7 }
 * ```
 */
export function optimalBands(
  threshold: number,
  numPerm: number,
  recall = 0.95,
): { bands: number; rows: number } {
  const candidate = (s: number, bands: number, rows: number): number => 1 - (1 - s ** rows) ** bands;
  let best = { bands: numPerm, rows: 1 }, bestFp = Infinity;
  for (let rows = 1; rows <= numPerm; rows++) {
    const bands = Math.floor(numPerm / rows);
    if (candidate(threshold, bands, rows) < recall) continue;
    let fp = 0;
    const steps = 200;
    for (let i = 0; i < steps; i++) fp += candidate(((i + 0.5) / steps) * threshold, bands, rows);
    fp *= threshold / steps;
    if (fp < bestFp) {
      bestFp = fp;
      best = { bands, rows };
    }
  }
  return best;
}

/** Options of {@linkcode MinHashIndex}. */
export interface MinHashOptions {
  /** Jaccard similarity at or above which a document is a near-duplicate (0–1, e.g. 0.8). */
  threshold: number;
  /** Hash functions per signature (default 128). */
  numPerm?: number;
  /** Words per shingle (default 5). */
  shingleSize?: number;
  /** LSH bands (default: {@linkcode optimalBands} for the threshold); rows = ⌊numPerm / bands⌋. */
  bands?: number;
  /** Seed of the hash functions (default 1). */
  seed?: number;
}

/**
 * A growing index of MinHash signatures with LSH buckets. Memory: `4·numPerm` bytes of signature plus one
 * bucket entry per band for every indexed document.
 *
 * @example
 * ```ts
 * import { MinHashIndex } from "./minhash.ts";
 * const index = new MinHashIndex({ threshold: 0.7, shingleSize: 1 });
 * const text = "the patient was given aspirin after the myocardial infarction and recovered well at home";
 * console.log(index.addIfNew(text)); // true
 * console.log(index.addIfNew(text.replace("well", "fully"))); // false: a near-duplicate
 * ```
 */
export class MinHashIndex {
  /** Jaccard threshold. */
  readonly threshold: number;
  /** Hash functions per signature. */
  readonly numPerm: number;
  /** Words per shingle. */
  readonly shingleSize: number;
  /** LSH bands. */
  readonly bands: number;
  /** Signature rows per band. */
  readonly rows: number;
  readonly #seeds: Uint32Array;
  readonly #buckets: Map<number, number>[][];
  #signatures: Uint32Array;
  #next: Int32Array; // per (doc, band): previous doc in the same bucket, −1 at the end
  #count = 0;

  /** Builds an empty index. */
  constructor(options: MinHashOptions) {
    const { threshold } = options;
    if (!(threshold > 0 && threshold <= 1)) {
      throw new Error(`near-dedup threshold must be in (0, 1], got ${threshold}`);
    }
    this.threshold = threshold;
    this.numPerm = options.numPerm ?? 128;
    this.shingleSize = options.shingleSize ?? 5;
    if (!Number.isInteger(this.numPerm) || this.numPerm < 2) {
      throw new Error(`numPerm must be an integer ≥ 2`);
    }
    if (!Number.isInteger(this.shingleSize) || this.shingleSize < 1) {
      throw new Error(`shingle size must be ≥ 1`);
    }
    const banding = options.bands === undefined
      ? optimalBands(threshold, this.numPerm)
      : { bands: options.bands, rows: Math.floor(this.numPerm / options.bands) };
    if (!Number.isInteger(banding.bands) || banding.bands < 1 || banding.rows < 1) {
      throw new Error(`LSH bands must be an integer in [1, ${this.numPerm}], got ${options.bands}`);
    }
    this.bands = banding.bands;
    this.rows = banding.rows;
    const rand = mulberry32(options.seed ?? 1);
    this.#seeds = Uint32Array.from({ length: this.numPerm }, () => Math.floor(rand() * 4294967296));
    this.#buckets = Array.from({ length: this.bands }, () => Array.from({ length: 16 }, () => new Map()));
    this.#signatures = new Uint32Array(this.numPerm * 1024);
    this.#next = new Int32Array(this.bands * 1024);
  }

  /** Number of indexed documents. */
  get size(): number {
    return this.#count;
  }

  /**
   * The MinHash signature of `text` (`numPerm` minima; all `0xffffffff` for a text without words).
   *
   * @example
   * ```ts
   * import { MinHashIndex } from "./minhash.ts";
   * console.log(new MinHashIndex({ threshold: 0.8 }).signature("one two three four five").length); // 128
   * ```
   */
  signature(text: string): Uint32Array {
    const sig = new Uint32Array(this.numPerm).fill(0xffffffff);
    const shingles = shingleHashes(text, this.shingleSize);
    const seeds = this.#seeds;
    for (let i = 0; i < shingles.length; i++) {
      const x = shingles[i];
      for (let k = 0; k < sig.length; k++) {
        const h = fmix32(x ^ seeds[k]);
        if (h < sig[k]) sig[k] = h;
      }
    }
    return sig;
  }

  /** Estimated Jaccard similarity of two signatures (fraction of equal minima). */
  static similarity(a: Uint32Array, b: Uint32Array): number {
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    return same / a.length;
  }

  #bandKey(sig: Uint32Array, band: number): number {
    let h = 0x2545f491 ^ band;
    for (let r = band * this.rows; r < (band + 1) * this.rows; r++) h = fmix32(h ^ sig[r]) + r;
    return h >>> 0;
  }

  /** The indexed document most similar to `sig` at or above the threshold, or −1. */
  query(sig: Uint32Array): number {
    const n = this.numPerm;
    const checked = new Set<number>();
    for (let b = 0; b < this.bands; b++) {
      const key = this.#bandKey(sig, b);
      let doc = this.#buckets[b][key & 15].get(key) ?? -1;
      while (doc >= 0) {
        if (!checked.has(doc)) {
          checked.add(doc);
          const other = this.#signatures.subarray(doc * n, (doc + 1) * n);
          if (MinHashIndex.similarity(sig, other) >= this.threshold) return doc;
        }
        doc = this.#next[doc * this.bands + b];
      }
    }
    return -1;
  }

  /** Indexes a signature; returns its document number. */
  insert(sig: Uint32Array): number {
    const doc = this.#count++;
    if ((doc + 1) * this.numPerm > this.#signatures.length) {
      const grown = new Uint32Array(this.#signatures.length * 2);
      grown.set(this.#signatures);
      this.#signatures = grown;
      const next = new Int32Array(this.#next.length * 2);
      next.set(this.#next);
      this.#next = next;
    }
    this.#signatures.set(sig, doc * this.numPerm);
    for (let b = 0; b < this.bands; b++) {
      const key = this.#bandKey(sig, b);
      const shard = this.#buckets[b][key & 15];
      this.#next[doc * this.bands + b] = shard.get(key) ?? -1;
      shard.set(key, doc);
    }
    return doc;
  }

  /** Indexes `text` unless it is a near-duplicate of an indexed document; true when it was new. */
  addIfNew(text: string): boolean {
    const sig = this.signature(text);
    if (this.query(sig) >= 0) return false;
    this.insert(sig);
    return true;
  }
}
