// Numerical guards: a non-finite gradient norm skips the update (parameters, moments and the optimizer step
// stay as they were), and a run of such steps stops with a checkpoint and the offending samples named.
import assert from "node:assert/strict";
import { join } from "node:path";
import { NativeModel } from "../../runtime/mod.ts";
import { modelDims, optimSettings, overrideConfig, validateConfig } from "../../models/config.ts";
import { type BatchSource, train } from "../../models/trainer.ts";
import { readCheckpointMeta, resolveCheckpoint } from "../../models/checkpoint.ts";
import { tempDir } from "../helpers.ts";
import { SYNTHETIC_DATA, tinyRunConfig } from "./tiny_run.ts";

function config() {
  return tinyRunConfig({ steps: "8", save_every: "0", skip_limit: "3" });
}

const data = SYNTHETIC_DATA;

Deno.test("non-finite steps are skipped without touching the model, and a run of them stops with a checkpoint", async () => {
  using dir = tempDir();
  const cfg = config();
  using model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
    seed: 1,
    initStd: 0.02,
  });
  // Overflowing logits (|h|·|w| ≫ 3.4e38) make the loss and every gradient non-finite.
  model.write("lm_head.weight", new Float32Array(300 * 32).fill(1e37));
  const before = model.read("model.layers.0.mlp.down_proj.weight");
  const steps: boolean[] = [];
  await assert.rejects(
    () =>
      train({
        model,
        config: cfg,
        runDir: join(dir.path, "run"),
        data,
        onStep: (m) => steps.push(m.skipped === true),
      }),
    /3 steps in a row had a non-finite loss or gradient norm; stopped at iteration 3 with a checkpoint\. Last batch: samples 4\.\.5/,
  );
  assert.deepEqual(steps, [true, true]); // the third is reported in the error
  assert.equal(model.step, 0, "no optimizer step was counted");
  assert.deepEqual(model.read("model.layers.0.mlp.down_proj.weight"), before, "parameters untouched");
  assert.ok(
    model.read("model.layers.0.mlp.down_proj.weight", "adamM").every((x) => x === 0),
    "moments untouched",
  );
  const meta = await readCheckpointMeta(await resolveCheckpoint(join(dir.path, "run")));
  assert.equal(meta.iteration, 3);
  const metrics = Deno.readTextFileSync(join(dir.path, "run", "metrics.jsonl")).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.deepEqual(metrics.map((m) => m.skipped), [true, true, true]);
});

Deno.test("a healthy run is not affected by the guard", async () => {
  using dir = tempDir();
  const cfg = config();
  using model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
    seed: 1,
    initStd: 0.02,
  });
  const r = await train({ model, config: cfg, runDir: join(dir.path, "run"), data });
  assert.equal(r.history.length, 8);
  assert.ok(r.history.every((m) => m.skipped === undefined && Number.isFinite(m.loss)));
  assert.equal(model.step, 8);
});

Deno.test("metrics.jsonl is replaced at a fresh run's first step, not before: a failed start keeps the old one", async () => {
  using dir = tempDir();
  const cfg = config();
  const runDir = join(dir.path, "run");
  Deno.mkdirSync(runDir);
  const metricsPath = join(runDir, "metrics.jsonl");
  Deno.writeTextFileSync(metricsPath, '{"step":1,"loss":5}\n');
  using model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
    seed: 1,
    initStd: 0.02,
  });
  const broken: BatchSource = {
    ...data,
    train: () => {
      throw new Error("corpus.jsonl:2: malformed JSON");
    },
  };
  await assert.rejects(() => train({ model, config: cfg, runDir, data: broken }), /malformed JSON/);
  assert.equal(Deno.readTextFileSync(metricsPath), '{"step":1,"loss":5}\n', "the old metrics are kept");
  await train({ model, config: cfg, runDir, data });
  const steps = Deno.readTextFileSync(metricsPath).trim().split("\n").map((l) => JSON.parse(l).step);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8], "replaced by the new run's steps");
});

Deno.test("loss spikes (> 2× the running mean) are logged and flagged in the metrics", async () => {
  using dir = tempDir();
  const cfg = config();
  overrideConfig(cfg, "train.steps", "24");
  overrideConfig(cfg, "train.lr", "1e-2");
  validateConfig(cfg, "test");
  using model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
    seed: 1,
    initStd: 0.02,
  });
  // 20 steps on one repeated batch (the loss collapses), then batches of unseen tokens (it jumps back up).
  const spiky: BatchSource = {
    train: (consumed, rows) => {
      const fresh = consumed >= 40;
      const tokens = Int32Array.from(
        { length: rows * 16 },
        (_, i) => (fresh ? 150 + ((i * 13 + consumed) % 150) : i % 20),
      );
      return {
        tokens,
        targets: tokens.map((t) => fresh ? (t * 7) % 300 : (t + 1) % 20),
        lossMask: new Float32Array(rows * 16).fill(1),
      };
    },
    valid: () => [],
    state: {},
  };
  const notices: string[] = [];
  const r = await train({
    model,
    config: cfg,
    runDir: join(dir.path, "run"),
    data: spiky,
    onNotice: (s) => notices.push(s),
  });
  const spikes = r.history.filter((m) => m.spike).map((m) => m.step);
  assert.ok(spikes.includes(21), `spikes at ${spikes}; losses ${r.history.map((m) => m.loss.toFixed(2))}`);
  assert.ok(spikes.every((s) => s > 20), "no spike while the loss only falls");
  assert.ok(notices.some((n) => /step 21: loss spike/.test(n)));
});
