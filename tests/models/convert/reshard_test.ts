// Resharding: full tensors (parameters and both AdamW moments) survive any (tp, pp, dp, ZeRO-1) → any other
// exactly; the ZeRO-1 flat layout matches the runtime's; and a model trained under mpirun at (2, 2) resumes
// after (2,2) → (1,1) → (2,1) with the same losses as the original layout (the optimizer state included).
import assert from "node:assert/strict";
import { join } from "node:path";
import { readCheckpointMeta, resolveCheckpoint } from "../../../models/checkpoint.ts";
import { modelDims, presetConfig } from "../../../models/config.ts";
import { allParams, flatLayout, fullShape } from "../../../models/convert/layout.ts";
import { NativeCheckpointReader, writeNativeCheckpoint } from "../../../models/convert/native.ts";
import { reshard } from "../../../models/convert/reshard.ts";
import { growRowsWithMean } from "../../../models/convert/resize.ts";
import { NativeModel } from "../../../runtime/model.ts";
import { assertClose, hasMpirun, tempDir, TEST_OPTIM } from "../../helpers.ts";
import { GQA, values } from "./fixtures.ts";

const CFG = { ...presetConfig("tiny"), model: GQA };
CFG.train.seq = 32;
const size = (name: string) => fullShape(GQA, name).reduce((a, b) => a * b, 1);
type FixtureMeta = Parameters<typeof writeNativeCheckpoint>[1];

/** A checkpoint of {@linkcode values} tensors at AdamW step 7 (config CFG, iteration 1, 8 samples, unless set). */
function writeFixture(
  path: string,
  meta: Partial<FixtureMeta> & Pick<FixtureMeta, "topology">,
): Promise<string> {
  return writeNativeCheckpoint(path, {
    config: CFG,
    iteration: 1,
    consumedSamples: 8,
    data: {},
    step: 7,
    ...meta,
  }, {
    param: (n) => Promise.resolve(values(n, size(n))),
    moment: (n, k) => Promise.resolve(values(`${k === "exp_avg" ? "m" : "v"}:${n}`, size(n))),
  });
}

async function assertSame(dir: string, what: string): Promise<void> {
  using r = await NativeCheckpointReader.open(dir);
  assert.equal(await r.step(), 7, what);
  for (const name of allParams(GQA)) {
    assert.deepEqual(await r.param(name), values(name, size(name)), `${what}: ${name}`);
    assert.deepEqual(await r.moment(name, "exp_avg"), values(`m:${name}`, size(name)), `${what}: m ${name}`);
    assert.deepEqual(
      await r.moment(name, "exp_avg_sq"),
      values(`v:${name}`, size(name)),
      `${what}: v ${name}`,
    );
  }
}

Deno.test("reshard keeps every parameter and moment exactly across tp/pp/dp/ZeRO-1 layouts", async () => {
  using dir = tempDir();
  const first = await writeFixture(join(dir.path, "a"), {
    topology: { tp: 2, pp: 2, dp: 2, zero1: true },
    iteration: 5,
    consumedSamples: 40,
    data: { seed: 3 },
  });
  assert.equal(Object.keys((await readCheckpointMeta(first)).shards).length, 4 + 8);
  await assertSame(first, "tp2 pp2 dp2 zero1");
  const layouts = [
    { tp: 1, pp: 1, dp: 1, zero1: false },
    { tp: 2, pp: 1, dp: 3, zero1: true },
    { tp: 1, pp: 2, dp: 1, zero1: false },
    { tp: 2, pp: 2, dp: 1, zero1: false },
  ];
  let prev = join(dir.path, "a");
  for (const [i, t] of layouts.entries()) {
    const out = join(dir.path, `r${i}`);
    const ck = await reshard(prev, out, { ...t, notice: () => {} }); // the dp notices: tested below
    const meta = await readCheckpointMeta(ck);
    assert.deepEqual(meta.topology, t);
    assert.equal(meta.iteration, 5);
    assert.equal(meta.consumed_samples, 40);
    assert.deepEqual(meta.data, { seed: 3 });
    assert.deepEqual(meta.config.parallel, {
      tp: t.tp,
      pp: t.pp,
      dp: t.dp,
      distributed_optimizer: t.zero1,
      device: "cpu", // not written by reshard: read as the default
      recompute: "none",
    });
    await assertSame(ck, JSON.stringify(t));
    prev = out;
  }
  await assert.rejects(
    () => reshard(prev, join(dir.path, "bad"), { tp: 3 }),
    /not divisible by parallel.tp \(3\)/,
  );
  await assert.rejects(() => reshard(prev, join(dir.path, "r0")), /already exists/);
  // A corrupted shard is refused by its checksum; no output directory appears.
  const ck = await resolveCheckpoint(prev);
  const f = join(ck, "model-tp01-pp01.safetensors");
  const bytes = Deno.readFileSync(f);
  bytes[bytes.length - 1] ^= 1;
  Deno.writeFileSync(f, bytes);
  await assert.rejects(
    () => reshard(prev, join(dir.path, "c"), { tp: 1, pp: 1 }),
    /model-tp01-pp01.safetensors: sha256 mismatch/,
  );
  assert.ok(![...Deno.readDirSync(dir.path)].some((e) => e.name === "c" || e.name.startsWith(".c.")));
});

