/**
 * Meditron toolkit: pretrain, finetune and evaluate medical Llama-2 models from Deno, on a native C++ runtime.
 *
 * The names a notebook needs: configs and presets, the native model, the training loop, the tokenizer and
 * corpus tools. Sub-paths `@meditron/toolkit/runtime`, `/models` and `/data` hold the rest.
 *
 * @example
 * ```ts
 * import { modelDims, NativeModel, optimSettings, presetConfig, Tokenizer } from "@meditron/toolkit";
 * const cfg = presetConfig("tiny");
 * using model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), { seed: 1, initStd: 0.02 });
 * const ids = Tokenizer.llama2().encode("Aspirin irreversibly inhibits COX-1.");
 * const logits = await model.logits(Int32Array.from(ids), 1, ids.length);
 * ```
 *
 * @module
 */
export { buildInfo, lrAt, MeditronError, NativeModel, setNumThreads } from "./runtime/mod.ts";
export type { ModelDims, OptimSettings, StepResult, TrainBatch } from "./runtime/mod.ts";
export {
  ConfigError,
  loadCheckpoint,
  loadConfig,
  modelDims,
  optimSettings,
  parseConfig,
  presetConfig,
  saveCheckpoint,
  train,
  validationLoss,
} from "./models/mod.ts";
export type { BatchSource, RunConfig, StepMetrics, TrainOptions, TrainResult } from "./models/mod.ts";
export {
  BlendedSamples,
  IndexedDataset,
  InMemoryDocuments,
  parseCorpusJsonl,
  readCorpusJsonl,
  tokenizeCorpus,
  Tokenizer,
} from "./data/mod.ts";
export type { CorpusDocument, TokenDocuments } from "./data/mod.ts";
