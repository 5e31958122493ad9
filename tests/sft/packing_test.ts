// Packing several SFT examples per row: first-fit rows with segment ids (data/sft.ts), and the native model
// computing on a packed batch exactly what it computes on the same examples as separate padded rows.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { NativeModel } from "../../runtime/mod.ts";
import {
  firstFit,
  packBatch,
  padBatch,
  parseSftRow,
  SftDataset,
  type SftTokens,
  tokenizeChat,
} from "../../data/sft.ts";
import { Tokenizer } from "../../data/tokenizer.ts";
import { main as finetune } from "../../cli/finetune.ts";
import { readCheckpointMeta, resolveCheckpoint } from "../../models/checkpoint.ts";
import { saveInitModel } from "./fixtures.ts";
import { Rng } from "../reference/init.ts";
import { assertClose, relErr, tempDir, TEST_OPTIM } from "../helpers.ts";

Deno.test("firstFit: each item in the first row with room, in order; an oversized item is an error", () => {
  assert.deepEqual(firstFit([6, 5, 4, 2, 3], 10), [[0, 2], [1, 3, 4]]);
  assert.deepEqual(firstFit([10, 10, 1], 10), [[0], [1], [2]]);
  assert.deepEqual(firstFit([], 10), []);
  assert.throws(() => firstFit([3, 11], 10), /item 1 of length 11 exceeds the capacity 10/);
  // Against a plain linear first-fit on random lengths.
  const rng = new Rng(2);
  const lengths = Array.from({ length: 300 }, () => 1 + Math.floor(rng.uniform() * 64));
  const naive: number[][] = [], free: number[] = [];
  lengths.forEach((len, i) => {
    const r = free.findIndex((f) => f >= len);
    if (r < 0) naive.push([i]), free.push(64 - len);
    else naive[r].push(i), free[r] -= len;
  });
  assert.deepEqual(firstFit(lengths, 64), naive);
});

Deno.test("packBatch: examples back to back, one segment id each, padding its own ids with weight 0", () => {
  const a: SftTokens = { ids: [5, 6, 7], weights: [0, 1, 1] };
  const b: SftTokens = { ids: [8, 9, 10, 11], weights: [0, 0, 1, 1] };
  const p = packBatch([[a, b], [b]], 32, 0);
  assert.equal(p.seq, 16); // fullest row 5 inputs → 16
  assert.deepEqual([...p.tokens.subarray(0, 6)], [5, 6, 8, 9, 10, 0]);
  assert.deepEqual([...p.targets.subarray(0, 6)], [6, 7, 9, 10, 11, 0]);
  assert.deepEqual([...p.lossMask.subarray(0, 6)], [1, 1, 0, 1, 1, 0]);
  assert.deepEqual([...p.segmentIds!.subarray(0, 8)], [0, 0, 1, 1, 1, 2, 3, 4]);
  assert.deepEqual([...p.segmentIds!.subarray(16, 20)], [0, 0, 0, 1]);
  assert.equal(p.lossMask.reduce((x, y) => x + y, 0), 4 + 2);
  assert.equal(padBatch([a], 32, 0).segmentIds, undefined);
  assert.throws(() => packBatch([[b, b, b]], 8, 0), /a packed row holds 9 tokens, more than seq 8/);
});

Deno.test("SftDataset pack: every example once per epoch, rows within seq, deterministic given the seed", () => {
  const rng = new Rng(4);
  const ex: SftTokens[] = Array.from({ length: 50 }, (_, i) => {
    const n = 2 + Math.floor(rng.uniform() * 40);
    return { ids: Array.from({ length: n }, (_, t) => i * 100 + t), weights: new Array(n).fill(1) };
  });
  const ds = new SftDataset(ex, { seq: 64, seed: 3, pack: true });
  assert.ok(ds.packed);
  let first = 0;
  for (const epoch of [0, 1, 2]) {
    const rows = ds.rowsInEpoch(epoch);
    assert.ok(rows < ex.length / 2, `${rows} rows for ${ex.length} examples`);
    const seen: number[] = [];
    for (let r = 0; r < rows; r++) {
      const row = ds.packedRow(first + r);
      assert.ok(row.reduce((a, e) => a + e.ids.length - 1, 0) <= 64);
      seen.push(...row.map((e) => e.ids[0] / 100));
    }
    assert.deepEqual(seen.toSorted((x, y) => x - y), [...Array(50).keys()]);
    first += rows;
  }
  assert.equal(ds.samplesIn(3), first);
  assert.equal(ds.samplesIn(1.5), ds.rowsInEpoch(0) + 0.5 * ds.rowsInEpoch(1));
  // Batches are a pure function of the row index, across the epoch boundary too.
  const at = ds.rowsInEpoch(0) - 2;
  const b = ds.batch(at, 4);
  const again = new SftDataset(ex, { seq: 64, seed: 3, pack: true }).batch(at, 4);
  assert.deepEqual([b.tokens, b.segmentIds, b.lossMask], [again.tokens, again.segmentIds, again.lossMask]);
  const rows = [0, 1, 2, 3].map((r) => ds.packedRow(at + r));
  assert.deepEqual(b, packBatch(rows, 64, 0));
  const other = new SftDataset(ex, { seq: 64, seed: 4, pack: true }).batch(0, 4);
  assert.notDeepEqual(other.tokens, ds.batch(0, 4).tokens);
});

