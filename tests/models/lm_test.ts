// KV-cache decoding equals full recomputation; scoring equals brute force; sampling statistics.
import assert from "node:assert/strict";
import { KvCache, NativeModel } from "../../runtime/mod.ts";
import { logSoftmaxAt, NativeLanguageModel } from "../../models/lm.ts";
import { applyPenalties, candidates, sampleToken, seededRandom } from "../../models/sampling.ts";
import { randomParams, randomTokens } from "../reference/init.ts";
import { TEST_OPTIM } from "../helpers.ts";

const DIMS = {
  dim: 32,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 48,
  vocabSize: 97,
  maxSeq: 96,
  normEps: 1e-5,
  ropeTheta: 1e4,
};

async function model(): Promise<NativeModel> {
  const m = await NativeModel.create(DIMS, TEST_OPTIM, { seed: 3, initStd: 0.02 });
  for (const [name, v] of randomParams({ ...DIMS }, 17, 0.3)) m.write(name, Float32Array.from(v));
  return m;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 0, diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return diff / scale;
}

Deno.test("KV-cache decode (prefill, token by token, batched ragged) equals full recomputation within 1e-5", async () => {
  using m = await model();
  const V = DIMS.vocabSize;
  const a = Array.from(randomTokens(V, 70, 1)), b = Array.from(randomTokens(V, 23, 2));
  const fullA = await m.logits(Int32Array.from(a), 1, a.length);
  const fullB = await m.logits(Int32Array.from(b), 1, b.length);
  using kv = KvCache.create(m, 3, 96);
  // prefill all of a at once
  assert.ok(maxRelDiff(await kv.decode(a.map(() => 0), a), fullA) < 1e-5);
  // token by token in slot 1, with b interleaved in slot 2 (ragged lengths, one row each per step)
  const stepA = new Float32Array(fullA.length), stepB = new Float32Array(fullB.length);
  for (let t = 0; t < a.length; t++) {
    const rows = t < b.length ? [[1, a[t]], [2, b[t]]] : [[1, a[t]]];
    const out = await kv.decode(rows.map((r) => r[0]), rows.map((r) => r[1]));
    stepA.set(out.subarray(0, V), t * V);
    if (t < b.length) stepB.set(out.subarray(V, 2 * V), t * V);
  }
  assert.ok(maxRelDiff(stepA, fullA) < 1e-5, `step decode ${maxRelDiff(stepA, fullA)}`);
  assert.ok(maxRelDiff(stepB, fullB) < 1e-5, `ragged decode ${maxRelDiff(stepB, fullB)}`);
  assert.equal(kv.length(1), 70);
  assert.equal(kv.length(2), 23);
  // a prefix copied into another slot continues exactly like the original
  kv.copy(1, 0, 40);
  const cont = await kv.decode([0], [a[40]]);
  assert.ok(maxRelDiff(cont, fullA.subarray(40 * V, 41 * V)) < 1e-5);
  await assert.rejects(() => kv.decode([0, 1, 0], [1, 2, 3]), /rows of sequence 0 are not consecutive/);
  await assert.rejects(() => kv.decode([5], [1]), /sequence 5 is outside \[0, 3\)/);
});

Deno.test("score() equals brute-force log-likelihood from full forward passes", async () => {
  using m = await model();
  using lm = new NativeLanguageModel(m, 3); // 2 continuations per batch: exercises grouping
  const V = DIMS.vocabSize;
  const context = [1, 10, 20, 30, 40];
  const conts = [[5], [6, 7, 8], [9, 9], [50, 60, 70, 80]];
  const scores = await lm.score(context, conts);
  for (let i = 0; i < conts.length; i++) {
    const all = [...context, ...conts[i]];
    const logits = await m.logits(Int32Array.from(all), 1, all.length);
    let lp = 0;
    for (let j = 0; j < conts[i].length; j++) {
      lp += logSoftmaxAt(logits, (context.length - 1 + j) * V, V, conts[i][j]);
    }
    assert.ok(Math.abs(scores[i].logprob - lp) < 1e-4, `continuation ${i}: ${scores[i].logprob} vs ${lp}`);
    assert.equal(scores[i].tokens, conts[i].length);
  }
});

Deno.test("generate: greedy equals argmax of full recomputation; seeds reproduce; stop and eos end it", async () => {
  using m = await model();
  using lm = new NativeLanguageModel(m);
  const prompt = [1, 11, 22];
  const greedy: number[] = [];
  for await (const t of lm.generate(prompt, { maxTokens: 6 })) greedy.push(t);
  const seqTokens = [...prompt];
  for (let i = 0; i < 6; i++) {
    const logits = await m.logits(Int32Array.from(seqTokens), 1, seqTokens.length);
    const last = logits.subarray((seqTokens.length - 1) * DIMS.vocabSize);
    seqTokens.push(last.indexOf(Math.max(...last)));
  }
  assert.deepEqual(greedy, seqTokens.slice(prompt.length));
  const run = async (seed: number) => {
    const out: number[] = [];
    for await (const t of lm.generate(prompt, { maxTokens: 8, temperature: 1, seed })) out.push(t);
    return out;
  };
  assert.deepEqual(await run(5), await run(5));
  assert.notDeepEqual(await run(5), await run(6));
  const stopped: number[] = [];
  for await (const t of lm.generate(prompt, { maxTokens: 6, eos: [greedy[1]] })) stopped.push(t);
  assert.deepEqual(stopped, greedy.slice(0, 2));
  const byText: number[] = [];
  const decode = (ids: number[]) => ids.map((i) => `<${i}>`).join("");
  for await (const t of lm.generate(prompt, { maxTokens: 6, stop: [`<${greedy[2]}>`], decode })) {
    byText.push(t);
  }
  assert.deepEqual(byText, greedy.slice(0, 3));
});

Deno.test("sampling: top-p keeps the nucleus, frequency penalty lowers repeats, temperature 0 is argmax", () => {
  const logits = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
  assert.deepEqual(candidates(logits, { temperature: 1, topP: 0.75 }).map((c) => c.token), [0, 1]);
  assert.deepEqual(candidates(logits, { temperature: 1, topP: 0.8 }).map((c) => c.token), [0, 1]);
  assert.deepEqual(candidates(logits, { temperature: 1, topP: 0.81 }).map((c) => c.token), [0, 1, 2]);
  const rand = seededRandom(11);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 20000; i++) counts[sampleToken(logits, { temperature: 1, topP: 0.75 }, rand)]++;
  assert.equal(counts[2] + counts[3], 0, "nothing outside the nucleus");
  assert.ok(Math.abs(counts[0] / 20000 - 0.5 / 0.8) < 0.02, `p(0) ${counts[0] / 20000} vs 0.625`);
  const free = [0, 0, 0, 0];
  for (let i = 0; i < 20000; i++) free[sampleToken(logits, { temperature: 1 }, rand)]++;
  assert.ok(Math.abs(free[3] / 20000 - 0.05) < 0.01, `p(3) ${free[3] / 20000} vs 0.05`);
  assert.equal(sampleToken(logits, { temperature: 0 }, rand), 0);
  const penalised = logits.slice();
  applyPenalties(penalised, new Map([[0, 3]]), { frequencyPenalty: 1, presencePenalty: 0.5 });
  assert.ok(Math.abs(penalised[0] - (logits[0] - 3.5)) < 1e-6);
  const repeats = [0, 0, 0, 0];
  for (let i = 0; i < 20000; i++) repeats[sampleToken(penalised, { temperature: 1 }, rand)]++;
  assert.ok(repeats[0] < counts[0] / 10, "the penalised token is drawn far less often");
});
