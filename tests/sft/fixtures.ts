// The finetune tests' starting point: a freshly initialised tiny model saved as a native checkpoint (`--init`).
import { NativeModel } from "../../runtime/mod.ts";
import { saveCheckpoint } from "../../models/checkpoint.ts";
import {
  type ModelConfig,
  modelDims,
  optimSettings,
  presetConfig,
  type RunConfig,
} from "../../models/config.ts";

/**
 * Saves a tiny model (dim 32, 1 layer, 2 heads / 1 KV head, ffn 64, max_seq 128, init std 0.1; `model` and
 * `initStd` override these) at iteration 0 under `path`; returns its config (train.seq = `seq`, default 64).
 */
export async function saveInitModel(
  path: string,
  opts: { model?: Partial<ModelConfig>; seq?: number; seed?: number; initStd?: number } = {},
): Promise<RunConfig> {
  const cfg = presetConfig("tiny");
  cfg.model = {
    ...cfg.model,
    dim: 32,
    n_layers: 1,
    n_heads: 2,
    n_kv_heads: 1,
    ffn_dim: 64,
    max_seq: 128,
    ...opts.model,
  };
  cfg.train.seq = opts.seq ?? 64;
  using m = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
    seed: opts.seed ?? 3,
    initStd: opts.initStd ?? 0.1,
  });
  await saveCheckpoint(path, m, cfg, { iteration: 0, consumedSamples: 0, data: {} });
  return cfg;
}
