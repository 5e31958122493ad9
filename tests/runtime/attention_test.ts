// The flash-style attention kernel on its own: several query and key tiles (T = 150 > 64), GQA, against the
// naive float64 reference and its finite differences.
import assert from "node:assert/strict";
import { attentionBackward, attentionForward, native } from "../../runtime/mod.ts";
import { attention, finiteDiffGrad } from "../reference/llama_f64.ts";
import { Rng } from "../reference/init.ts";
import { relErr } from "../helpers.ts";

const S = { B: 2, T: 150, H: 4, KVH: 2, hd: 8 };

function random(n: number, rng: Rng, scale: number): Float64Array {
  return Float64Array.from({ length: n }, () => Math.fround(scale * rng.normal()));
}

/** The kernel's gradient `g` of input `x` at `picks` against central differences of `loss` (1e-3 relative). */
function assertGrad(
  name: string,
  x: Float64Array,
  g: Float32Array,
  picks: number[],
  loss: () => number,
): void {
  const fd = picks.map((idx) => finiteDiffGrad(loss, x, idx, 1e-5)), got = picks.map((idx) => g[idx]);
  assert.ok(relErr(got, fd) < 1e-3, `d${name}: relative error ${relErr(got, fd)} (${got} vs ${fd})`);
}

Deno.test("attention forward and backward match the float64 reference across tiles", async () => {
  const rng = new Rng(99);
  const q = random(S.B * S.T * S.H * S.hd, rng, 1.5);
  const k = random(S.B * S.T * S.KVH * S.hd, rng, 1.5);
  const v = random(S.B * S.T * S.KVH * S.hd, rng, 1);
  const w = random(q.length, rng, 1); // L = Σ out·w, so dout = w
  const ref = () => attention(q, k, v, S.B, S.T, S.H, S.KVH, S.hd);
  const { out, lse } = await attentionForward(
    Float32Array.from(q),
    Float32Array.from(k),
    Float32Array.from(v),
    S,
  );
  assert.ok(relErr(out, ref()) < 1e-5, `forward relative error ${relErr(out, ref())}`);
  const { dq, dk, dv } = await attentionBackward(
    Float32Array.from(q),
    Float32Array.from(k),
    Float32Array.from(v),
    out,
    lse,
    Float32Array.from(w),
    S,
  );
  const loss = () => ref().reduce((a, o, i) => a + o * w[i], 0);
  const rngPick = new Rng(5);
  for (const [name, x, g] of [["q", q, dq], ["k", k, dk], ["v", v, dv]] as const) {
    // include the last rows (many keys, the last tile) and the first ones
    const picks = Array.from(
      { length: 12 },
      (_, s) => s < 3 ? x.length - 1 - s * 7 : s < 6 ? s * 5 : Math.floor(rngPick.uniform() * x.length),
    );
    assertGrad(name, x, g, picks, loss);
  }
});

/** Segment ids of rows made of segments of the given lengths (each row sums to T). */
function segmentIds(rows: number[][]): Int32Array {
  return Int32Array.from(rows.flatMap((lengths) => lengths.flatMap((n, s) => Array(n).fill(s))));
}

// Packed rows: segments that start mid-tile, span tiles, and have a single token; row 1 starts at id 5.
const SEG = segmentIds([[10, 70, 3, 67], [1, 1, 100, 48]]).map((s, i) => (i >= S.T ? s + 5 : s));

Deno.test("attention with segment ids: forward and backward match the float64 reference (block-diagonal)", async () => {
  const rng = new Rng(7);
  const q = random(S.B * S.T * S.H * S.hd, rng, 1.5);
  const k = random(S.B * S.T * S.KVH * S.hd, rng, 1.5);
  const v = random(S.B * S.T * S.KVH * S.hd, rng, 1);
  const w = random(q.length, rng, 1);
  const s = { ...S, segmentIds: SEG };
  const ref = () => attention(q, k, v, S.B, S.T, S.H, S.KVH, S.hd, SEG);
  const f32 = (x: Float64Array) => Float32Array.from(x);
  const { out, lse } = await attentionForward(f32(q), f32(k), f32(v), s);
  assert.ok(relErr(out, ref()) < 1e-5, `forward relative error ${relErr(out, ref())}`);
  // The segments matter: plain causal attention gives another output.
  const plain = attention(q, k, v, S.B, S.T, S.H, S.KVH, S.hd);
  assert.ok(relErr(out, plain) > 1e-2, "segment ids changed nothing");
  const { dq, dk, dv } = await attentionBackward(f32(q), f32(k), f32(v), out, lse, f32(w), s);
  const loss = () => ref().reduce((a, o, i) => a + o * w[i], 0);
  const rngPick = new Rng(3);
  for (
    const [name, x, g, width] of [["q", q, dq, S.H * S.hd], ["k", k, dk, S.KVH * S.hd], [
      "v",
      v,
      dv,
      S.KVH * S.hd,
    ]] as const
  ) {
    // Every segment boundary (first and last token of each segment) and random elements.
    const rows = [0, 9, 10, 79, 80, 82, 83, 149, 150, 151, 152, 251, 252, 299];
    const picks = rows.map((r) => r * width + Math.floor(rngPick.uniform() * width));
    for (let i = 0; i < 10; i++) picks.push(Math.floor(rngPick.uniform() * x.length));
    assertGrad(name, x, g, picks, loss);
  }
});

Deno.test("attention without segment ids equals one segment per row, bit for bit", async () => {
  const rng = new Rng(11);
  const q = Float32Array.from(random(S.B * S.T * S.H * S.hd, rng, 1.5));
  const k = Float32Array.from(random(S.B * S.T * S.KVH * S.hd, rng, 1.5));
  const v = Float32Array.from(random(S.B * S.T * S.KVH * S.hd, rng, 1));
  const a = await attentionForward(q, k, v, S);
  const b = await attentionForward(q, k, v, { ...S, segmentIds: segmentIds([[S.T], [S.T]]) });
  assert.deepEqual(b.out, a.out);
  assert.deepEqual(b.lse, a.lse);
});

Deno.test("segment ids that decrease along a row are refused, naming the tensor and position", async () => {
  const q = new Float32Array(S.B * S.T * S.H * S.hd), kv = new Float32Array(S.B * S.T * S.KVH * S.hd);
  const bad = SEG.slice();
  bad[S.T + 7] = 0; // row 1 holds ids 5..8
  await assert.rejects(
    () => attentionForward(q, kv, kv, { ...S, segmentIds: bad }),
    /segmentIds: row 1 position 7 has id 0 after 7; segment ids must not decrease along a row/,
  );
  await assert.rejects(
    () => attentionForward(q, kv, kv, { ...S, segmentIds: new Int32Array(5) }),
    /segmentIds has 5 elements, expected 2 rows × 150 = 300/,
  );
  // The library checks too (callers other than this binding).
  const lib = await native();
  const out = new Float32Array(q.length), lse = new Float32Array(S.B * S.H * S.T);
  const status = lib.mt_op_attention_forward(q, kv, kv, bad, out, lse, S.B, S.T, S.H, S.KVH, S.hd);
  assert.equal(status, 1);
  assert.match(
    Deno.UnsafePointerView.getCString(lib.mt_last_error()!),
    /segment_ids\[157\] = 0 is below segment_ids\[156\] = 7 \(row 1\)/,
  );
});
