// Run configs: presets, strict YAML (unknown keys, wrong types), validation messages, CLI overrides.
import assert from "node:assert/strict";
import {
  ConfigError,
  loadConfig,
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
