/**
 * Tests of the float64 reference itself: math invariants that always run, and a cross-check against an
 * independent PyTorch float64 implementation (tests/reference/llama_torch_f64.py) when torch is installed.
 */

import assert from "node:assert/strict";
import {
  attention,
  crossEntropy,
  finiteDiffGrad,
  type RefConfig,
  refForward,
  refLoss,
  type RefParams,
  refParamShapes,
  rmsNorm,
  rope,
} from "./llama_f64.ts";
import { cloneParams, fromFloat32, randomParams, randomTokens, Rng, toFloat32 } from "./init.ts";

const GQA: RefConfig = {
  dim: 16,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 24,
  vocabSize: 11,
  normEps: 1e-5,
  ropeTheta: 10000,
};
const MHA: RefConfig = { ...GQA, nLayers: 1, nKvHeads: 4, ropeTheta: 100 };
const MQA: RefConfig = { ...GQA, nLayers: 1, nKvHeads: 1, normEps: 1e-6 };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

// ---------------------------------------------------------------------------------------------------------
// Invariants (no external dependencies).

Deno.test("refParamShapes: HF names, shapes and order", () => {
  const shapes = refParamShapes(GQA);
  const names = [...shapes.keys()];
  assert.equal(names.length, 2 + 9 * GQA.nLayers + 1);
  assert.equal(names[0], "model.embed_tokens.weight");
  assert.equal(names[1], "model.layers.0.self_attn.q_proj.weight");
  assert.equal(names.at(-2), "model.norm.weight");
  assert.equal(names.at(-1), "lm_head.weight");
  assert.deepEqual(shapes.get("model.layers.1.self_attn.q_proj.weight"), [16, 16]);
  assert.deepEqual(shapes.get("model.layers.1.self_attn.k_proj.weight"), [8, 16]);
  assert.deepEqual(shapes.get("model.layers.1.self_attn.v_proj.weight"), [8, 16]);
  assert.deepEqual(shapes.get("model.layers.1.self_attn.o_proj.weight"), [16, 16]);
  assert.deepEqual(shapes.get("model.layers.1.mlp.gate_proj.weight"), [24, 16]);
  assert.deepEqual(shapes.get("model.layers.1.mlp.up_proj.weight"), [24, 16]);
  assert.deepEqual(shapes.get("model.layers.1.mlp.down_proj.weight"), [16, 24]);
  assert.deepEqual(shapes.get("model.layers.1.input_layernorm.weight"), [16]);
  assert.deepEqual(shapes.get("model.layers.1.post_attention_layernorm.weight"), [16]);
  assert.deepEqual(shapes.get("lm_head.weight"), [11, 16]);
  assert.throws(() => refParamShapes({ ...GQA, nKvHeads: 3 }));
  assert.throws(() => refParamShapes({ ...GQA, nHeads: 3 }));
});

Deno.test("randomParams: deterministic, float32-exact, norm weights near 1, f32 round trip", () => {
  const a = randomParams(GQA, 7);
  const b = randomParams(GQA, 7);
  const c = randomParams(GQA, 8);
  for (const [name, shape] of refParamShapes(GQA)) {
    const v = a.get(name)!;
    assert.equal(v.length, shape.reduce((x, y) => x * y, 1));
    assert.deepEqual(v, b.get(name));
    assert.notDeepEqual(v, c.get(name));
    for (const x of v) assert.equal(Math.fround(x), x);
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    if (name.endsWith("norm.weight")) {
      assert.ok(Math.abs(mean - 1) < 0.1, `${name} mean ${mean}`);
      assert.ok(v.some((x) => x !== 1));
    } else {
      assert.ok(Math.abs(mean) < 0.02, `${name} mean ${mean}`);
      assert.ok(maxAbs(v) < 0.2 && maxAbs(v) > 0.01, `${name} max ${maxAbs(v)}`);
    }
  }
  const f32 = toFloat32(a);
  assert.deepEqual([...f32.keys()], [...a.keys()]);
  assert.deepEqual(fromFloat32(f32), a);
  // A standard normal stream has roughly unit variance.
  const rng = new Rng(1);
  let s2 = 0;
  for (let i = 0; i < 20000; i++) s2 += rng.normal() ** 2;
  assert.ok(Math.abs(s2 / 20000 - 1) < 0.05);
});

