// The flash-style attention kernel on its own: several query and key tiles (T = 150 > 64), GQA, against the
// naive float64 reference and its finite differences.
import assert from "node:assert/strict";
import { attentionBackward, attentionForward } from "../../runtime/mod.ts";
import { attention } from "../reference/llama_f64.ts";
import { Rng } from "../reference/init.ts";
import { relErr } from "../helpers.ts";

const S = { B: 2, T: 150, H: 4, KVH: 2, hd: 8 };

function random(n: number, rng: Rng, scale: number): Float64Array {
  return Float64Array.from({ length: n }, () => Math.fround(scale * rng.normal()));
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
    const fd: number[] = [], got: number[] = [];
    for (let s = 0; s < 12; s++) {
      // include the last rows (many keys, the last tile) and the first ones
      const idx = s < 3 ? x.length - 1 - s * 7 : s < 6 ? s * 5 : Math.floor(rngPick.uniform() * x.length);
      const saved = x[idx], h = 1e-5;
      x[idx] = saved + h;
      const up = loss();
      x[idx] = saved - h;
      const down = loss();
      x[idx] = saved;
      fd.push((up - down) / (2 * h));
      got.push(g[idx]);
    }
    assert.ok(relErr(got, fd) < 1e-3, `d${name}: relative error ${relErr(got, fd)} (${got} vs ${fd})`);
  }
});
