// AdamW, the warmup + cosine + min-lr schedule and global-norm clipping against hand computation.
import assert from "node:assert/strict";
import { lrAt, NativeModel } from "../../runtime/mod.ts";
import type { OptimSettings } from "../../runtime/ffi.ts";
import { assertClose } from "../helpers.ts";

const OPT: OptimSettings = {
  lr: 3e-4,
  minLr: 3e-5,
  warmupSteps: 100,
  decaySteps: 1100,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-5,
  weightDecay: 0.1,
  gradClip: 1.0,
};

Deno.test("schedule: warmup from 0, cosine to min_lr at decay_steps, min_lr after", async () => {
  assert.equal(await lrAt(OPT, 0), 0);
  assertClose(await lrAt(OPT, 1), 3e-4 / 100, 1e-6, "first warmup step");
  assertClose(await lrAt(OPT, 50), 1.5e-4, 1e-6, "mid warmup");
  assertClose(await lrAt(OPT, 100), 3e-4, 1e-6, "end of warmup");
  assertClose(await lrAt(OPT, 600), (3e-4 + 3e-5) / 2, 1e-6, "mid cosine"); // cos(π/2) = 0
  const quarter = 3e-5 + 0.5 * (3e-4 - 3e-5) * (1 + Math.cos(Math.PI * 0.25));
  assertClose(await lrAt(OPT, 350), quarter, 1e-6, "quarter cosine");
  assertClose(await lrAt(OPT, 1100), 3e-5, 1e-6, "decay end");
  assertClose(await lrAt(OPT, 5000), 3e-5, 1e-6, "after decay");
  assertClose(
    await lrAt({ ...OPT, warmupSteps: 0 }, 1),
    3e-5 + 0.5 * 2.7e-4 * (1 + Math.cos(Math.PI / 1100)),
    1e-6,
  );
});

Deno.test("AdamW: decoupled weight decay on matrices only, bias correction, clipping by global norm", async () => {
  const dims = {
    dim: 8,
    nLayers: 1,
    nHeads: 2,
    nKvHeads: 1,
    ffnDim: 8,
    vocabSize: 16,
    maxSeq: 8,
    normEps: 1e-5,
    ropeTheta: 10000,
  };
  const opt = { ...OPT, lr: 1e-2, minLr: 1e-3, warmupSteps: 0, decaySteps: 10 };
  using m = await NativeModel.create(dims, opt, { seed: 3, initStd: 0.5 });
  // Hand-set gradients: every tensor gets g = 0.1·(i mod 7 − 3); the global norm is then > 1, so it clips.
  const params = new Map<string, Float64Array>(), grads = new Map<string, Float64Array>();
  let sq = 0;
  for (const p of m.params()) {
    const g = Float32Array.from({ length: p.size }, (_, i) => 0.1 * ((i % 7) - 3));
    m.write(p.name, g, "grad");
    grads.set(p.name, Float64Array.from(g));
    params.set(p.name, Float64Array.from(m.read(p.name)));
    for (const x of g) sq += x * x;
  }
  const norm = Math.sqrt(sq);
  assert.ok(norm > 1, "test must exercise clipping");
  const { gradNorm, lr } = await m.optimizerStep();
  assertClose(gradNorm, norm, 1e-5, "grad norm before clipping");
  const lr1 = 1e-3 + 0.5 * (1e-2 - 1e-3) * (1 + Math.cos(Math.PI / 10));
  assertClose(lr, lr1, 1e-6, "lr of step 1");
  const coef = 1.0 / (norm + 1e-6);
  for (const p of m.params()) {
    const p0 = params.get(p.name)!, g0 = grads.get(p.name)!, after = m.read(p.name);
    const wd = p.shape.length === 1 ? 0 : 0.1;
    for (let i = 0; i < p.size; i++) {
      const g = g0[i] * coef;
      const mHat = ((1 - 0.9) * g) / (1 - 0.9), vHat = ((1 - 0.95) * g * g) / (1 - 0.95);
      const expect = p0[i] - lr1 * (mHat / (Math.sqrt(vHat) + 1e-5) + wd * p0[i]);
      assert.ok(
        Math.abs(after[i] - expect) <= 1e-6 + 1e-5 * Math.abs(expect),
        `${p.name}[${i}]: ${after[i]} vs ${expect}`,
      );
    }
    const mState = m.read(p.name, "adamM");
    assertClose(mState[1], 0.1 * g0[1] * coef, 1e-5, `${p.name} exp_avg`);
  }
  assert.equal(m.step, 1);
});
