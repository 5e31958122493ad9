/**
 * Models: run configuration and presets, the training loop, checkpoints and safetensors files.
 *
 * @example
 * ```ts
 * import { presetConfig } from "@meditron/toolkit/models";
 * const cfg = presetConfig("llama2-7b");
 * console.log(cfg.model.dim, cfg.train.lr); // 4096 0.0003
 * ```
 *
 * @module
 */
export * from "./config.ts";
export * from "./checkpoint.ts";
export * from "./safetensors.ts";
export * from "./trainer.ts";
export * from "./lm.ts";
export * from "./sampling.ts";
export * as convert from "./convert/mod.ts";
export * from "./plot.ts";
export * from "./notebook.ts";
