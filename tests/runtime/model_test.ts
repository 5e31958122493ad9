// The C++ model against the independent float64 reference (tests/reference/llama_f64.ts): logits and loss
// within 1e-5 relative, and every parameter's gradient against central finite differences of the reference.
import assert from "node:assert/strict";
import { NativeModel } from "../../runtime/mod.ts";
import type { ModelDims } from "../../runtime/ffi.ts";
import { finiteDiffGrad, type RefConfig, refForward, refLoss } from "../reference/llama_f64.ts";
import { randomParams, randomTokens } from "../reference/init.ts";
import { assertClose, relErr, TEST_OPTIM } from "../helpers.ts";

// GQA (4 query heads / 2 KV heads); seq 70 crosses the attention tiles (32 queries × 64 keys); vocab 90 is
// padded to 128 inside the library, so the padded logits must stay out of the softmax.
const CFG: RefConfig = {
  dim: 16,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 24,
  vocabSize: 90,
  normEps: 1e-5,
  ropeTheta: 10000,
};
const B = 2, T = 70;
const dims: ModelDims = { ...CFG, maxSeq: 128 };

async function modelWith(params: Map<string, Float64Array>): Promise<NativeModel> {
  const m = await NativeModel.create(dims, TEST_OPTIM, { seed: 7, initStd: 0.02 });
  for (const [name, v] of params) m.write(name, Float32Array.from(v));
  return m;
}

Deno.test("C++ logits and loss match the float64 reference within 1e-5 relative (GQA, tiled attention)", async () => {
  const params = randomParams(CFG, 11, 0.25);
  using m = await modelWith(params);
  const tokens = randomTokens(CFG.vocabSize, B * T, 3);
  const targets = randomTokens(CFG.vocabSize, B * T, 4);
  const logits = await m.logits(tokens, B, T);
  const ref = refForward(CFG, params, tokens, B, T);
  assert.equal(logits.length, ref.length);
  let maxAbs = 0;
  for (const x of ref) maxAbs = Math.max(maxAbs, Math.abs(x));
  for (let i = 0; i < ref.length; i++) {
    assert.ok(Math.abs(logits[i] - ref[i]) <= 1e-5 * maxAbs, `logit ${i}: ${logits[i]} vs ${ref[i]}`);
  }
  const mask = new Float32Array(B * T).fill(1);
  const { lossSum, count } = await m.evalLoss(tokens, targets, mask, B, T);
  assertClose(lossSum / count, refLoss(CFG, params, tokens, targets, mask, B, T), 1e-5, "loss");
});

Deno.test("every parameter gradient matches central finite differences of the reference (partial mask)", async () => {
  const params = randomParams(CFG, 5, 0.25);
  using m = await modelWith(params);
  const bs = 1, ts = 40; // smaller batch: the reference is evaluated twice per sampled element
  const tokens = randomTokens(CFG.vocabSize, bs * ts, 8);
  const targets = randomTokens(CFG.vocabSize, bs * ts, 9);
  const mask = new Float32Array(bs * ts).map((_, i) => (i % 3 === 0 ? 0 : i % 5 === 0 ? 0.5 : 1));
  const denom = mask.reduce((a, b) => a + b, 0);
  m.zeroGrad();
  await m.forwardBackward(tokens, targets, mask, bs, ts, denom);
  const f = () => refLoss(CFG, params, tokens, targets, mask, bs, ts);
  let checked = 0;
  for (const [name, values] of params) {
    const grad = m.read(name, "grad");
    // Sample elements, always including the largest-gradient ones (embedding rows of used tokens etc.).
    const order = Array.from(grad.keys()).sort((a, b) => Math.abs(grad[b]) - Math.abs(grad[a]));
    const picks = [...order.slice(0, 4), ...order.filter((_, i) => i % Math.ceil(order.length / 4) === 1)];
    const fd: number[] = [], got: number[] = [];
    for (const idx of picks) {
      fd.push(finiteDiffGrad(f, values, idx, 1e-5));
      got.push(grad[idx]);
    }
    const err = relErr(got, fd);
    assert.ok(err <= 1e-3, `${name}: relative gradient error ${err.toExponential(2)} (fd ${fd} vs ${got})`);
    checked++;
  }
  assert.equal(checked, 2 + 9 * CFG.nLayers + 1);
});

Deno.test("gradients are exactly zero when the loss mask is zero on one micro-batch", async () => {
  using m = await modelWith(randomParams(CFG, 2, 0.25));
  const tokens = randomTokens(CFG.vocabSize, 8, 1);
  m.zeroGrad();
  await m.forwardBackward(tokens, tokens, new Float32Array(8), 1, 8, 1);
  for (const p of m.params()) assert.ok(m.read(p.name, "grad").every((g) => g === 0), p.name);
});

Deno.test("gradient accumulation over micro-batches equals one big batch", async () => {
  const params = randomParams(CFG, 4, 0.25);
  using a = await modelWith(params);
  using b = await modelWith(params);
  const tokens = randomTokens(CFG.vocabSize, 4 * 16, 1), targets = randomTokens(CFG.vocabSize, 4 * 16, 2);
  const mask = new Float32Array(64).fill(1);
  const ra = await a.trainStep({ tokens, targets, lossMask: mask, nMicro: 4, batch: 1, seq: 16 });
  const rb = await b.trainStep({ tokens, targets, lossMask: mask, nMicro: 1, batch: 4, seq: 16 });
  assertClose(ra.loss, rb.loss, 1e-6, "loss");
  assertClose(ra.gradNorm, rb.gradNorm, 1e-5, "grad norm");
  for (const p of a.params()) assert.ok(relErr(a.read(p.name), b.read(p.name)) < 1e-5, p.name);
});
