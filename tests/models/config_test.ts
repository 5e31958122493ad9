// Run configs: presets, strict YAML (unknown keys, wrong types), validation messages, CLI overrides.
import assert from "node:assert/strict";
import {
  ConfigError,
  continuedPretrainingConfig,
  fitWarmupToSteps,
  loadConfig,
  MODEL_PRESETS,
  overrideConfig,
  parseConfig,
  presetConfig,
  validateConfig,
} from "../../models/config.ts";

function fails(yaml: string, pattern: RegExp): void {
  assert.throws(() => parseConfig(yaml, "run.yaml"), (e: Error) => {
    assert.ok(e instanceof ConfigError, e.name);
    assert.match(e.message, pattern);
    assert.ok(e.message.startsWith("run.yaml: "), e.message);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("presets carry the real Llama-2 sizes and Meditron's hyperparameters", () => {
  const b7 = presetConfig("llama2-7b"), b70 = presetConfig("llama2-70b");
  assert.deepEqual(
    [b7.model.dim, b7.model.n_layers, b7.model.n_heads, b7.model.n_kv_heads, b7.model.ffn_dim],
    [4096, 32, 32, 32, 11008],
  );
  assert.deepEqual([
    b70.model.dim,
    b70.model.n_layers,
    b70.model.n_heads,
    b70.model.n_kv_heads,
    b70.model.ffn_dim,
  ], [8192, 80, 64, 8, 28672]);
  assert.equal(presetConfig("llama2-13b").model.ffn_dim, 13824);
  assert.deepEqual([b7.train.lr, b7.train.min_lr, b7.train.warmup_steps, b7.train.eps, b7.train.seq], [
    3e-4,
    3e-5,
    2000,
    1e-5,
    2048,
  ]);
  assert.deepEqual([b70.train.lr, b70.train.seq, b70.train.beta2], [1.5e-4, 4096, 0.95]);
  assert.throws(() => presetConfig("gpt2"), /unknown preset 'gpt2' \(known: tiny, llama2-7b/);
});

Deno.test("configs/tiny.yaml loads and is what pretrain runs by default", async () => {
  const cfg = await loadConfig(new URL("../../configs/tiny.yaml", import.meta.url).pathname);
  assert.equal(cfg.name, "tiny");
  assert.equal(cfg.data.source, "embedded");
  assert.equal(cfg.model.vocab_size, 32000);
});

Deno.test("invalid values are one-line errors naming the key", () => {
  fails("model:\n  n_heads: 3\n", /model.n_heads \(3\) must divide model.dim \(128\)/);
  fails("model:\n  n_kv_heads: 3\n", /model.n_kv_heads \(3\) must divide model.n_heads \(4\)/);
  fails("train:\n  lr: -0.1\n", /train.lr must be >= 0/);
  fails("train:\n  seq: 1024\n", /train.seq \(1024\) exceeds model.max_seq \(256\)/);
  fails("train:\n  steps: 0\n", /train.steps must be a positive integer/);
  fails("train:\n  lrr: 1\n", /unknown key 'train.lrr' \(known: seed, steps/);
  fails("modle: {}\n", /unknown key 'modle'/);
  fails("train:\n  steps: ten\n", /'train.steps' must be a number, got "ten"/);
  fails("preset: llama3\n", /unknown preset 'llama3'/);
  fails("train: [1, 2]\n", /'train' must be a mapping/);
  fails("model: {dim: 64\n", /invalid YAML/);
  fails(
    "data:\n  source: c.jsonl\n  systems: renal\n",
    /data.systems \(renal\) selects organ systems of the embedded/,
  );
  fails("data:\n  systems: 'renal; cardio'\n", /data.systems must be 'all' or a comma-separated list/);
});

Deno.test("overrides are typed and re-validated", () => {
  const cfg = presetConfig("tiny");
  overrideConfig(cfg, "train.steps", "40");
  assert.equal(cfg.train.steps, 40);
  assert.throws(() => overrideConfig(cfg, "train.steps", "abc"), /'train.steps' must be a number/);
  assert.throws(() => overrideConfig(cfg, "train.nope", "1"), /unknown key 'train.nope'/);
  overrideConfig(cfg, "model.n_kv_heads", "3");
  assert.throws(
    () => validateConfig(cfg, "command line"),
    /command line: model.n_kv_heads \(3\) must divide model.n_heads/,
  );
});

Deno.test("a missing config file is named", async () => {
  await assert.rejects(() => loadConfig("/nonexistent/x.yaml"), /\/nonexistent\/x.yaml: cannot read config/);
});

Deno.test("continued pretraining of a model takes its size's Meditron settings, never the tiny demo's", () => {
  const b70 = continuedPretrainingConfig({ ...MODEL_PRESETS["llama2-70b"], vocab_size: 32002 });
  assert.deepEqual([b70.train.lr, b70.train.min_lr, b70.train.seq], [1.5e-4, 1.5e-5, 4096]);
  assert.equal(b70.model.vocab_size, 32002);
  // A shape no preset has: llama2-7b's settings, the sequence capped at the model's max_seq.
  const odd = { ...MODEL_PRESETS.tiny, dim: 64, n_heads: 4, ffn_dim: 96, max_seq: 512 };
  const c = continuedPretrainingConfig(odd);
  const t7 = presetConfig("llama2-7b").train;
  assert.deepEqual(c.model, odd);
  assert.deepEqual({ ...c.train, seq: t7.seq }, t7);
  assert.equal(c.train.seq, 512);
  validateConfig(c, "test");
  // The tiny demo model itself keeps the tiny settings.
  assert.equal(continuedPretrainingConfig(MODEL_PRESETS.tiny).train.lr, presetConfig("tiny").train.lr);
});

Deno.test("a run cut below its warmup keeps the warmup's fraction, with a notice", () => {
  const cfg = presetConfig("tiny"); // 200 steps, warmup 20
  cfg.train.steps = 5;
  assert.match(fitWarmupToSteps(cfg, 200)!, /train.warmup_steps 20 > train.steps 5: warmup shortened to 0/);
  assert.equal(cfg.train.warmup_steps, 0);
  validateConfig(cfg, "test");
  const longer = presetConfig("llama2-7b"); // 20000 steps, warmup 2000
  longer.train.steps = 1000;
  assert.ok(fitWarmupToSteps(longer, 20000));
  assert.equal(longer.train.warmup_steps, 100);
  const fits = presetConfig("tiny");
  fits.train.steps = 30;
  assert.equal(fitWarmupToSteps(fits, 200), undefined);
  assert.equal(fits.train.warmup_steps, 20);
  // An explicit decay horizon is not the step count's to change: the error stays.
  const decay = presetConfig("tiny");
  decay.train.steps = 5;
  decay.train.decay_steps = 10;
  assert.equal(fitWarmupToSteps(decay, 200), undefined);
  assert.throws(
    () => validateConfig(decay, "test"),
    /train.decay_steps \(10\) must be >= train.warmup_steps/,
  );
});
