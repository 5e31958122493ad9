// Checkpoints: layout of DESIGN.md §6, round trip, sha256 verification, corrupt and truncated files.
import assert from "node:assert/strict";
import { join } from "node:path";
import { NativeModel } from "../../runtime/mod.ts";
import {
  loadCheckpoint,
  readCheckpointMeta,
  resolveCheckpoint,
  saveCheckpoint,
} from "../../models/checkpoint.ts";
import { presetConfig } from "../../models/config.ts";
import { SafetensorsReader, writeSafetensors } from "../../models/safetensors.ts";
import { tempDir, TEST_OPTIM } from "../helpers.ts";

const DIMS = {
  dim: 16,
  nLayers: 1,
  nHeads: 2,
  nKvHeads: 1,
  ffnDim: 16,
  vocabSize: 40,
  maxSeq: 8,
  normEps: 1e-5,
  ropeTheta: 1e4,
};

async function trained(seed: number): Promise<NativeModel> {
  const m = await NativeModel.create(DIMS, TEST_OPTIM, { seed, initStd: 0.1 });
  const t = Int32Array.from({ length: 16 }, (_, i) => i % 40);
  await m.trainStep({
    tokens: t,
    targets: t.map((x) => (x + 1) % 40),
    lossMask: new Float32Array(16).fill(1),
    nMicro: 1,
    batch: 2,
    seq: 8,
  });
  return m;
}

Deno.test("save → load restores parameters, Adam moments and step; layout and latest pointer", async () => {
  using dir = tempDir();
  using a = await trained(1);
  const cfg = presetConfig("tiny");
  const path = await saveCheckpoint(dir.path, a, cfg, {
    iteration: 7,
    consumedSamples: 56,
    data: { seed: 3 },
  });
  assert.equal(path, join(dir.path, "checkpoints", "iter_0000007"));
  const files = [...Deno.readDirSync(path)].map((e) => e.name).sort();
  assert.deepEqual(files, ["meta.json", "model-tp00-pp00.safetensors", "optim-tp00-pp00-dp00.safetensors"]);
  assert.equal(Deno.readTextFileSync(join(dir.path, "checkpoints", "latest")).trim(), "iter_0000007");
  assert.equal(await resolveCheckpoint(dir.path), path);
  // no temp directories left behind
  assert.deepEqual([...Deno.readDirSync(join(dir.path, "checkpoints"))].map((e) => e.name).sort(), [
    "iter_0000007",
    "latest",
  ]);
  const meta = await readCheckpointMeta(path);
  assert.equal(meta.consumed_samples, 56);
  assert.match(meta.shards["model-tp00-pp00.safetensors"].sha256, /^[0-9a-f]{64}$/);
  using b = await NativeModel.create(DIMS, TEST_OPTIM, { seed: 99, initStd: 0.1 });
  await loadCheckpoint(path, b);
  assert.equal(b.step, 1);
  for (const p of a.params()) {
    for (const kind of ["param", "adamM", "adamV"] as const) {
      assert.deepEqual(b.read(p.name, kind), a.read(p.name, kind), `${p.name} ${kind}`);
    }
  }
});

Deno.test("a rank that fails its shard fails the checkpoint on every rank: no hang, nothing visible, latest kept", async () => {
  using dir = tempDir();
  using a = await trained(3);
  const cfg = presetConfig("tiny");
  const state = (iteration: number) => ({ iteration, consumedSamples: iteration * 8, data: {} });
  const first = await saveCheckpoint(dir.path, a, cfg, state(1));
  // This rank (0) writes its shards fine; the agreement after the shard stage reports another rank's failure.
  const votes: boolean[] = [];
  const otherRankFailsShards = {
    allOk: (ok: boolean) => {
      votes.push(ok);
      return Promise.resolve(ok && votes.length !== 2);
    },
  };
  await assert.rejects(
    saveCheckpoint(dir.path, a, cfg, state(2), otherRankFailsShards),
    /writing a shard of .*\.iter_0000002\.tmp failed on another rank/,
  );
  assert.deepEqual(votes, [true, true], "prepare and shards agreed; publishing never started");
  assert.deepEqual([...Deno.readDirSync(join(dir.path, "checkpoints"))].map((e) => e.name).sort(), [
    "iter_0000001",
    "latest",
  ]);
  assert.equal(await resolveCheckpoint(dir.path), first);
  // A failure on this rank is voted as such (so the other ranks leave too) and thrown as this rank's error.
  const seen: boolean[] = [];
  const blocked = join(dir.path, "blocked");
  await Deno.writeTextFile(blocked, "a file where the checkpoints directory should be");
  await assert.rejects(
    saveCheckpoint(blocked, a, cfg, state(3), { allOk: (ok) => (seen.push(ok), Promise.resolve(ok)) }),
    (e: Error) => !/another rank/.test(e.message),
  );
  assert.deepEqual(seen, [false]);
});