Deno.test("reshard to another dp keeps the global batch by rescaling grad_accum, or says it cannot", async () => {
  using dir = tempDir();
  // micro_batch 4 × grad_accum 4 × dp 1: a global batch of 16.
  const cfg = { ...CFG, train: { ...CFG.train, micro_batch: 4, grad_accum: 4 } };
  await writeFixture(join(dir.path, "a"), { config: cfg, topology: { tp: 1, pp: 1, dp: 1, zero1: false } });
  // [source, target, dp, grad_accum written, notice]
  const cases: [string, string, number, number, RegExp][] = [
    ["a", "b", 2, 2, /grad_accum 4 -> 2 keeps the global batch of 16 sequences .* at dp 2/],
    ["b", "c", 4, 1, /grad_accum 2 -> 1 keeps the global batch of 16 /],
    // 16 is not a multiple of micro_batch 4 × dp 8: grad_accum stays, and the notice says how to keep 16.
    ["c", "c8", 8, 1, /the global batch becomes 32; keep it with .*--micro-batch 2 --grad-accum 1'/],
    ["c", "c3", 3, 1, /the global batch becomes 12; 16 is not a multiple of 3/],
  ];
  for (const [from, to, dp, gradAccum, notice] of cases) {
    const lines: string[] = [];
    const ck = await reshard(join(dir.path, from), join(dir.path, to), { dp, notice: (l) => lines.push(l) });
    const meta = await readCheckpointMeta(ck);
    assert.equal(meta.config.parallel.dp, dp);
    assert.equal(meta.config.train.grad_accum, gradAccum, `${from} → dp ${dp}`);
    assert.equal(meta.config.train.micro_batch, 4);
    assert.equal(meta.consumed_samples, 8);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0], notice);
  }
  // The same dp: nothing changes, nothing said.
  const lines: string[] = [];
  const same = await reshard(join(dir.path, "c"), join(dir.path, "same"), {
    tp: 1,
    notice: (l) => lines.push(l),
  });
  assert.equal((await readCheckpointMeta(same)).config.train.grad_accum, 1);
  assert.deepEqual(lines, []);
});

Deno.test("the ZeRO-1 flat layout (order, padded vocab rows) matches the runtime's", async () => {
  const dims = modelDims(GQA);
  let model: NativeModel;
  try {
    model = await NativeModel.create(dims, TEST_OPTIM, { seed: 1, initStd: 0.02 }, {
      tp: 1,
      pp: 1,
      dp: 1,
      zero1: true,
    });
  } catch (e) {
    throw new Error(`a 1-rank ZeRO-1 model could not be created: ${(e as Error).message}`);
  }
  using _m = model;
  const flat = flatLayout(GQA, 0, 1, 0, 1);
  assert.equal(model.optimChunk.flatSize, flat.size);
  assert.deepEqual(model.params().map((p) => p.name), flat.specs.map((s) => s.name));
});

// ---- End to end under mpirun -------------------------------------------------------------------------------

const CLI = new URL("../../../cli/pretrain.ts", import.meta.url).pathname;
const haveMpirun = await hasMpirun();

function corpus(dir: string): string {
  const path = join(dir, "c.jsonl");
  const lines = Array.from(
    { length: 60 },
    (_, i) =>
      JSON.stringify({ text: `Patient ${i} with type 2 diabetes started metformin and lost weight.` }),
  );
  Deno.writeTextFileSync(path, lines.join("\n") + "\n");
  return path;
}