// Multi-tile rows (seq 160 > the kernel's 64-token tiles), GQA; vocabulary 90.
const DIMS = {
  dim: 32,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 48,
  vocabSize: 90,
  maxSeq: 160,
  normEps: 1e-5,
  ropeTheta: 10000,
};
const SEQ = 160;

/** Examples of the given id counts: a prompt of weight 0 (0.5 for every third), then an answer of weight 1. */
function examples(lengths: number[], seed: number): SftTokens[] {
  const rng = new Rng(seed);
  return lengths.map((n, i) => ({
    ids: Array.from({ length: n }, () => Math.floor(rng.uniform() * DIMS.vocabSize)),
    weights: Array.from({ length: n }, (_, t) => (t >= n / 3 ? 1 : i % 3 === 0 ? 0.5 : 0)),
  }));
}

const model = () => NativeModel.create(DIMS, TEST_OPTIM, { seed: 9, initStd: 0.3 });

Deno.test("a packed batch gives the loss, logits and gradients of the same examples as padded rows", async () => {
  const ex = examples([31, 71, 46, 13, 91, 6, 61, 120], 1);
  const rows = firstFit(ex.map((e) => e.ids.length - 1), SEQ).map((r) => r.map((i) => ex[i]));
  assert.equal(rows.length, 3); // rows of 157, 155 and 119 tokens: segments cross tiles and start mid-tile
  const packed = packBatch(rows, SEQ, 0), padded = padBatch(ex, SEQ, 0);
  assert.equal(packed.seq, SEQ);
  const denom = padded.lossMask.reduce((a, b) => a + b, 0);
  assertClose(packed.lossMask.reduce((a, b) => a + b, 0), denom, 1e-7, "mask sum");
  using m = await model();
  // Loss and gradients of one forward + backward.
  m.zeroGrad();
  const lossPadded = await m.forwardBackward(
    padded.tokens,
    padded.targets,
    padded.lossMask,
    8,
    padded.seq,
    denom,
  );
  const gradPadded = m.params().map((p) => m.read(p.name, "grad"));
  m.zeroGrad();
  const lossPacked = await m.forwardBackward(
    packed.tokens,
    packed.targets,
    packed.lossMask,
    3,
    SEQ,
    denom,
    packed.segmentIds,
  );
  assertClose(lossPacked, lossPadded, 1e-5, "Σ mask·CE");
  m.params().forEach((p, i) => {
    const err = relErr(m.read(p.name, "grad"), gradPadded[i]);
    assert.ok(err <= 1e-5, `${p.name}: gradient relative error ${err.toExponential(2)}`);
  });
  // Without segment ids the packed rows are another computation (the examples would see each other).
  m.zeroGrad();
  const mixed = await m.forwardBackward(packed.tokens, packed.targets, packed.lossMask, 3, SEQ, denom);
  assert.ok(Math.abs(mixed - lossPadded) > 1e-3 * lossPadded, "segment ids changed nothing");
  // Logits at every example position, and the eval loss.
  const V = DIMS.vocabSize;
  const lp = await m.logits(packed.tokens, 3, SEQ, packed.segmentIds);
  const ld = await m.logits(padded.tokens, 8, padded.seq);
  let at = 0, row = 0, maxErr = 0, scale = 0;
  for (const r of rows) {
    at = row * SEQ;
    for (const e of r) {
      const k = ex.indexOf(e);
      for (let t = 0; t < e.ids.length - 1; t++, at++) {
        for (let v = 0; v < V; v++) {
          const want = ld[(k * padded.seq + t) * V + v];
          maxErr = Math.max(maxErr, Math.abs(lp[at * V + v] - want));
          scale = Math.max(scale, Math.abs(want));
        }
      }
    }
    row++;
  }
  assert.ok(maxErr <= 1e-5 * scale, `logits: max error ${maxErr} (scale ${scale})`);
  const ep = await m.evalLoss(packed.tokens, packed.targets, packed.lossMask, 3, SEQ, packed.segmentIds);
  const ed = await m.evalLoss(padded.tokens, padded.targets, padded.lossMask, 8, padded.seq);
  assertClose(ep.lossSum / ep.count, ed.lossSum / ed.count, 1e-5, "eval loss");
});