Deno.test("refForward: causal (future tokens do not change earlier logits) and batch rows independent", () => {
  const params = randomParams(GQA, 1, 0.3);
  const seq = 6, v = GQA.vocabSize;
  const tokens = randomTokens(v, 2 * seq, 2);
  const logits = refForward(GQA, params, tokens, 2, seq);
  const changed = tokens.slice();
  changed[4] = (changed[4] + 1) % v; // sequence 0, position 4
  const logits2 = refForward(GQA, params, changed, 2, seq);
  assert.deepEqual(logits2.subarray(0, 4 * v), logits.subarray(0, 4 * v));
  assert.ok(maxAbsDiff(logits2.subarray(4 * v, 5 * v), logits.subarray(4 * v, 5 * v)) > 1e-6);
  assert.ok(maxAbsDiff(logits2.subarray(5 * v, 6 * v), logits.subarray(5 * v, 6 * v)) > 1e-6);
  assert.deepEqual(logits2.subarray(seq * v), logits.subarray(seq * v)); // sequence 1 untouched
  // Each sequence alone gives the same logits; a prefix gives the prefix's logits.
  const alone = refForward(GQA, params, tokens.slice(seq), 1, seq);
  assert.ok(maxAbsDiff(alone, logits.subarray(seq * v)) < 1e-14);
  const prefix = refForward(GQA, params, tokens.slice(0, 3), 1, 3);
  assert.ok(maxAbsDiff(prefix, logits.subarray(0, 3 * v)) < 1e-14);
});

Deno.test("rope: attention scores depend only on relative position; position 0 is the identity", () => {
  const hd = 8, nH = 2, seq = 7, theta = 50;
  const rng = new Rng(3);
  const qv = Array.from({ length: nH * hd }, () => rng.normal());
  const kv = Array.from({ length: nH * hd }, () => rng.normal());
  const q = new Float64Array(seq * nH * hd);
  const k = new Float64Array(seq * nH * hd);
  for (let p = 0; p < seq; p++) {
    q.set(qv, p * nH * hd);
    k.set(kv, p * nH * hd);
  }
  rope(q, 1, seq, nH, hd, theta);
  rope(k, 1, seq, nH, hd, theta);
  assert.deepEqual([...q.subarray(0, nH * hd)], qv);
  const score = (p: number, s: number, h: number) => {
    let dot = 0;
    for (let d = 0; d < hd; d++) dot += q[p * nH * hd + h * hd + d] * k[s * nH * hd + h * hd + d];
    return dot;
  };
  for (let h = 0; h < nH; h++) {
    for (let delta = 0; delta < 4; delta++) {
      for (let p = delta; p < seq; p++) {
        assert.ok(Math.abs(score(p, p - delta, h) - score(delta, 0, h)) < 1e-12);
      }
    }
    assert.ok(Math.abs(score(3, 0, h) - score(2, 0, h)) > 1e-6); // it does depend on the offset
  }
  // Rotation preserves norms.
  for (let p = 0; p < seq; p++) {
    let n2 = 0;
    for (let d = 0; d < nH * hd; d++) n2 += q[p * nH * hd + d] ** 2;
    assert.ok(Math.abs(n2 - qv.reduce((s, x) => s + x * x, 0)) < 1e-12);
  }
  // Pairing convention (HF rotate-half): dims i and i + hd/2 rotate together by p * theta^(-2i/hd).
  const x = new Float64Array(2 * hd);
  x[hd + 1] = 1; // position 1, dim 1
  rope(x, 1, 2, 1, hd, theta);
  const angle = Math.pow(theta, -2 / hd);
  assert.ok(Math.abs(x[hd + 1] - Math.cos(angle)) < 1e-15);
  assert.ok(Math.abs(x[hd + 1 + hd / 2] - Math.sin(angle)) < 1e-15);
  assert.equal(x.reduce((s, v) => s + Math.abs(v), 0), Math.abs(x[hd + 1]) + Math.abs(x[hd + 1 + hd / 2]));
});

Deno.test("rmsNorm: scale invariant (eps = 0), unit RMS with unit weights, weight applied elementwise", () => {
  const rng = new Rng(4);
  const dim = 10;
  const x = Float64Array.from({ length: 2 * dim }, () => rng.normal());
  const ones = new Float64Array(dim).fill(1);
  const w = Float64Array.from({ length: dim }, () => 1 + rng.normal());
  const y = rmsNorm(x, 2, dim, w, 0);
  const y2 = rmsNorm(x.map((v) => v * 37.5), 2, dim, w, 0);
  assert.ok(maxAbsDiff(y, y2) < 1e-13);
  const u = rmsNorm(x, 2, dim, ones, 0);
  for (let r = 0; r < 2; r++) {
    let ms = 0;
    for (let i = 0; i < dim; i++) ms += u[r * dim + i] ** 2 / dim;
    assert.ok(Math.abs(ms - 1) < 1e-14);
    for (let i = 0; i < dim; i++) assert.ok(Math.abs(y[r * dim + i] - u[r * dim + i] * w[i]) < 1e-14);
  }
  // eps matters for tiny inputs: x = 0 gives 0, not NaN.
  assert.equal(maxAbs(rmsNorm(new Float64Array(dim), 1, dim, w, 1e-5)), 0);
});

