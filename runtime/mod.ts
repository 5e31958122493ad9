/**
 * The TS binding of libmeditron: the only part of the toolkit that touches `Deno.dlopen`.
 *
 * @example
 * ```ts
 * import { buildInfo } from "@meditron/toolkit/runtime";
 * console.log(await buildInfo());
 * ```
 *
 * @module
 */
export { type ModelDims, type OptimSettings, type TensorKindName } from "./ffi.ts";
export { buildInfo, MeditronError, native, setNumThreads } from "./library.ts";
export {
  type InitOptions,
  lrAt,
  NativeModel,
  type ParamMeta,
  type StepResult,
  type TrainBatch,
} from "./model.ts";
export { attentionBackward, attentionForward, type AttentionShape } from "./ops.ts";
export { buildNative, MissingDependencyError } from "./build.ts";