async function pretrain(dir: string, name: string, extra: string[]): Promise<void> {
  const args = [
    "run",
    "-A",
    CLI,
    "--data",
    corpus(dir),
    "--out",
    dir,
    "--name",
    name,
    "--seq",
    "16",
    "--micro-batch",
    "2",
    "--eval-every",
    "0",
    "--set",
    "train.warmup_steps=1",
    "--set",
    "model.dim=32",
    "--set",
    "model.ffn_dim=64",
    "--set",
    "model.n_layers=2",
    ...extra,
  ];
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, (dec.decode(out.stderr) + dec.decode(out.stdout)).slice(-3000));
}

function losses(runDir: string): number[] {
  return Deno.readTextFileSync(join(runDir, "metrics.jsonl")).trim().split("\n").map((l) => JSON.parse(l))
    .filter((m) => m.step > 2).map((m) => m.loss);
}

Deno.test({
  name: "a (2,2) run resumes after reshard (2,2) → (1,1) → (2,1) with the same losses",
  ignore: !haveMpirun,
  fn: async () => {
    using dir = tempDir();
    const d = dir.path;
    await pretrain(d, "p22", ["--tp", "2", "--pp", "2", "--steps", "2"]);
    await reshard(join(d, "p22"), join(d, "p11"), { tp: 1, pp: 1 });
    await reshard(join(d, "p11"), join(d, "p21"), { tp: 2, pp: 1 });
    // Continue each layout for two steps: step 3's loss tests the parameters, step 4's the AdamW state.
    await pretrain(d, "p22", ["--tp", "2", "--pp", "2", "--steps", "4", "--resume"]);
    await pretrain(d, "p11", ["--steps", "4", "--resume"]);
    await pretrain(d, "p21", ["--tp", "2", "--steps", "4", "--resume"]);
    const want = losses(join(d, "p22"));
    assert.equal(want.length, 2);
    for (const run of ["p11", "p21"]) {
      const got = losses(join(d, run));
      assert.equal(got.length, 2, run);
      got.forEach((l, i) => assertClose(l, want[i], 1e-5, `${run} step ${i + 3}`));
    }
  },
});

Deno.test("added tokens: new embedding and head rows are the mean of the existing rows, moments zero", async () => {
  assert.deepEqual([...growRowsWithMean(new Float32Array([1, 2, 3, 6]), 2, 2, 2)], [1, 2, 3, 6, 2, 4, 2, 4]);
  using dir = tempDir();
  await writeFixture(join(dir.path, "a"), { topology: { tp: 2, pp: 1, dp: 1, zero1: false } });
  const ck = await reshard(join(dir.path, "a"), join(dir.path, "b"), { tp: 1, addTokens: 2 });
  using r = await NativeCheckpointReader.open(ck);
  assert.equal(r.model.vocab_size, 302);
  for (const name of ["model.embed_tokens.weight", "lm_head.weight"]) {
    const old = values(name, size(name)), grown = await r.param(name);
    assert.deepEqual(grown.subarray(0, old.length), old);
    for (let c = 0; c < GQA.dim; c++) {
      let s = 0;
      for (let row = 0; row < 300; row++) s += old[row * GQA.dim + c];
      assert.equal(grown[300 * GQA.dim + c], Math.fround(s / 300));
      assert.equal(grown[301 * GQA.dim + c], Math.fround(s / 300));
    }
    const m = await r.moment(name, "exp_avg");
    assert.ok(m.subarray(300 * GQA.dim).every((x) => x === 0));
  }
});

Deno.test({
  name:
    "a ZeRO-1 run (tp 2, dp 2) resumes after reshard to per-parameter state (tp 1, dp 2) with the same losses",
  ignore: !haveMpirun,
  fn: async () => {
    using dir = tempDir();
    const d = dir.path;
    const z1 = ["--dp", "2", "--distributed-optimizer"];
    await pretrain(d, "z", ["--tp", "2", ...z1, "--steps", "2"]);
    await reshard(join(d, "z"), join(d, "p"), { tp: 1, zero1: false });
    const meta = await readCheckpointMeta(await resolveCheckpoint(join(d, "p")));
    assert.deepEqual(meta.topology, { tp: 1, pp: 1, dp: 2, zero1: false });
    await pretrain(d, "z", ["--tp", "2", ...z1, "--steps", "4", "--resume"]);
    await pretrain(d, "p", ["--dp", "2", "--steps", "4", "--resume"]);
    const want = losses(join(d, "z")), got = losses(join(d, "p"));
    assert.equal(want.length, 2);
    got.forEach((l, i) => assertClose(l, want[i], 1e-5, `step ${i + 3}`));
  },
});