Deno.test("a flipped byte, a truncated shard and broken metadata each give one error naming the file", async () => {
  using dir = tempDir();
  using a = await trained(2);
  const path = await saveCheckpoint(dir.path, a, presetConfig("tiny"), {
    iteration: 1,
    consumedSamples: 2,
    data: {},
  });
  const shard = join(path, "model-tp00-pp00.safetensors");
  const original = Deno.readFileSync(shard);
  using b = await NativeModel.create(DIMS, TEST_OPTIM, { seed: 5, initStd: 0.1 });
  const before = b.read("lm_head.weight");

  const flipped = original.slice();
  flipped[flipped.length - 3] ^= 0x40;
  Deno.writeFileSync(shard, flipped);
  await assert.rejects(() => loadCheckpoint(path, b), new RegExp(`${shard}: sha256 mismatch`));
  assert.deepEqual(b.read("lm_head.weight"), before, "nothing loaded from a corrupt checkpoint");

  Deno.writeFileSync(shard, original.slice(0, 100));
  await assert.rejects(
    () => loadCheckpoint(path, b, { verify: false }),
    /header length \d+ runs past the end|truncated|outside the data/,
  );

  Deno.writeFileSync(shard, original);
  Deno.writeTextFileSync(join(path, "meta.json"), "{ not json");
  await assert.rejects(() => loadCheckpoint(path, b), /meta.json: unreadable checkpoint metadata/);
  await assert.rejects(() => resolveCheckpoint(join(dir.path, "nowhere")), /no checkpoint found/);
});

Deno.test("a checkpoint written before a setting existed reads it as its default; the architecture is kept", async () => {
  using dir = tempDir();
  using a = await trained(1);
  const cfg = presetConfig("tiny");
  cfg.train.lr = 1e-4;
  const path = await saveCheckpoint(dir.path, a, cfg, { iteration: 1, consumedSamples: 8, data: {} });
  const metaPath = join(path, "meta.json");
  const raw = JSON.parse(Deno.readTextFileSync(metaPath));
  delete raw.config.train.on_save_error; // as written by an older toolkit
  delete raw.config.train.skip_limit;
  delete raw.config.parallel.recompute;
  Deno.writeTextFileSync(metaPath, JSON.stringify(raw));
  const meta = await readCheckpointMeta(path);
  assert.equal(meta.config.train.on_save_error, "stop");
  assert.equal(meta.config.train.skip_limit, 10);
  assert.equal(meta.config.parallel.recompute, "none");
  assert.equal(meta.config.train.lr, 1e-4, "what the checkpoint says wins");
  assert.deepEqual(meta.config.model, cfg.model);
  delete raw.config;
  Deno.writeTextFileSync(metaPath, JSON.stringify(raw));
  await assert.rejects(readCheckpointMeta(path), /meta\.json: 'config' is missing/);
});

Deno.test("a checkpoint of another architecture is refused before anything is written", async () => {
  using dir = tempDir();
  using a = await trained(3);
  const path = await saveCheckpoint(dir.path, a, presetConfig("tiny"), {
    iteration: 1,
    consumedSamples: 2,
    data: {},
  });
  using other = await NativeModel.create({ ...DIMS, ffnDim: 32 }, TEST_OPTIM, { seed: 1, initStd: 0.1 });
  await assert.rejects(
    () => loadCheckpoint(path, other),
    /tensor 'model.layers.0.mlp.gate_proj.weight' has shape \[16,16\], the model expects \[32,16\]/,
  );
});

Deno.test("safetensors: our file checked field by field; malformed headers rejected", async () => {
  using dir = tempDir();
  const f = join(dir.path, "x.safetensors");
  await writeSafetensors(f, [{ name: "a", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }, {
    name: "b",
    shape: [1],
    data: new Float32Array([7]),
  }], { k: "v" });
  const bytes = Deno.readFileSync(f);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0, "data section 8-byte aligned");
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assert.deepEqual(header.__metadata__, { k: "v" });
  assert.deepEqual(header.a, { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] });
  assert.deepEqual(header.b, { dtype: "F32", shape: [1], data_offsets: [24, 28] });
  assert.deepEqual(Array.from(new Float32Array(bytes.slice(8 + n).buffer)), [1, 2, 3, 4, 5, 6, 7]);
  using r = await SafetensorsReader.open(f);
  assert.deepEqual(Array.from(await r.readF32("a")), [1, 2, 3, 4, 5, 6]);

  const bad = async (hdr: unknown, data: number, pattern: RegExp) => {
    const json = new TextEncoder().encode(JSON.stringify(hdr));
    const buf = new Uint8Array(8 + json.length + data);
    new DataView(buf.buffer).setBigUint64(0, BigInt(json.length), true);
    buf.set(json, 8);
    Deno.writeFileSync(f, buf);
    await assert.rejects(() => SafetensorsReader.open(f), pattern);
  };
  await bad({ a: { dtype: "F33", shape: [1], data_offsets: [0, 4] } }, 4, /unknown dtype "F33"/);
  await bad({ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, 4, /spans 4 bytes, shape × dtype = 8/);
  await bad({ a: { dtype: "F32", shape: [1], data_offsets: [0, 8] } }, 4, /outside the data/);
  await bad(
    {
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
    },
    8,
    /overlap/,
  );
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  Deno.writeFileSync(f, huge);
  await assert.rejects(() => SafetensorsReader.open(f), /header length \d+ runs past the end of the file/);
});
