// Bad arguments through FFI come back as one-line MeditronErrors; nothing crashes.
import assert from "node:assert/strict";
import { attentionForward, MeditronError, NativeModel } from "../../runtime/mod.ts";
import type { ModelDims } from "../../runtime/ffi.ts";
import { TEST_OPTIM } from "../helpers.ts";

const DIMS: ModelDims = {
  dim: 16,
  nLayers: 1,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 16,
  vocabSize: 32,
  maxSeq: 16,
  normEps: 1e-5,
  ropeTheta: 10000,
};

async function rejects(fn: () => unknown, pattern: RegExp): Promise<void> {
  await assert.rejects(async () => await fn(), (e: Error) => {
    assert.ok(e instanceof MeditronError, `expected MeditronError, got ${e.name}: ${e.message}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("invalid model configs are rejected with the offending values", async () => {
  await rejects(
    () => NativeModel.create({ ...DIMS, nHeads: 3 }, TEST_OPTIM, { seed: 1, initStd: 0.02 }),
    /dim 16 is not divisible by n_heads 3/,
  );
  await rejects(
    () => NativeModel.create({ ...DIMS, nKvHeads: 3 }, TEST_OPTIM, { seed: 1, initStd: 0.02 }),
    /n_kv_heads 3 does not divide n_heads 4/,
  );
  await rejects(
    () => NativeModel.create(DIMS, { ...TEST_OPTIM, lr: -1 }, { seed: 1, initStd: 0.02 }),
    /lr must be a finite number >= 0/,
  );
  await rejects(
    () => NativeModel.create({ ...DIMS, vocabSize: 0 }, TEST_OPTIM, { seed: 1, initStd: 0.02 }),
    /sizes must be positive/,
  );
  await rejects(
    () => NativeModel.create(DIMS, { ...TEST_OPTIM, beta2: 1 }, { seed: 1, initStd: 0.02 }),
    /beta2 must be in \[0, 1\)/,
  );
});

Deno.test("wrong shapes, ids and sizes through FFI are errors, not crashes", async () => {
  using m = await NativeModel.create(DIMS, TEST_OPTIM, { seed: 1, initStd: 0.02 });
  const t8 = new Int32Array(8), mask8 = new Float32Array(8).fill(1);
  await rejects(
    () => m.trainStep({ tokens: t8, targets: t8, lossMask: mask8, nMicro: 1, batch: 3, seq: 4 }),
    /buffers hold 8 tokens but n_micro 1 x batch 3 x seq 4 = 12/,
  );
  await rejects(
    () => m.trainStep({ tokens: t8, targets: t8, lossMask: mask8, nMicro: 0, batch: 2, seq: 4 }),
    /n_micro must be positive/,
  );
  const t32 = new Int32Array(32);
  await rejects(() => m.logits(t32, 1, 32), /seq 32 exceeds the model's max_seq 16/);
  await rejects(
    () => m.logits(Int32Array.from([1, 2, 99, 3]), 1, 4),
    /tokens\[2\] = 99 is outside the vocabulary \[0, 32\)/,
  );
  await rejects(
    () =>
      m.trainStep({
        tokens: t8,
        targets: Int32Array.from([0, 0, 0, -1, 0, 0, 0, 0]),
        lossMask: mask8,
        nMicro: 1,
        batch: 2,
        seq: 4,
      }),
    /targets\[3\] = -1/,
  );
  await rejects(
    () =>
      m.trainStep({ tokens: t8, targets: t8, lossMask: new Float32Array(8), nMicro: 1, batch: 2, seq: 4 }),
    /loss mask of the whole batch is zero/,
  );
  await rejects(
    () =>
      m.trainStep({
        tokens: t8,
        targets: t8,
        lossMask: mask8.map((_, i) => i === 5 ? NaN : 1),
        nMicro: 1,
        batch: 2,
        seq: 4,
      }),
    /loss_mask\[5\] = nan/,
  );
  await rejects(
    () => m.write("model.norm.weight", new Float32Array(3)),
    /'model.norm.weight' has 16 elements, buffer has 3/,
  );
  await rejects(
    () => m.write("model.norm.weight", new Float32Array(16).fill(Infinity)),
    /element 0 is not finite/,
  );
  assert.throws(() => m.read("nope"), /unknown parameter 'nope'/);
  const q = new Float32Array(2 * 4 * 8), kv = new Float32Array(2 * 4 * 8);
  const kv3 = new Float32Array(48);
  await rejects(
    () => attentionForward(q, kv3, kv3, { B: 1, T: 4, H: 4, KVH: 3, hd: 4 }),
    /n_kv_heads 3 does not divide n_heads 4/,
  );
  await assert.rejects(
    () => attentionForward(q, kv, kv, { B: 1, T: 5, H: 4, KVH: 2, hd: 4 }),
    /q has 64 elements, expected 80/,
  );
  // The model still works after every rejected call.
  const ok = await m.trainStep({ tokens: t8, targets: t8, lossMask: mask8, nMicro: 1, batch: 2, seq: 4 });
  assert.ok(Number.isFinite(ok.loss));
});

Deno.test("a disposed model refuses calls", async () => {
  const m = await NativeModel.create(DIMS, TEST_OPTIM, { seed: 1, initStd: 0.02 });
  m.dispose();
  m.dispose(); // idempotent
  assert.throws(() => m.read("model.norm.weight"), /disposed/);
});