Deno.test("attention: first position copies v; equal keys give the mean of the visible values", () => {
  const hd = 4, seq = 3;
  const rng = new Rng(5);
  const q = Float64Array.from({ length: seq * hd }, () => rng.normal());
  const k = new Float64Array(seq * hd).fill(0.5);
  const v = Float64Array.from({ length: seq * hd }, () => rng.normal());
  const out = attention(q, k, v, 1, seq, 1, 1, hd);
  for (let t = 0; t < seq; t++) {
    for (let d = 0; d < hd; d++) {
      let mean = 0;
      for (let s = 0; s <= t; s++) mean += v[s * hd + d] / (t + 1);
      assert.ok(Math.abs(out[t * hd + d] - mean) < 1e-15);
    }
  }
  // Two positions, v = one-hot: position 1 gets softmax weights of q.k / sqrt(hd) over keys 0 and 1.
  const q2 = Float64Array.from([0, 0, 0, 0, 1, 2, -1, 0.5]);
  const k2 = Float64Array.from([0.3, -0.2, 0.1, 1, -0.4, 0.6, 0.2, 0]);
  const v2 = Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0]);
  const s0 = (1 * 0.3 + 2 * -0.2 + -1 * 0.1 + 0.5 * 1) / 2;
  const s1 = (1 * -0.4 + 2 * 0.6 + -1 * 0.2 + 0.5 * 0) / 2;
  const w1 = 1 / (1 + Math.exp(s0 - s1));
  const out2 = attention(q2, k2, v2, 1, 2, 1, 1, hd);
  assert.ok(Math.abs(out2[4] - (1 - w1)) < 1e-15 && Math.abs(out2[5] - w1) < 1e-15, `${out2}`);
});

Deno.test("GQA: nKvHeads < nHeads equals MHA with each kv head's weights duplicated for its group", () => {
  const seq = 5;
  const gqa = randomParams(GQA, 6, 0.3);
  const mhaCfg = { ...GQA, nKvHeads: GQA.nHeads };
  const mha: RefParams = cloneParams(gqa);
  const hd = GQA.dim / GQA.nHeads, group = GQA.nHeads / GQA.nKvHeads, rowLen = hd * GQA.dim;
  for (let l = 0; l < GQA.nLayers; l++) {
    for (const proj of ["k_proj", "v_proj"]) {
      const name = `model.layers.${l}.self_attn.${proj}.weight`;
      const src = gqa.get(name)!;
      const dst = new Float64Array(GQA.nHeads * rowLen);
      for (let h = 0; h < GQA.nHeads; h++) {
        const kvh = Math.floor(h / group);
        dst.set(src.subarray(kvh * rowLen, (kvh + 1) * rowLen), h * rowLen);
      }
      mha.set(name, dst);
    }
  }
  const tokens = randomTokens(GQA.vocabSize, seq, 9);
  const a = refForward(GQA, gqa, tokens, 1, seq);
  const b = refForward(mhaCfg, mha, tokens, 1, seq);
  assert.ok(maxAbsDiff(a, b) < 1e-14, `diff ${maxAbsDiff(a, b)}`);
  // The mapping is floor(h / group), not h % nKvHeads: a different duplication gives different logits.
  for (let l = 0; l < GQA.nLayers; l++) {
    for (const proj of ["k_proj", "v_proj"]) {
      const name = `model.layers.${l}.self_attn.${proj}.weight`;
      const src = gqa.get(name)!;
      const dst = new Float64Array(GQA.nHeads * rowLen);
      for (let h = 0; h < GQA.nHeads; h++) {
        const kvh = h % GQA.nKvHeads;
        dst.set(src.subarray(kvh * rowLen, (kvh + 1) * rowLen), h * rowLen);
      }
      mha.set(name, dst);
    }
  }
  assert.ok(maxAbsDiff(a, refForward(mhaCfg, mha, tokens, 1, seq)) > 1e-6);
});

