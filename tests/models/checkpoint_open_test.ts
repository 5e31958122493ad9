// openModel (what eval, chat and serve load with) opens a checkpoint of any parallel layout as one rank:
// tensor-, pipeline- and ZeRO-1 data-parallel shards are merged into the same model as the tp=1 checkpoint.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openModel } from "../../models/checkpoint.ts";
import { presetConfig } from "../../models/config.ts";
import { fullShape } from "../../models/convert/layout.ts";
import { writeNativeCheckpoint } from "../../models/convert/native.ts";
import { KvCache } from "../../runtime/kv.ts";
import type { NativeModel } from "../../runtime/model.ts";
import { tempDir } from "../helpers.ts";
import { GQA, values } from "./convert/fixtures.ts";

const CFG = { ...presetConfig("tiny"), model: GQA };
CFG.train.seq = 32;
const size = (name: string) => fullShape(GQA, name).reduce((a, b) => a * b, 1);

/** Writes the same tensors (values() of each name) as a checkpoint of layout `topology`. */
function write(run: string, topology: { tp: number; pp: number; dp: number; zero1: boolean }) {
  return writeNativeCheckpoint(run, {
    config: CFG,
    topology,
    iteration: 3,
    consumedSamples: 24,
    data: {},
    step: 5,
  }, {
    param: (n) => Promise.resolve(values(n, size(n))),
    moment: (n, k) => Promise.resolve(values(`${k}:${n}`, size(n))),
  });
}

async function logits(model: NativeModel): Promise<Float32Array> {
  using kv = KvCache.create(model, 1, GQA.max_seq);
  const tokens = [1, 17, 250, 3, 99, 42];
  return await kv.decode(tokens.map(() => 0), tokens, tokens.map(() => true));
}

Deno.test("openModel merges tp=2, pp=2 and ZeRO-1 dp=2 checkpoints into the tp=1 model", async () => {
  using dir = tempDir();
  await write(join(dir.path, "tp1"), { tp: 1, pp: 1, dp: 1, zero1: false });
  const ref = await openModel(join(dir.path, "tp1"));
  using refModel = ref.model;
  const want = await logits(refModel);
  const layouts = [
    { tp: 2, pp: 1, dp: 1, zero1: false },
    { tp: 1, pp: 2, dp: 1, zero1: false },
    { tp: 2, pp: 2, dp: 2, zero1: true },
  ];
  for (const t of layouts) {
    const what = JSON.stringify(t);
    const run = join(dir.path, `tp${t.tp}-pp${t.pp}-dp${t.dp}`);
    const ck = await write(run, t);
    const opened = await openModel(run, { verify: true });
    using model = opened.model;
    assert.equal(opened.dir, ck, what);
    assert.deepEqual(opened.meta.topology, t, what);
    assert.equal(model.rank.tp, 1, what);
    assert.equal(model.step, 5, what);
    for (const p of refModel.params()) {
      assert.deepEqual(model.read(p.name), refModel.read(p.name), `${what}: ${p.name}`);
      assert.deepEqual(model.read(p.name, "adamV"), refModel.read(p.name, "adamV"), `${what}: v ${p.name}`);
    }
    assert.deepEqual(await logits(model), want, what);
  }
});

Deno.test("openModel verifies the shards of a sharded checkpoint unless verify is false", async () => {
  using dir = tempDir();
  const ck = await write(join(dir.path, "run"), { tp: 2, pp: 1, dp: 1, zero1: false });
  const f = join(ck, "model-tp01-pp00.safetensors");
  const bytes = Deno.readFileSync(f);
  bytes[bytes.length - 1] ^= 1;
  Deno.writeFileSync(f, bytes);
  await assert.rejects(
    () => openModel(join(dir.path, "run")),
    /model-tp01-pp00.safetensors: sha256 mismatch/,
  );
  const opened = await openModel(join(dir.path, "run"), { verify: false });
  opened.model.dispose();
});
