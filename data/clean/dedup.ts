/**
 * Exact deduplication: Meditron's normalised key (first 500 characters, lower-cased, letters and digits
 * only), identifier sets (`corpusid`), and a compact set of 53-bit key hashes that holds tens of millions of
 * keys (sharded, since one JavaScript `Set` stops at 2²⁴ entries).
 *
 * @module
 */

const NOT_ALNUM = /[^\p{L}\p{N}]+/gu;

/**
 * The exact-dedup key of a text: its first `chars` characters (default 500), lower-cased, with everything
 * but letters and digits removed.
 *
 * @example
 * ```ts
 * import { dedupKey } from "./dedup.ts";
 * console.log(dedupKey("# Asthma — Adults!\n\nUse SABA.")); // "asthmaadultsusesaba"
 * ```
 */
export function dedupKey(text: string, chars = 500): string {
  const sample = text.length > chars ? text.slice(0, chars) : text;
  return sample.toLowerCase().replace(NOT_ALNUM, "");
}

/**
 * A 53-bit hash of a string (two multiplicative 32-bit lanes mixed by a MurmurHash3-style finaliser), an
 * exact integer usable as a `Set` key.
 *
 * @example
 * ```ts
 * import { hash53 } from "./dedup.ts";
 * console.log(hash53("abc") === hash53("abc"), hash53("abc") === hash53("abd")); // true false
 * ```
 */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed, h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * A set of string keys stored as 53-bit hashes in 64 shards (≈ 40 bytes a key; a false "seen" needs a
 * 53-bit collision: about 1 in 10⁵ over 10⁷ keys).
 *
 * @example
 * ```ts
 * import { KeySet } from "./dedup.ts";
 * const seen = new KeySet();
 * console.log(seen.add("a"), seen.add("a"), seen.size); // true false 1
 * ```
 */
export class KeySet {
  readonly #shards: Set<number>[] = Array.from({ length: 64 }, () => new Set<number>());
  #size = 0;

  /** Number of distinct keys. */
  get size(): number {
    return this.#size;
  }

  /** Whether `key` was added before. */
  has(key: string): boolean {
    const h = hash53(key);
    return this.#shards[h % 64].has(h);
  }

  /** Adds `key`; true when it was new. */
  add(key: string): boolean {
    const h = hash53(key);
    const shard = this.#shards[h % 64];
    if (shard.has(h)) return false;
    shard.add(h);
    this.#size++;
    return true;
  }
}

/**
 * The key of a record identifier (`corpusid` as number or string: `123` and `"123"` are the same paper), or
 * `null` when the record has none.
 *
 * @example
 * ```ts
 * import { idKey } from "./dedup.ts";
 * console.log(idKey(123) === idKey("123"), idKey(undefined)); // true null
 * ```
 */
export function idKey(id: unknown): string | null {
  if (typeof id === "number" && Number.isFinite(id)) return String(id);
  if (typeof id === "string" && id.trim() !== "") return id.trim();
  return null;
}
