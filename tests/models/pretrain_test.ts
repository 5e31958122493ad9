// Training on the embedded corpus: the loss falls by a measured margin, and resume is bit-exact.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { NativeModel } from "../../runtime/mod.ts";
import {
  modelDims,
  optimSettings,
  overrideConfig,
  presetConfig,
  type RunConfig,
  validateConfig,
} from "../../models/config.ts";
import { type StepMetrics, train } from "../../models/trainer.ts";
import { pretrainData } from "../../cli/pretrain.ts";
import { tempDir } from "../helpers.ts";

// A smaller sibling of configs/tiny.yaml so the suite stays fast (real 32000-token vocabulary, GQA).
function smallConfig(steps: number): RunConfig {
  const cfg = presetConfig("tiny");
  for (
    const [k, v] of Object.entries({
      "model.dim": "64",
      "model.n_layers": "2",
      "model.n_heads": "4",
      "model.n_kv_heads": "2",
      "model.ffn_dim": "128",
      "train.seq": "64",
      "train.micro_batch": "4",
      "train.grad_accum": "2",
      "train.warmup_steps": "5",
      "train.lr": "3e-3",
      "train.eval_every": "0",
      "train.save_every": "10",
      "train.steps": String(steps),
      "train.decay_steps": "40",
    })
  ) overrideConfig(cfg, k, v);
  validateConfig(cfg, "test");
  return cfg;
}

async function run(cfg: RunConfig, runDir: string, resume?: string) {
  using model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
    seed: cfg.train.seed,
    initStd: cfg.model.init_std,
  });
  const data = await pretrainData(cfg, () => {});
  const result = await train({ model, config: cfg, runDir, data, resume });
  const params = new Map(model.params().map((p) => [p.name, model.read(p.name)]));
  return { history: result.history, params };
}

const mean = (h: StepMetrics[]) => h.reduce((a, m) => a + m.loss, 0) / h.length;

Deno.test("40 steps on the embedded corpus lower the loss from ~10.4 (ln 32000) to below 7.6", async () => {
  using dir = tempDir();
  const { history } = await run(smallConfig(40), join(dir.path, "run"));
  assert.equal(history.length, 40);
  const first = mean(history.slice(0, 3)), last = mean(history.slice(-5));
  // Measured: first ≈ 10.37, mean of the last 5 ≈ 7.20 (seed 1234). Assert a margin of 2.5 nats.
  assert.ok(first > 10.2, `initial loss ${first}`);
  assert.ok(last < 7.6, `final loss ${last}`);
  assert.ok(first - last > 2.5, `loss fell by only ${first - last}`);
});

Deno.test("exact resume: 20 steps straight equal 10 + resume + 10, bit for bit", async () => {
  using dir = tempDir();
  const straight = await run(smallConfig(20), join(dir.path, "a"));
  const half = await run(smallConfig(10), join(dir.path, "b"));
  const resumed = await run(smallConfig(20), join(dir.path, "b"), join(dir.path, "b"));
  assert.equal(half.history.length, 10);
  assert.equal(resumed.history.length, 10);
  const losses = [...half.history, ...resumed.history].map((m) => m.loss);
  assert.deepEqual(losses, straight.history.map((m) => m.loss));
  for (const [name, p] of straight.params) assert.deepEqual(resumed.params.get(name), p, name);
  // metrics.jsonl of the resumed run holds each step once
  const lines = (await Deno.readTextFile(join(dir.path, "b", "metrics.jsonl"))).trim().split("\n");
  assert.deepEqual(lines.map((l) => JSON.parse(l).step), Array.from({ length: 20 }, (_, i) => i + 1));
});

Deno.test("stop requests: another rank's (via sync) stops after the same step with a checkpoint; one before the first step stops with none and keeps --overwrite's old checkpoints", async () => {
  using dir = tempDir();
  const cfg = smallConfig(20);
  cfg.train.save_every = 0;
  using model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
    seed: cfg.train.seed,
    initStd: cfg.model.init_std,
  });
  const data = await pretrainData(cfg, () => {});
  // A peer's request reaches this rank only through the agreement: the next allOk answers false, once.
  let peerStops = false;
  const sync = {
    allOk: (ok: boolean) => {
      const all = ok && !peerStops;
      peerStops = false;
      return Promise.resolve(all);
    },
  };
  const notices: string[] = [];
  const runDir = join(dir.path, "run");
  const result = await train({
    model,
    config: cfg,
    runDir,
    data,
    sync,
    signal: new AbortController().signal, // never aborted here
    onStep: (m) => {
      if (m.step === 3) peerStops = true;
    },
    onNotice: (s) => notices.push(s),
  });
  assert.equal(result.iteration, 3);
  assert.equal(result.history.length, 3);
  assert.ok(notices.includes("stopped at iteration 3 on request"), notices.join("\n"));
  assert.equal((await Deno.readTextFile(join(runDir, "checkpoints", "latest"))).trim(), "iter_0000003");
  // Already stopping when the run begins (a signal while the model loaded): no step, no new checkpoint.
  const early = new AbortController();
  early.abort();
  const none = await train({
    model,
    config: cfg,
    runDir,
    data,
    resume: runDir,
    sync,
    signal: early.signal,
    onNotice: (s) => notices.push(s),
  });
  assert.equal(none.history.length, 0);
  assert.equal(none.iteration, 3);
  assert.equal(none.checkpoint, undefined);
  assert.match(notices.at(-1)!, /stopped before the first step on request \(iteration 3\)/);
  // --overwrite: a fresh run stopped before its first step leaves the old checkpoints in place; one that
  // trains deletes them at its first step.
  const fresh = (signal: AbortSignal) =>
    train({
      model,
      config: cfg,
      runDir,
      data,
      sync,
      signal,
      overwrite: true,
      onStep: () => peerStops = true,
    });
  assert.equal((await fresh(early.signal)).history.length, 0);
  assert.ok(existsSync(join(runDir, "checkpoints", "iter_0000003")), "kept by a run that never started");
  const trained = await fresh(new AbortController().signal); // a peer stops it after its first step
  assert.equal(trained.iteration, 1);
  assert.deepEqual([...Deno.readDirSync(join(runDir, "checkpoints"))].map((e) => e.name).sort(), [
    "iter_0000001",
    "latest",
  ]);
});
