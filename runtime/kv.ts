/**
 * The KV cache of a native model and batched decoding over it: prefill, decode steps over sequences of
 * different lengths, prefix sharing (copy a prompt's cache into another slot) and slot reuse.
 *
 * @module
 */
import { check, checkModel, loaded } from "./library.ts";
import type { NativeModel } from "./model.ts";

const registry = new FinalizationRegistry<bigint>((addr) => {
  try {
    loaded().mt_kv_free(Deno.UnsafePointer.create(addr));
  } catch { /* library already closed */ }
});

/**
 * Keys and values of up to `maxSeqs` sequences of up to `maxLen` tokens.
 *
 * @example
 * ```ts ignore
 * using kv = KvCache.create(model, 4, 256);
 * const logits = await kv.decode([0, 0, 0], [1, 450, 4996]); // prefill sequence 0 with 3 tokens
 * ```
 */
export class KvCache implements Disposable {
  #handle: Deno.PointerValue;
  readonly #model: NativeModel;
  /** Sequence slots. */
  readonly maxSeqs: number;
  /** Tokens per slot. */
  readonly maxLen: number;

  private constructor(handle: Deno.PointerValue, model: NativeModel, maxSeqs: number, maxLen: number) {
    this.#handle = handle;
    this.#model = model;
    this.maxSeqs = maxSeqs;
    this.maxLen = maxLen;
    registry.register(this, Deno.UnsafePointer.value(handle) as bigint, this);
  }

  /** Allocates a cache for `model` (one rank: tp = pp = 1). */
  static create(model: NativeModel, maxSeqs: number, maxLen: number): KvCache {
    const out = new BigUint64Array(1);
    checkModel(loaded().mt_kv_create(model.handle, maxSeqs, maxLen, out), model.handle);
    return new KvCache(Deno.UnsafePointer.create(out[0]), model, maxSeqs, maxLen);
  }

  get #h(): Deno.PointerValue {
    if (this.#handle === null) throw new Error("KvCache was disposed");
    return this.#handle;
  }

  /** Empties slot `seq`. */
  reset(seq: number): void {
    check(loaded().mt_kv_reset(this.#h, seq));
  }

  /** Copies the first `length` cached tokens of `src` to `dst`. */
  copy(src: number, dst: number, length: number): void {
    check(loaded().mt_kv_copy(this.#h, src, dst, length));
  }

  /** Tokens cached in slot `seq`. */
  length(seq: number): number {
    const out = new Int32Array(1);
    check(loaded().mt_kv_length(this.#h, seq, out));
    return out[0];
  }

  /**
   * Appends rows (seqIds[i], tokens[i]) — a sequence's rows consecutive and in order — and returns the logits
   * of the rows with `want[i]` (all rows when omitted), `[rows wanted, vocab]`.
   */
  async decode(
    seqIds: ArrayLike<number>,
    tokens: ArrayLike<number>,
    want?: ArrayLike<boolean>,
  ): Promise<Float32Array> {
    if (seqIds.length !== tokens.length) {
      throw new Error(`${seqIds.length} sequence ids for ${tokens.length} tokens`);
    }
    const n = tokens.length;
    const wantMask = want ? Uint8Array.from(want, (w) => (w ? 1 : 0)) : null;
    const rows = wantMask ? wantMask.reduce((a, b) => a + b, 0) : n;
    const logits = new Float32Array(rows * this.#model.dims.vocabSize);
    const h = this.#model.handle;
    checkModel(
      await loaded().mt_model_decode(
        h,
        this.#h,
        Int32Array.from(seqIds),
        Int32Array.from(tokens),
        wantMask,
        BigInt(n),
        logits,
        BigInt(logits.length),
      ),
      h,
    );
    return logits;
  }

  /** Frees the cache (idempotent). */
  dispose(): void {
    if (this.#handle === null) return;
    registry.unregister(this);
    check(loaded().mt_kv_free(this.#handle));
    this.#handle = null;
  }

  /** `using` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
