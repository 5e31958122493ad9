// A one-layer model on synthetic batches: the fixture of the trainer tests (guards, disk full).
import { overrideConfig, presetConfig, type RunConfig, validateConfig } from "../../models/config.ts";
import type { BatchSource } from "../../models/trainer.ts";

/** dim 32, 1 layer, vocabulary 300, batches of 2 × 16 tokens; `train` overrides any train.* key. */
export function tinyRunConfig(train: Record<string, string>): RunConfig {
  const cfg = presetConfig("tiny");
  const set: Record<string, string> = {
    "model.dim": "32",
    "model.n_layers": "1",
    "model.ffn_dim": "64",
    "model.vocab_size": "300",
    "train.seq": "16",
    "train.micro_batch": "2",
    "train.grad_accum": "1",
    "train.warmup_steps": "1",
    "train.eval_every": "0",
    ...Object.fromEntries(Object.entries(train).map(([k, v]) => [`train.${k}`, v])),
  };
  for (const [k, v] of Object.entries(set)) overrideConfig(cfg, k, v);
  validateConfig(cfg, "test");
  return cfg;
}

/** Deterministic batches over the 300-token vocabulary, a function of the consumed samples. */
export const SYNTHETIC_DATA: BatchSource = {
  train: (consumed, rows) => {
    const tokens = Int32Array.from({ length: rows * 16 }, (_, i) => (i * 7 + consumed) % 300);
    return {
      tokens,
      targets: tokens.map((t) => (t + 1) % 300),
      lossMask: new Float32Array(rows * 16).fill(1),
    };
  },
  valid: () => [],
  state: {},
};