Deno.test("refLoss: zero weights give log(vocab); weighted mean matches per-token CE; stable LSE", () => {
  const seq = 4, batch = 2, rows = batch * seq, v = GQA.vocabSize;
  const zero = randomParams(GQA, 1);
  for (const [name, values] of zero) if (!name.endsWith("norm.weight")) values.fill(0);
  const tokens = randomTokens(v, rows, 10);
  const targets = randomTokens(v, rows, 11);
  const ones = new Float32Array(rows).fill(1);
  assert.ok(Math.abs(refLoss(GQA, zero, tokens, targets, ones, batch, seq) - Math.log(v)) < 1e-15);

  const params = randomParams(GQA, 2, 0.5);
  const logits = refForward(GQA, params, tokens, batch, seq);
  const naiveCe = (r: number) => {
    let sum = 0;
    for (let j = 0; j < v; j++) sum += Math.exp(logits[r * v + j]);
    return Math.log(sum) - logits[r * v + targets[r]];
  };
  const mask = Float64Array.from([1, 0, 0.5, 2, 0, 1, 1, 0.25]);
  const masked = Int32Array.from(targets);
  for (let r = 0; r < rows; r++) if (mask[r] === 0) masked[r] = -100; // ignored positions
  let num = 0, den = 0;
  for (let r = 0; r < rows; r++) {
    num += mask[r] * naiveCe(r);
    den += mask[r];
  }
  const loss = refLoss(GQA, params, tokens, masked, mask, batch, seq);
  assert.ok(Math.abs(loss - num / den) < 1e-13, `${loss} vs ${num / den}`);
  assert.ok(
    Math.abs(refLoss(GQA, params, tokens, masked, mask.map((m) => 3 * m), batch, seq) - loss) < 1e-13,
  );
  assert.equal(refLoss(GQA, params, tokens, masked, new Float32Array(rows), batch, seq), 0);
  assert.throws(() => refLoss(GQA, params, tokens, masked, ones, batch, seq)); // -100 with mask 1

  const big = Float64Array.from([1000, 1001, 999]);
  const ce = crossEntropy(big, 0, 3, 1);
  const expected = Math.log(Math.exp(-1) + 1 + Math.exp(-2));
  assert.ok(Number.isFinite(ce) && Math.abs(ce - expected) < 1e-12);
});

Deno.test("finiteDiffGrad: accurate central difference and restores x", () => {
  const x = Float64Array.from([0.3, -1.2, 2]);
  const f = () => Math.sin(x[0]) * x[1] ** 3 + Math.exp(x[2] / 4);
  const before = x.slice();
  assert.ok(Math.abs(finiteDiffGrad(f, x, 0) - Math.cos(0.3) * (-1.2) ** 3) < 1e-8);
  assert.ok(Math.abs(finiteDiffGrad(f, x, 1, 1e-5) - 3 * Math.sin(0.3) * 1.44) < 1e-8);
  assert.ok(Math.abs(finiteDiffGrad(f, x, 2) - Math.exp(0.5) / 4) < 1e-8);
  assert.deepEqual(x, before);
  assert.throws(() =>
    finiteDiffGrad(
      () => {
        throw new Error("boom");
      },
      x,
      1,
    )
  );
  assert.deepEqual(x, before);
});

// ---------------------------------------------------------------------------------------------------------
// Cross-check against the independent PyTorch float64 implementation.

const PYTHON = "/usr/bin/python3";
const TORCH_SCRIPT = new URL("./llama_torch_f64.py", import.meta.url).pathname;

