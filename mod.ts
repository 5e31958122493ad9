/**
 * Meditron toolkit: pretrain, finetune and evaluate medical Llama-2 models from Deno, on a native C++ runtime.
 *
 * The names a notebook needs: configs and presets, the native model (created, or opened from a run), the
 * training loop with its per-step callback, generation and scoring, the tokenizer, corpus and indexed-dataset
 * tools, and evaluation. Sub-paths `@meditron/toolkit/runtime`, `/models`, `/data` and `/eval` hold the rest.
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
export * from "./runtime/mod.ts";
export * from "./models/mod.ts";
export * from "./data/mod.ts";
export * from "./eval/mod.ts";
