/**
 * Op-level API: single layers on host buffers, for tests and notebooks.
 *
 * @module
 */
import { check, native } from "./library.ts";
import { checkSegmentIds } from "./segments.ts";

/** Sizes of an attention call: q is `[B, T, H, hd]`, k and v `[B, T, KVH, hd]`. */
export interface AttentionShape {
  /** Batch. */
  B: number;
  /** Sequence length. */
  T: number;
  /** Query heads. */
  H: number;
  /** Key/value heads. */
  KVH: number;
  /** Head dimension. */
  hd: number;
  /**
   * Segment ids `[B, T]` of packed rows (non-decreasing along each row): query t attends only to keys j ≤ t of
   * its own segment. Absent: plain causal attention.
   */
  segmentIds?: Int32Array;
}

function segments(s: AttentionShape): Int32Array<ArrayBuffer> | null {
  if (s.segmentIds === undefined) return null;
  checkSegmentIds("segmentIds", s.segmentIds, s.B, s.T);
  return s.segmentIds as Int32Array<ArrayBuffer>;
}

function expectLength(name: string, a: Float32Array, n: number): void {
  if (a.length !== n) throw new Error(`${name} has ${a.length} elements, expected ${n}`);
}

/**
 * Causal GQA attention (flash-style tiles, online softmax), block-diagonal over `s.segmentIds` when given.
 * Returns the output and per-row log-sum-exp.
 *
 * @example
 * ```ts
 * import { attentionForward } from "./ops.ts";
 * const s = { B: 1, T: 4, H: 2, KVH: 1, hd: 8 };
 * const q = new Float32Array(64).fill(0.1), kv = new Float32Array(32).fill(0.2);
 * const { out, lse } = await attentionForward(q, kv, kv, s);
 * ```
 */
export async function attentionForward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  s: AttentionShape,
): Promise<{ out: Float32Array<ArrayBuffer>; lse: Float32Array<ArrayBuffer> }> {
  expectLength("q", q, s.B * s.T * s.H * s.hd);
  expectLength("k", k, s.B * s.T * s.KVH * s.hd);
  expectLength("v", v, s.B * s.T * s.KVH * s.hd);
  const seg = segments(s);
  const out = new Float32Array(q.length), lse = new Float32Array(s.B * s.H * s.T);
  check((await native()).mt_op_attention_forward(q, k, v, seg, out, lse, s.B, s.T, s.H, s.KVH, s.hd));
  return { out, lse };
}

/**
 * Backward of {@linkcode attentionForward}: gradients of q, k, v given the output gradient.
 *
 * @example
 * ```ts
 * import { attentionBackward, attentionForward } from "./ops.ts";
 * const s = { B: 1, T: 4, H: 2, KVH: 1, hd: 8 };
 * const q = new Float32Array(64).fill(0.1), kv = new Float32Array(32).fill(0.2);
 * const { out, lse } = await attentionForward(q, kv, kv, s);
 * const { dq } = await attentionBackward(q, kv, kv, out, lse, new Float32Array(64).fill(1), s);
 * ```
 */
export async function attentionBackward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  out: Float32Array,
  lse: Float32Array,
  dout: Float32Array,
  s: AttentionShape,
): Promise<{ dq: Float32Array<ArrayBuffer>; dk: Float32Array<ArrayBuffer>; dv: Float32Array<ArrayBuffer> }> {
  expectLength("q", q, s.B * s.T * s.H * s.hd);
  expectLength("k", k, s.B * s.T * s.KVH * s.hd);
  expectLength("v", v, s.B * s.T * s.KVH * s.hd);
  expectLength("out", out, q.length);
  expectLength("dout", dout, q.length);
  expectLength("lse", lse, s.B * s.H * s.T);
  const seg = segments(s);
  const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
  check(
    (await native()).mt_op_attention_backward(
      q,
      k,
      v,
      seg,
      out,
      lse,
      dout,
      dq,
      dk,
      dv,
      s.B,
      s.T,
      s.H,
      s.KVH,
      s.hd,
    ),
  );
  return { dq, dk, dv };
}