function torchAvailable(): boolean {
  try {
    const r = new Deno.Command(PYTHON, {
      args: ["-c", "import torch, numpy"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync();
    return r.success;
  } catch {
    return false;
  }
}

interface TorchCase {
  cfg: RefConfig;
  params: RefParams;
  tokens: Int32Array;
  targets: Int32Array;
  mask: Float64Array;
  batch: number;
  seq: number;
}

interface TorchResult {
  logits: Float64Array;
  loss: number;
  grads: Map<string, Float64Array>;
}

/** Run llama_torch_f64.py on every case in one process (torch is imported once). */
async function runTorch(cases: TorchCase[]): Promise<TorchResult[]> {
  const dir = await Deno.makeTempDir({ prefix: "llama_f64_" });
  try {
    const args = [TORCH_SCRIPT];
    for (const [i, c] of cases.entries()) {
      const shapes = refParamShapes(c.cfg);
      const flat = new Float64Array([...shapes.keys()].flatMap((name) => [...c.params.get(name)!]));
      const spec = {
        config: c.cfg,
        batch: c.batch,
        seq: c.seq,
        tokens: [...c.tokens],
        targets: [...c.targets],
        mask: [...c.mask],
        params: [...shapes],
        grads: true,
      };
      await Deno.writeTextFile(`${dir}/in${i}.json`, JSON.stringify(spec));
      await Deno.writeFile(`${dir}/in${i}.bin`, new Uint8Array(flat.buffer)); // little-endian hosts only
      args.push(`${dir}/in${i}.json`, `${dir}/in${i}.bin`, `${dir}/out${i}.bin`);
    }
    const r = await new Deno.Command(PYTHON, { args, stdout: "piped", stderr: "piped" }).output();
    if (!r.success) throw new Error(`torch script failed:\n${new TextDecoder().decode(r.stderr)}`);
    const results: TorchResult[] = [];
    for (const [i, c] of cases.entries()) {
      const bytes = await Deno.readFile(`${dir}/out${i}.bin`);
      const out = new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
      const nLogits = c.batch * c.seq * c.cfg.vocabSize;
      let off = nLogits + 1;
      const grads = new Map<string, Float64Array>();
      for (const name of refParamShapes(c.cfg).keys()) {
        const n = c.params.get(name)!.length;
        grads.set(name, out.slice(off, off + n));
        off += n;
      }
      assert.equal(off, out.length);
      results.push({ logits: out.slice(0, nLogits), loss: out[nLogits], grads });
    }
    return results;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const HAS_TORCH = torchAvailable();
if (!HAS_TORCH) console.warn(`llama_f64_test: no torch at ${PYTHON}; the PyTorch cross-check is ignored`);

Deno.test({
  name:
    "refForward/refLoss agree with PyTorch float64 (logits ~1e-12, loss, and gradients vs finite differences)",
  ignore: !HAS_TORCH,
  fn: async () => {
    const cases: [RefConfig, number, number, number][] = [
      [GQA, 2, 7, 0.3],
      [MHA, 1, 5, 0.5],
      [MQA, 3, 4, 0.2],
      [{ ...GQA, dim: 8, nHeads: 2, nKvHeads: 1, ffnDim: 12, nLayers: 3 }, 2, 3, 0.02],
    ];
    const inputs: TorchCase[] = cases.map(([cfg, batch, seq, std], i) => {
      const rows = batch * seq;
      return {
        cfg,
        batch,
        seq,
        params: randomParams(cfg, 100 + i, std),
        tokens: randomTokens(cfg.vocabSize, rows, 200 + i),
        targets: randomTokens(cfg.vocabSize, rows, 300 + i),
        mask: Float64Array.from({ length: rows }, (_, r) => (r % 3 === 1 ? 0 : 1 + (r % 2))),
      };
    });
    const outputs = await runTorch(inputs);
    for (const [i, { cfg, batch, seq, params, tokens, targets, mask }] of inputs.entries()) {
      const torch = outputs[i];
      const logits = refForward(cfg, params, tokens, batch, seq);
      const scale = Math.max(1, maxAbs(logits));
      const diff = maxAbsDiff(logits, torch.logits);
      assert.ok(diff <= 1e-12 * scale, `case ${i}: logits differ by ${diff} (scale ${scale})`);
      assert.ok(maxAbs(logits) > 1e-3, `case ${i}: logits trivially small`);
      const loss = refLoss(cfg, params, tokens, targets, mask, batch, seq);
      assert.ok(
        Math.abs(loss - torch.loss) <= 1e-12 * Math.max(1, loss),
        `case ${i}: ${loss} vs ${torch.loss}`,
      );

      // torch autograd gradients vs central differences of refLoss, for a few entries of every tensor.
      if (i > 1) continue; // enough coverage, keep the test fast
      const rng = new Rng(400 + i);
      const f = () => refLoss(cfg, params, tokens, targets, mask, batch, seq);
      for (const [name, values] of params) {
        for (let j = 0; j < 2; j++) {
          const idx = rng.int(values.length);
          const fd = finiteDiffGrad(f, values, idx, 1e-5);
          const ad = torch.grads.get(name)![idx];
          assert.ok(
            Math.abs(fd - ad) <= 1e-9 + 1e-7 * Math.abs(ad),
            `case ${i} ${name}[${idx}]: fd ${fd} vs ${ad}`,
          );
        }
      }
    }
  },
});
