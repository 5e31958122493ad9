/**
 * The primitives of GPT training data: random access to tokenized documents (in memory or on disk), the
 * seeded PRNG and shuffle every index uses, and the batch shape. The sample index itself (Megatron's doc /
 * sample / shuffle indices, blends and splits) is `blend.ts`.
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

/** A `[rows, seq]` batch of inputs and targets cut from consecutive samples. */
export interface TokenBatch {
  /** Inputs. */
  tokens: Int32Array;
  /** Next-token targets. */
  targets: Int32Array;
  /** Loss weights (all 1 for pretraining). */
  lossMask: Float32Array;
}