Deno.test("train steps on packed rows equal train steps on padded rows (loss Σ mask·CE / Σ mask, update)", async () => {
  using a = await model();
  using b = await model();
  for (const seed of [1, 2]) {
    const ex = examples([40, 100, 12, 77, 9, 150, 30, 64], seed);
    const padded = padBatch(ex, SEQ, 0);
    const rows = firstFit(ex.map((e) => e.ids.length - 1), SEQ).map((r) => r.map((i) => ex[i]));
    const packed = packBatch(rows, SEQ, 0);
    const ra = await a.trainStep({ ...padded, nMicro: 2, batch: 4 });
    const rb = await b.trainStep({ ...packed, nMicro: rows.length, batch: 1 });
    assertClose(rb.loss, ra.loss, 1e-5, `step ${seed} loss`);
    assertClose(rb.gradNorm, ra.gradNorm, 1e-5, `step ${seed} grad norm`);
    assert.equal(rb.nTokens, ra.nTokens);
  }
  for (const p of a.params()) {
    const err = relErr(b.read(p.name), a.read(p.name));
    assert.ok(err <= 1e-5, `${p.name}: parameter relative error ${err.toExponential(2)}`);
  }
});

Deno.test("segment ids of the wrong size or decreasing are refused, naming segmentIds", async () => {
  using m = await model();
  const t = new Int32Array(32), mask = new Float32Array(32).fill(1);
  await assert.rejects(
    () =>
      m.trainStep({
        tokens: t,
        targets: t,
        lossMask: mask,
        segmentIds: new Int32Array(31),
        nMicro: 1,
        batch: 2,
        seq: 16,
      }),
    /segmentIds has 31 elements, expected 2 rows × 16 = 32/,
  );
  const seg = Int32Array.from({ length: 32 }, (_, i) => (i === 21 ? 0 : Math.floor((i % 16) / 4)));
  await assert.rejects(
    () => m.logits(t, 2, 16, seg),
    /segmentIds: row 1 position 5 has id 0 after 1; segment ids must not decrease along a row/,
  );
});

Deno.test({
  name: "finetune --pack: steps count packed rows; the run trains on them and records sft.pack",
  sanitizeResources: false,
  fn: async () => {
    using dir = tempDir("sft-pack-");
    const cfg = await saveInitModel(join(dir.path, "pre"), { seq: 128 });
    const rows = Array.from({ length: 12 }, (_, i) => ({
      messages: [
        { role: "user", content: `Question ${i}: ${"which drug? ".repeat(1 + (i % 4))}` },
        { role: "assistant", content: `Answer ${i}.` },
      ],
    }));
    const data = join(dir.path, "sft.jsonl");
    await Deno.writeTextFile(data, rows.map((r) => JSON.stringify(r)).join("\n"));
    const tok = Tokenizer.llama2({ chatTokens: true });
    const ex = rows.map((r, i) => tokenizeChat(tok, parseSftRow(r, `#${i}`)));
    const expected = new SftDataset(ex, { seq: 128, seed: cfg.train.seed, pack: true }).samplesIn(2);
    assert.ok(expected < 12, `${expected} packed rows for 12 examples`);
    await finetune([
      ...["--init", join(dir.path, "pre"), "--data", data, "--name", "ft", "--out", dir.path, "--pack"],
      ...["--epochs", "2", "--seq", "128", "--micro-batch", "1", "--grad-accum", "1", "--lr", "1e-3"],
      ...["--seed", String(cfg.train.seed)],
    ]);
    const meta = await readCheckpointMeta(await resolveCheckpoint(join(dir.path, "ft")));
    assert.equal(meta.iteration, Math.ceil(expected));
    const saved = parseYaml(await Deno.readTextFile(join(dir.path, "ft", "config.yaml"))) as {
      sft: { pack: boolean };
    };
    assert.equal(saved.sft.pack, true);
    const metrics = (await Deno.readTextFile(join(dir.path, "ft", "metrics.jsonl"))).trim().split("\n");
    assert.ok(metrics.every((l) => Number.isFinite(JSON.parse(l).loss)));
    // --pack works on the CUDA backend too; on this CPU build the device is refused before anything is written.
    await assert.rejects(
      finetune([
        "--init",
        join(dir.path, "pre"),
        "--data",
        data,
        "--name",
        "gpu",
        "--out",
        dir.path,
        "--pack",
        "--device",
        "cuda",
      ]),
      /CUDA/,
    );
    assert.ok(!existsSync(join(dir.path, "gpu")));
  },
});
