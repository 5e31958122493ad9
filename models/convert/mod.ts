/**
 * Conversion between weight formats: safetensors sets, Hugging Face directories, PyTorch pickles (without
 * Python), Meta's consolidated checkpoints and native (tp, pp)-sharded checkpoints; resharding; vocabulary
 * growth; inspection.
 *
 * @example
 * ```ts ignore
 * import { hfToNative, nativeToHf, reshard } from "@meditron/toolkit/models/convert";
 * await hfToNative("Llama-2-7b-hf", "runs/llama2-7b", { tp: 2 });
 * await reshard("runs/llama2-7b", "runs/llama2-7b-tp1", { tp: 1 });
 * await nativeToHf("runs/llama2-7b-tp1", "export/llama2-7b", { dtype: "BF16" });
 * ```
 *
 * @module
 */
export * from "./dtype.ts";
export * from "./hf.ts";
export * from "./inspect.ts";
export * from "./layout.ts";
export * from "./meta.ts";
export * from "./native.ts";
export * from "./pickle.ts";
export * from "./reshard.ts";
export * from "./resize.ts";
export * from "./sharded.ts";
export * from "./source.ts";
export * from "./torch.ts";
export * from "./zip.ts";
